//! The control socket: a UNIX stream socket (mode 0600, or 0660 for `control_group`) on which
//! `custos status|start|stop|…` talk to the running supervisor. One JSON line per request and
//! per reply, bounded in size and time; peers are checked with SO_PEERCRED and SO_PEERGROUPS.
//! A slow or hostile client costs at most one slot of MAX_CLIENTS until its deadline: it can
//! never block the loop, the watchdog or supervision.
//!
//! - `command.rs`: the command table, the typed request, and its line on the wire.
//! - `json.rs`: the tiny, strict JSON reader and writer both sides use.
//! - `server.rs`: the listening socket and its clients, for the supervisor's loop.
//! - `client.rs`: the command line's side: send one request, read the replies.

use std::time::Duration;

pub mod client;
mod command;
mod json;
mod server;

pub use command::{parse_request, request_line, BadRequest, Command, Request, Spec, COMMANDS};
pub use json::{parse_flat_object, reply_text, Value};
pub use server::{Access, ControlServer, Ready};

/// Clients served at once; one more is told "busy" and closed.
pub const MAX_CLIENTS: usize = 4;
/// Bytes in one request line.
pub const MAX_REQUEST: usize = 512;
/// Time a client has to send its request, and to read a reply.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections accepted in one pass of the loop; more wait in the backlog for the next pass,
/// so that a flood of connections costs each pass a bounded amount of work.
pub const MAX_ACCEPTS_PER_PASS: usize = 2 * MAX_CLIENTS;
/// Refused peers are logged at most once per this period, the others counted: a flood of
/// refused connections must not write a line each.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// Bytes queued for one client (a status reply, or events for `events --follow`); a client
/// that lets more pile up is dropped.
pub const MAX_PENDING: usize = 64 * 1024;

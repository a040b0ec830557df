//! Every fixed capacity of custos, in one place: what custos holds is bounded when the config
//! loads, so a long-running supervisor on a small board cannot run out of memory by growing.
//!
//! The config loader checks each of them and names the limit in its error; at run time the
//! tables sized here never grow.

/// Services in one config.
pub const MAX_SERVICES: usize = 32;
/// Characters in a service name.
pub const MAX_NAME: usize = 31;
/// Entries in a `start`/`stop` argv.
pub const MAX_ARGV: usize = 16;
/// Bytes in one argv entry, a path or an `args` string.
pub const MAX_ARG_LEN: usize = 255;
/// Highest `max_restarts`: the per-service restart history holds this many timestamps.
pub const MAX_RESTART_HISTORY: usize = 64;
/// Health checks per service.
pub const MAX_CHECKS: usize = 4;
/// Bytes of one script output line that reach the log; the rest of the line is cut.
pub const MAX_LOG_LINE: usize = 200;
/// Script output lines logged per service per second; more are counted and reported as dropped.
pub const MAX_LOG_LINES_PER_SEC: u32 = 20;
/// Largest pidfile custos reads (a PID is at most 7 digits on Linux, plus a newline).
pub const MAX_PIDFILE_BYTES: usize = 32;
/// Largest config file custos reads.
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;
/// Leftovers of one dead instance that custos stops and follows (more are signalled by the
/// next sweep: SIGKILL finds them again).
pub const MAX_LEFTOVERS: usize = 64;
/// Actions the decision core may return for one event.
pub const MAX_ACTIONS: usize = 6;
/// Bytes of custos's own log output waiting for stderr to take them; lines that do not fit
/// are dropped and counted (src/logger.rs). About 1.4 s of a 115200-baud console.
pub const LOG_BUFFER: usize = 16 * 1024;

/// Boots kept; the oldest is dropped when a new one comes. Service events never evict them.
pub const MAX_BOOTS: usize = 32;
/// Highest `max_resets` and `clear_after`: the ring always holds enough ended boots to count.
pub const MAX_MAX_RESETS: u32 = 16;
pub const MAX_CLEAR_AFTER: u32 = 8;
const _: () = assert!(((MAX_MAX_RESETS + 1 + MAX_CLEAR_AFTER) as usize) < MAX_BOOTS);

/// Hooks in one config.
pub const MAX_HOOKS: usize = 8;
/// Hook programs running at once; more events wait in the queue.
pub const MAX_HOOK_RUNS: usize = 4;
/// Events waiting for a free run slot; more are dropped and counted.
pub const HOOK_QUEUE: usize = 32;
/// Bytes of the JSON line on a hook's stdin (PIPE_BUF: one atomic write).
pub const MAX_HOOK_JSON: usize = 4096;
/// Bytes of an event's text passed on (longer text is cut at a char boundary).
pub const MAX_HOOK_TEXT: usize = 512;
/// Highest `flap_count`.
pub const MAX_FLAP_COUNT: u32 = 1000;

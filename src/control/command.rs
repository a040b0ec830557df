//! The control commands: one table says each command's name, whether it takes a service name,
//! whether it changes what custos does, and what it is for. The client's parsing of its
//! arguments, the request on the wire and the server's parsing of it all come from this table.

use core::fmt;

use super::json::{parse_flat_object, Value};
use crate::core::Op;
use crate::text::json_str;

/// What a control request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Every service's state, and the watchdog's.
    Status,
    /// An operator command on one service; the decision core says what it does in each state.
    Service(Op),
    /// Read the config again, as SIGHUP does, with the errors of a rejected one in the reply.
    Reload,
    /// What was recorded (`--follow`: and then each new event).
    Events,
    /// What was recorded for one service.
    Why,
    /// This boot ends in order: from now on custos starts and restarts nothing.
    Shutdown,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub command: Command,
    /// The word on the command line and in the request's `cmd`.
    pub name: &'static str,
    /// It takes a service NAME.
    pub needs_service: bool,
    /// It changes what custos does (as opposed to reading what it knows). Every peer the
    /// control socket lets in may send every command; this is what a read-only tier would go by.
    pub changes_state: bool,
}

const fn spec(
    command: Command,
    name: &'static str,
    needs_service: bool,
    changes_state: bool,
) -> Spec {
    Spec {
        command,
        name,
        needs_service,
        changes_state,
    }
}

/// Every control command, in the order `custos --help` and the "unknown command" reply list
/// them: the command, its word, whether it takes a service NAME, whether it changes what
/// custos does; above each, what it is for (as a comment: the board's binary carries no help
/// text it never shows).
pub const COMMANDS: &[Spec] = &[
    // every service: state, pinned PID, uptime, restarts, last death, checks; the watchdog
    spec(Command::Status, "status", false, false),
    // monitor again; start it if it is not running (adopt it if it is)
    spec(Command::Service(Op::Start), "start", true, true),
    // a graceful stop, and no monitoring until `custos start`
    spec(Command::Service(Op::Stop), "stop", true, true),
    // stop script, SIGTERM, SIGKILL to the pinned PID, then start
    spec(Command::Service(Op::Restart), "restart", true, true),
    // resume watching, without touching the process
    spec(Command::Service(Op::Monitor), "monitor", true, true),
    // stop watching, without touching the process
    spec(Command::Service(Op::Unmonitor), "unmonitor", true, true),
    // a held service: the process its pidfile names is the service; pin it
    spec(Command::Service(Op::Adopt), "adopt", true, true),
    // like SIGHUP, but the reply carries the errors of a rejected config
    spec(Command::Reload, "reload", false, true),
    // everything recorded: deaths, starts, restarts, give-ups, watchdog resets
    spec(Command::Events, "events", false, false),
    // the recorded deaths and actions of one service, oldest first, across reboots
    spec(Command::Why, "why", true, false),
    // from the shutdown sequence: this boot ends in order
    spec(Command::Shutdown, "shutdown", false, true),
];

impl Command {
    /// The command named `word`.
    pub fn parse(word: &str) -> Option<Command> {
        Spec::named(word).map(|s| s.command)
    }

    /// Its row of the table.
    pub fn spec(self) -> &'static Spec {
        // Every command has its row: the table test checks it.
        COMMANDS
            .iter()
            .find(|s| s.command == self)
            .unwrap_or(&COMMANDS[0])
    }

    /// The word that names it.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

impl Spec {
    /// The row of the command named `word`.
    pub fn named(word: &str) -> Option<&'static Spec> {
        COMMANDS.iter().find(|s| s.name == word)
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: Command,
    pub name: heapless::String<32>,
    pub json: bool,
    pub follow: bool,
    /// `status` in the Prometheus text format.
    pub prometheus: bool,
}

/// Why a request line is refused; the words are the reply's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// Not a request at all: not UTF-8, not the flat object, a key unknown or too long.
    Malformed(&'static str),
    /// A well-formed request for a command that does not exist.
    Unknown(heapless::String<16>),
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::Malformed(e) => write!(f, "bad request: {e}"),
            BadRequest::Unknown(cmd) => {
                write!(f, "unknown command `{cmd}`: ")?;
                for (n, s) in COMMANDS.iter().enumerate() {
                    f.write_str(if n == 0 { "" } else { ", " })?;
                    f.write_str(s.name)?;
                }
                Ok(())
            }
        }
    }
}

/// Parses `{"cmd":"restart","name":"web_server","json":false,"follow":false}` strictly: one
/// flat object, string or boolean values, known keys only, a command of the table.
pub fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    use BadRequest::Malformed;
    let text = std::str::from_utf8(line).map_err(|_| Malformed("request is not UTF-8"))?;
    let mut cmd = heapless::String::<16>::new();
    let mut r = Request {
        cmd: Command::Status,
        name: heapless::String::new(),
        json: false,
        follow: false,
        prometheus: false,
    };
    for (key, value) in parse_flat_object(text).map_err(Malformed)? {
        match (key.as_str(), value) {
            ("cmd", Value::Str(s)) => {
                cmd =
                    heapless::String::try_from(s.as_str()).map_err(|_| Malformed("cmd too long"))?
            }
            ("name", Value::Str(s)) => {
                r.name = heapless::String::try_from(s.as_str())
                    .map_err(|_| Malformed("name too long"))?
            }
            ("json", Value::Bool(b)) => r.json = b,
            ("follow", Value::Bool(b)) => r.follow = b,
            ("prometheus", Value::Bool(b)) => r.prometheus = b,
            _ => return Err(Malformed("unknown key or wrong type in request")),
        }
    }
    if cmd.is_empty() {
        return Err(Malformed("request has no cmd"));
    }
    r.cmd = Command::parse(&cmd).ok_or(BadRequest::Unknown(cmd))?;
    Ok(r)
}

/// The request line the client sends: `{"cmd":…[,"name":…][,"prometheus":true],"json":…,
/// "follow":…}` and a newline. `name` is sent as given (the server says when it is too long).
pub fn request_line(
    cmd: Command,
    name: &str,
    json: bool,
    follow: bool,
    prometheus: bool,
) -> String {
    let mut req = String::from("{\"cmd\":");
    json_str(&mut req, cmd.name());
    if !name.is_empty() {
        req.push_str(",\"name\":");
        json_str(&mut req, name);
    }
    if prometheus {
        req.push_str(",\"prometheus\":true");
    }
    req.push_str(&format!(",\"json\":{json},\"follow\":{follow}}}\n"));
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_strictly() {
        let r = parse_request(br#"{"cmd":"restart","name":"web_server"}"#).expect("ok");
        assert_eq!(r.cmd, Command::Service(Op::Restart));
        assert_eq!(r.name.as_str(), "web_server");
        let r = parse_request(br#" { "cmd" : "events", "follow" : true, "json": false } "#)
            .expect("ok");
        assert!(r.follow && !r.json);
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            b"{\"cmd\":1}",
            b"{\"cmd\":\"x\",}",
            b"{\"cmd\":\"x\"} x",
            b"{\"bogus\":\"x\"}",
            b"{\"cmd\":\"a-command-name-that-is-too-long\"}",
            b"{\"cmd\":\"\\q\"}",
            b"\xff\xfe",
            b"{\"cmd\":\"x\nx\"}",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_command_has_one_row_that_names_it_both_ways() {
        for (k, s) in COMMANDS.iter().enumerate() {
            assert_eq!(Command::parse(s.name), Some(s.command), "{}", s.name);
            assert_eq!(s.command.name(), s.name);
            assert!(
                COMMANDS[..k]
                    .iter()
                    .all(|o| o.name != s.name && o.command != s.command),
                "{} twice",
                s.name
            );
            assert_eq!(
                s.needs_service,
                matches!(s.command, Command::Service(_) | Command::Why)
            );
        }
        for op in [
            Op::Start,
            Op::Stop,
            Op::Restart,
            Op::Monitor,
            Op::Unmonitor,
            Op::Adopt,
        ] {
            assert!(
                COMMANDS.iter().any(|s| s.command == Command::Service(op)),
                "{op:?} has no command"
            );
        }
    }

    #[test]
    fn an_unknown_command_is_refused_with_the_list_of_commands() {
        let e = parse_request(br#"{"cmd":"frobnicate"}"#).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "unknown command `frobnicate`: status, start, stop, restart, monitor, unmonitor, adopt, reload, events, why, shutdown"
        );
        // A malformed request says so first, whatever its command.
        let e = parse_request(br#"{"cmd":"frobnicate","bogus":true}"#).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "bad request: unknown key or wrong type in request"
        );
    }

    #[test]
    fn the_client_line_is_the_request_the_server_reads() {
        let line = request_line(Command::Service(Op::Stop), "web \"1\"", true, false, false);
        assert_eq!(
            line,
            "{\"cmd\":\"stop\",\"name\":\"web \\\"1\\\"\",\"json\":true,\"follow\":false}\n"
        );
        let r = parse_request(line.trim_end().as_bytes()).expect("parses");
        assert_eq!(r.cmd, Command::Service(Op::Stop));
        assert_eq!(r.name.as_str(), "web \"1\"");
        assert!(r.json && !r.follow && !r.prometheus);
        let line = request_line(Command::Status, "", false, false, true);
        assert_eq!(
            line,
            "{\"cmd\":\"status\",\"prometheus\":true,\"json\":false,\"follow\":false}\n"
        );
        for s in COMMANDS {
            let line = request_line(s.command, "x", false, true, false);
            assert_eq!(
                parse_request(line.trim_end().as_bytes()).map(|r| r.cmd),
                Ok(s.command)
            );
        }
    }
}

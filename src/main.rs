//! custos command line. Exit codes: 0 success; 1 invalid config, a request the running custos
//! refused, or stdout failing otherwise than by a closed pipe; 2 usage error; 3 start-up
//! failure (a kernel object custos cannot run without); 4 no custos answers at the control
//! socket. The control commands, and whether each takes a service NAME, come from the command
//! table (`control::COMMANDS`); the usage below is checked against it.
//!
//! Nothing here panics on its output: stdout and stderr are written with `out` and `err`,
//! never `println!`/`eprintln!` (which panic when the write fails, e.g. EPIPE when the reader
//! of `custos events --follow | head -n 1` has gone). A closed stdout ends a command quietly
//! with status 0: the reader has what it wanted. `custos run` logs through src/logger.rs.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use custos::clock::Dur;
use custos::config::{self, CheckAction, Config, Identify, Leftovers, LogTarget, OnExhausted};
use custos::control::{self, request_line, Command, Spec};
use custos::supervisor::Supervisor;

const USAGE: &str = "\
usage: custos run   [-c|--config PATH]   supervise in the foreground (from inittab)
       custos check [-c|--config PATH]   validate the config and say what custos will do
       custos [-c PATH | --socket PATH] status [--json | --prometheus]
       custos [-c PATH | --socket PATH] start|stop|restart|monitor|unmonitor|adopt NAME
       custos [-c PATH | --socket PATH] reload
       custos [-c PATH | --socket PATH] events [--follow] [--json]
       custos [-c PATH | --socket PATH] why NAME [--json]
       custos import-monit [MONITRC] [-o FILE] [--root DIR]
                                             convert a Monit control file into a custos config
       custos [-c PATH] shutdown             record that this boot ends in order (run it from
                                             the shutdown sequence before state_dir is unmounted)
       custos --version | --help

The default config is /etc/custos.toml; the control commands find the socket there
([supervisor] control_socket, default /run/custos.sock) unless --socket is given.
Logs go to stderr (or syslog); RUST_LOG=debug shows more.
Signals: SIGTERM/SIGINT exit 0 and leave services running; SIGHUP reloads the config.
Exit codes: 0 ok, 1 invalid config or a refused request, 2 usage error,
3 start-up failure, 4 cannot reach a running custos.";

const EXIT_INVALID: u8 = 1;
/// Also 1: stdout failed otherwise than by a closed pipe (EIO, ENOSPC).
const EXIT_OUTPUT: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_SETUP: u8 = 3;
const EXIT_UNREACHABLE: u8 = 4;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("import-monit") {
        return import_monit(&args[1..]);
    }
    let mut cmd: Option<&str> = None;
    let mut path = PathBuf::from(config::DEFAULT_CONFIG);
    let mut socket: Option<PathBuf> = None;
    let mut name: Option<&str> = None;
    let (mut json, mut follow, mut prometheus) = (false, false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                return out(&format!("{USAGE}\n"))
                    .err()
                    .unwrap_or(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                return out(&format!("custos {}\n", env!("CARGO_PKG_VERSION")))
                    .err()
                    .unwrap_or(ExitCode::SUCCESS);
            }
            "-c" | "--config" => match it.next() {
                Some(p) => path = PathBuf::from(p),
                None => return usage("-c needs a path"),
            },
            "--socket" => match it.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return usage("--socket needs a path"),
            },
            "--json" => json = true,
            "--prometheus" => prometheus = true,
            "--follow" | "-f" => follow = true,
            "run" | "check" if cmd.is_none() => cmd = Some(a.as_str()),
            c if cmd.is_none() && Spec::named(c).is_some() => cmd = Some(c),
            n if cmd.is_some() && name.is_none() && !n.starts_with('-') => name = Some(n),
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    match cmd {
        Some("run") => run(path),
        Some("check") => check(path),
        Some(c) => {
            let Some(spec) = Spec::named(c) else {
                return usage(&format!("unknown argument `{c}`"));
            };
            if spec.needs_service != name.is_some() {
                return usage(&format!(
                    "`{c}` {}",
                    if spec.needs_service {
                        "needs a service name"
                    } else {
                        "takes no name"
                    }
                ));
            }
            let socket = socket.unwrap_or_else(|| socket_from_config(&path));
            let follow = follow && spec.command == Command::Events;
            let line = request_line(spec.command, name.unwrap_or(""), json, follow, prometheus);
            let code = client(&socket, &line, json && !prometheus, follow);
            if spec.command == Command::Shutdown && code == ExitCode::SUCCESS {
                return wait_orderly(&path);
            }
            code
        }
        None => usage("no command given"),
    }
}

/// Writes `text` to stdout. `Err` ends the command with this exit code: 0 when the reader has
/// gone (EPIPE), `EXIT_OUTPUT` (with a message) for other errors.
fn out(text: &str) -> Result<(), ExitCode> {
    let mut o = io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => {
            err(&format!("custos: cannot write to stdout: {e}"));
            Err(ExitCode::from(EXIT_OUTPUT))
        }
    }
}

/// Writes one line to stderr; a failure is ignored (there is nowhere left to say it).
fn err(line: &str) {
    let mut e = io::stderr().lock();
    let _ = e
        .write_all(line.as_bytes())
        .and_then(|()| e.write_all(b"\n"));
}

/// The log level: info, or what RUST_LOG names (error, warn, info, debug, trace, off).
fn log_level() -> log::LevelFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(log::LevelFilter::Info)
}

/// The control socket named in the config, or the default when the config cannot be read.
fn socket_from_config(path: &std::path::Path) -> PathBuf {
    config::load(path)
        .map(|c| c.supervisor.control_socket)
        .unwrap_or_else(|_| PathBuf::from(config::DEFAULT_CONTROL_SOCKET))
}

/// Sends one request line to the running custos and prints its reply (or, with `follow`,
/// each event as it comes): its `text`, or the line as it came when `raw` (JSON asked for).
fn client(socket: &std::path::Path, line: &str, raw: bool, follow: bool) -> ExitCode {
    let mut conversation = match control::client::send(socket, line, follow) {
        Ok(c) => c,
        Err(e) => {
            err(&format!(
                "custos: cannot reach custos at {}: {e} (is it running? as root?)",
                socket.display()
            ));
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let mut ok = true;
    let mut got = false;
    for reply in conversation.by_ref() {
        got = true;
        let printed = if let Some(e) = reply.error {
            err(&format!("custos: {e}"));
            ok = false;
            Ok(())
        } else if raw {
            out(&format!("{}\n", reply.line))
        } else if let Some(text) = reply.text {
            out(&format!("{text}\n"))
        } else {
            out(&format!("{}\n", reply.line))
        };
        if let Err(code) = printed {
            return code;
        }
        if !follow {
            break;
        }
    }
    if !got {
        match conversation.sent {
            Err(e) => err(&format!("custos: cannot send the request: {e}")),
            Ok(()) => err(&format!("custos: no reply from {}", socket.display())),
        }
        return ExitCode::from(EXIT_UNREACHABLE);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// After `shutdown`: waits (at most 3 s) until this boot's end is on disk, so that what the
/// shutdown sequence does next (unmount state_dir) cannot lose it.
fn wait_orderly(path: &std::path::Path) -> ExitCode {
    let dir = config::load(path)
        .map(|c| c.supervisor.state_dir)
        .unwrap_or_else(|_| PathBuf::from(config::DEFAULT_STATE_DIR));
    let id = custos::record::read_boot_id();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        if custos::boot::load(&dir).is_some_and(|boots| {
            boots
                .iter()
                .any(|b| b.id == id && b.end == custos::boot::End::Orderly)
        }) {
            return ExitCode::SUCCESS;
        }
        if std::time::Instant::now() > end {
            err(&format!(
                "custos: this boot's orderly end is not in {} after 3s (a slow or read-only disk?)",
                dir.join(custos::boot::FILE_NAME).display()
            ));
            return ExitCode::from(EXIT_INVALID);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Where Monit looks for its control file when none is given (after ~/.monitrc).
#[cfg(feature = "import-monit")]
const MONITRC: [&str; 3] = [
    "/etc/monitrc",
    "/etc/monit/monitrc",
    "/usr/local/etc/monitrc",
];

/// `custos import-monit [MONITRC] [-o FILE] [--root DIR]`: the config on stdout (or in FILE),
/// one line per directive not carried over on stderr. With `-o`, the written file is loaded
/// as `custos check` would load it.
#[cfg(feature = "import-monit")]
fn import_monit(args: &[String]) -> ExitCode {
    let (mut input, mut output, mut root) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => match it.next() {
                Some(p) => output = Some(PathBuf::from(p)),
                None => return usage("-o needs a file"),
            },
            "--root" => match it.next() {
                Some(p) => root = Some(PathBuf::from(p)),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => {
                return out(&format!("{USAGE}\n"))
                    .err()
                    .unwrap_or(ExitCode::SUCCESS)
            }
            p if input.is_none() && !p.starts_with('-') => input = Some(PathBuf::from(p)),
            other => return usage(&format!("import-monit: unknown argument `{other}`")),
        }
    }
    let input = input.unwrap_or_else(|| {
        let found = MONITRC.iter().find(|p| std::path::Path::new(p).exists());
        PathBuf::from(found.unwrap_or(&MONITRC[0]))
    });
    let imported = match custos::monit::import(&input, root.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            err(&e);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    for n in &imported.not_converted {
        err(n);
    }
    err(&format!(
        "custos import-monit: {} service(s) converted; {} directive(s) not converted (see the comments in the config)",
        imported.services,
        imported.not_converted.len()
    ));
    match output {
        None => out(&imported.toml).err().unwrap_or(ExitCode::SUCCESS),
        Some(path) => {
            if let Err(e) = std::fs::write(&path, imported.toml.as_bytes()) {
                err(&format!("custos: cannot write {}: {e}", path.display()));
                return ExitCode::from(EXIT_OUTPUT);
            }
            match config::load(&path) {
                Ok(_) => ExitCode::SUCCESS,
                Err(errors) => {
                    err(&errors.to_string());
                    err(&format!(
                        "custos import-monit: {} does not pass `custos check`: please report this",
                        path.display()
                    ));
                    ExitCode::from(EXIT_INVALID)
                }
            }
        }
    }
}

#[cfg(not(feature = "import-monit"))]
fn import_monit(_: &[String]) -> ExitCode {
    usage("import-monit: this custos was built without it (cargo feature `import-monit`); run it on a workstation build")
}

fn usage(msg: &str) -> ExitCode {
    err(&format!("custos: {msg}\n{USAGE}"));
    ExitCode::from(EXIT_USAGE)
}

fn run(path: PathBuf) -> ExitCode {
    // Before custos opens anything: what it inherited must not leak into its services.
    let sealed = custos::child::seal_inherited_fds();
    // What stderr is, before anything else is opened.
    custos::logger::prepare();
    // The config says where to log, and a logger can be installed only once: read the config
    // first; its errors go to stderr either way.
    let loaded = config::load(&path);
    let level = log_level();
    let to_syslog = matches!(&loaded, Ok(c) if c.supervisor.log == LogTarget::Syslog);
    let installed = if to_syslog {
        custos::syslog::init(level)
    } else {
        custos::logger::init(level)
    };
    if let Err(e) = installed {
        err(&format!("custos: cannot set up logging: {e}"));
    }
    if let Ok(c) = &loaded {
        for w in c.warning_lines(&path) {
            log::warn!("{w}");
        }
    }
    let code = supervise(path, loaded, sealed);
    // One last non-blocking try for what stderr has not taken yet.
    custos::logger::flush();
    code
}

fn supervise(
    path: PathBuf,
    loaded: Result<Config, config::ConfigErrors>,
    sealed: std::io::Result<usize>,
) -> ExitCode {
    log::info!(
        "custos {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    match sealed {
        Ok(0) => {}
        Ok(n) => log::debug!("{n} inherited fd(s) marked close-on-exec"),
        Err(e) => log::warn!(
            "cannot list inherited fds ({e}; is /proc mounted?): fds custos inherited may leak into services on kernels before 5.11"
        ),
    }
    let cfg = match loaded {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.to_string().lines() {
                log::error!("{line}");
            }
            log::error!("invalid config: not starting");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut sup = match Supervisor::new(&path, cfg) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot set up the supervisor: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    sup.run();
    ExitCode::SUCCESS
}

fn check(path: PathBuf) -> ExitCode {
    match config::load(&path) {
        Ok(cfg) => {
            for w in cfg.warning_lines(&path) {
                err(&w);
            }
            out(&describe(&path, &cfg))
                .err()
                .unwrap_or(ExitCode::SUCCESS)
        }
        Err(errors) => {
            err(&errors.to_string());
            err(&format!(
                "{}: invalid ({} problem(s))",
                path.display(),
                errors.errors.len()
            ));
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// What custos will do, in plain words, for `custos check`.
fn describe(path: &std::path::Path, cfg: &Config) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: valid: {} service(s); /proc and pidfiles polled every {}, deaths seen at once where the kernel allows (subreaper, pidfd)",
        path.display(),
        cfg.services.len(),
        Dur(cfg.supervisor.interval)
    );
    match &cfg.watchdog {
        Some(w) => {
            let _ = writeln!(o, "watchdog: {}", custos::watchdog::describe(w));
        }
        None => {
            let _ = writeln!(o, "watchdog: none ([watchdog] absent)");
        }
    }
    let _ = writeln!(
        o,
        "{}",
        custos::boot::describe(&cfg.boot, &cfg.supervisor.state_dir)
    );
    for s in &cfg.services {
        describe_service(&mut o, s);
    }
    o
}

/// What custos will do for one service, for `custos check`.
fn describe_service(o: &mut String, s: &config::ServiceConfig) {
    use std::fmt::Write;
    let _ = writeln!(o, "\n{}:", s.name);
    describe_identity(o, s);
    let _ = writeln!(
        o,
        "  when not running: run `{}` (no shell; must exit 0 and the process must appear within {}); never a stop first",
        s.start,
        Dur(s.start_timeout)
    );
    describe_stopping(o, s);
    describe_restarts(o, &s.restart);
    for c in &s.checks {
        let act = match c.action {
            CheckAction::Restart => {
                "restart it (stop script, SIGTERM, SIGKILL to the pinned PID, then start)"
            }
            CheckAction::Log => "log only",
        };
        let _ = writeln!(
            o,
            "  check {c}: every {}, timeout {}; after {} failure(s) in a row: {act}; failures count once it has passed after a start, or after {}",
            Dur(c.every),
            Dur(c.timeout),
            c.failures,
            Dur(c.grace)
        );
    }
}

/// How a service's process is identified, for `custos check`.
fn describe_identity(o: &mut String, s: &config::ServiceConfig) {
    use std::fmt::Write;
    match &s.identify {
        Identify::Pidfile(p) => {
            let _ = writeln!(
                    o,
                    "  identity: the PID in {} (decimal, one line), pinned with its start time. Verified without the wall clock when custos's start script started it or custos pinned it earlier in this boot; a pidfile met for the first time is judged by its mtime (2s slack for coarse timestamps), and a live process that cannot be verified is held (`custos start` / `custos adopt`), never started over; custos itself, init (PID 1) and kernel threads are never pinned",
                    p.display()
                );
        }
        Identify::Exe { exe, args } => {
            let _ = writeln!(
                    o,
                    "  identity: the one process running {}{}, pinned with its start time; if several match, none is touched and nothing is started; custos itself and init (PID 1) never match",
                    exe.display(),
                    args.as_deref().map(|a| format!(" with arguments `{a}`")).unwrap_or_default()
                );
        }
    }
}

/// How a running service is stopped for a restart, and its leftovers, for `custos check`.
fn describe_stopping(o: &mut String, s: &config::ServiceConfig) {
    use std::fmt::Write;
    match &s.stop {
        Some(stop) => {
            let _ = writeln!(
                    o,
                    "  to restart a running process: run `{stop}` (up to {t}), then SIGTERM, then SIGKILL after {t}, only to the pinned PID",
                    t = Dur(s.stop_timeout)
                );
        }
        None => {
            let _ = writeln!(
                    o,
                    "  to restart a running process: SIGTERM, then SIGKILL after {}, only to the pinned PID",
                    Dur(s.stop_timeout)
                );
        }
    }
    let _ = match s.leftovers {
            Leftovers::Stop => writeln!(
                o,
                "  leftovers: once its process is gone (a death, a restart, `custos stop`), what it leaves in its process group (custos's descendants, started after it) gets SIGTERM, then SIGKILL after {}, before the next start; a process that made a group or session of its own is left alone (leftovers = \"stop\", the default)",
                Dur(s.stop_timeout.min(custos::core::LEFTOVERS_GRACE))
            ),
            Leftovers::Keep => writeln!(
                o,
                "  leftovers: what its process leaves behind when it is gone is left running (leftovers = \"keep\")"
            ),
        };
}

/// What follows deaths and failures in a row, for `custos check`.
fn describe_restarts(o: &mut String, r: &config::RestartPolicy) {
    use std::fmt::Write;
    let end = match r.max_restarts {
            None => format!(
                "it never gives up: it keeps trying every {} and shows it as crash-looping (max_restarts = \"unlimited\", the default)",
                Dur(r.backoff_max)
            ),
            Some(n) => format!(
                "after {n} restarts within {} it gives up{}",
                Dur(r.window),
                if r.on_exhausted == OnExhausted::Reboot {
                    " and reboots the board (sync, stop petting the watchdog, reboot(2) if it has not reset)"
                } else {
                    " until a reload or `custos start`"
                }
            ),
        };
    let _ = writeln!(
            o,
            "  after a death: a death after {} of running is started again at once; failures in a row (shorter runs, failed starts) wait {}, doubling up to {}; {end}",
            Dur(r.stable_after),
            Dur(r.backoff),
            Dur(r.backoff_max),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usage line of a control command: the first line naming it as a command.
    fn usage_line(name: &str) -> Option<&'static str> {
        USAGE.lines().find(|l| {
            l.trim_start().starts_with("custos [-c PATH")
                && l.split_whitespace()
                    .any(|w| w.split('|').any(|n| n == name))
        })
    }

    #[test]
    fn the_usage_shows_every_control_command_as_the_table_has_it() {
        for s in control::COMMANDS {
            let line = usage_line(s.name);
            assert!(line.is_some(), "`{}` is not in the usage", s.name);
            let takes_name = line.is_some_and(|l| l.contains(" NAME"));
            assert_eq!(takes_name, s.needs_service, "{}: {line:?}", s.name);
        }
        let named = USAGE
            .lines()
            .filter(|l| l.trim_start().starts_with("custos [-c PATH"))
            .count();
        // One line per command, except the commands on one service, which share a line.
        let service = control::COMMANDS
            .iter()
            .filter(|s| matches!(s.command, Command::Service(_)))
            .count();
        assert_eq!(named, control::COMMANDS.len() - service + 1);
    }
}

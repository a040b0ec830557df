//! custos command line. Exit codes: 0 success, 1 invalid config, 2 usage error, 3 start-up
//! failure (a kernel object custos cannot run without).

use std::path::PathBuf;
use std::process::ExitCode;

use custos::config::{self, CheckAction, Config, Dur, Identify, OnExhausted};
use custos::supervisor::Supervisor;

const USAGE: &str = "\
usage: custos run   [-c|--config PATH]   supervise in the foreground (from inittab)
       custos check [-c|--config PATH]   validate the config and say what custos will do
       custos --version | --help

The default config is /etc/custos.toml. Logs go to stderr; RUST_LOG=debug shows more.
Signals: SIGTERM/SIGINT exit 0 and leave services running; SIGHUP reloads the config.
Exit codes: 0 ok, 1 invalid config, 2 usage error, 3 start-up failure.";

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_SETUP: u8 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cmd: Option<&str> = None;
    let mut path = PathBuf::from(config::DEFAULT_CONFIG);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("custos {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "-c" | "--config" => match it.next() {
                Some(p) => path = PathBuf::from(p),
                None => return usage("-c needs a path"),
            },
            "run" | "check" if cmd.is_none() => cmd = Some(a.as_str()),
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    match cmd {
        Some("run") => run(path),
        Some("check") => check(path),
        _ => usage("no command given"),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("custos: {msg}\n{USAGE}");
    ExitCode::from(EXIT_USAGE)
}

fn run(path: PathBuf) -> ExitCode {
    let logger = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Info)
        .env();
    if let Err(e) = logger.init() {
        eprintln!("custos: cannot set up logging: {e}");
    }
    log::info!(
        "custos {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    let cfg = match config::load(&path) {
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
            print!("{}", describe(&path, &cfg));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: invalid ({} problem(s))",
                path.display(),
                errors.errors.len()
            );
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
    for s in &cfg.services {
        let _ = writeln!(o, "\n{}:", s.name);
        match &s.identify {
            Identify::Pidfile(p) => {
                let _ = writeln!(
                    o,
                    "  identity: the PID in {} (decimal, one line), pinned with its start time; a pidfile written before its process started is stale and its PID is left alone",
                    p.display()
                );
            }
            Identify::Exe { exe, args } => {
                let _ = writeln!(
                    o,
                    "  identity: the one process running {}{}, pinned with its start time; if several match, none is touched and nothing is started",
                    exe.display(),
                    args.as_deref().map(|a| format!(" with arguments `{a}`")).unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            o,
            "  when not running: run `{}` (no shell; must exit 0 and the process must appear within {}); never a stop first",
            s.start,
            Dur(s.start_timeout)
        );
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
        let r = &s.restart;
        let _ = writeln!(
            o,
            "  after a death: start again after {}, doubling per failure up to {}; {} of running resets that; after {} restarts within {} it gives up{}",
            Dur(r.backoff),
            Dur(r.backoff_max),
            Dur(r.stable_after),
            r.max_restarts,
            Dur(r.window),
            if r.on_exhausted == OnExhausted::Reboot {
                " and reboots the board (sync, stop petting the watchdog, reboot(2) if it has not reset)"
            } else {
                ""
            }
        );
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
    o
}

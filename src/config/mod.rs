//! Config: the public shape of a checked config, and where it comes from. `schema` holds one
//! table per section (and a row per check kind): every key with its type, bounds, default and
//! doc. `read` reads toml's span-preserving document tree (no serde) into each table's values
//! by key name, refusing unknown keys; `validate` and the per-section files (`sections`,
//! `service`, `check`) check every value (every problem collected, each with
//! `file:line: key: message`); `load` reads the file. Nothing here touches a process or a
//! device (it reads the config file, /etc/group for `control_group` and /proc/1 to refuse an
//! identity that could match init), so a bad reload costs nothing.

mod boot;
mod check;
mod load;
mod read;
pub mod schema;
mod sections;
mod service;
mod validate;

pub use load::{load, parse, parse_bytes, parse_with_init, InitIdentity};

use std::ffi::CString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::Dur;
pub use crate::core::{OnExhausted, RestartPolicy, IMPLIED_MAX_RESTARTS};

/// The longest watchdog timeout any driver accepts: softdog's max_timeout (drivers/watchdog/
/// softdog.c); hardware watchdogs allow less (the driver refuses or clamps, and custos says so).
pub const MAX_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(65535);
/// The shortest period of a program check (each run forks and execs a program).
pub const MIN_PROGRAM_EVERY: Duration = Duration::from_secs(1);

/// Where custos looks for its config when `-c` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/custos.toml";
/// The PATH every script gets (with `CUSTOS_SERVICE=name` and nothing else).
pub const SCRIPT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ---------------------------------------------------------------------------------------------
// The checked config.

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub supervisor: SupervisorConfig,
    pub services: Vec<ServiceConfig>,
    /// Absent section: no hardware watchdog.
    pub watchdog: Option<WatchdogConfig>,
    /// What is valid but likely not meant (`custos check` and every load print them).
    pub warnings: Vec<ConfigError>,
    /// The boot-loop guard (defaults when the section is absent).
    pub boot: BootConfig,
    /// `[metrics]`: the Prometheus textfile (absent: none is written).
    pub metrics: Option<MetricsConfig>,
    /// `[[hook]]`: programs run on events (at most MAX_HOOKS).
    pub hooks: Vec<HookConfig>,
}

/// `[metrics]`: where the Prometheus text file goes and how often it may be rewritten.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub textfile: PathBuf,
    pub every: Duration,
}

/// How often the metrics file may be rewritten when `[metrics] every` is not set.
pub const DEFAULT_METRICS_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    /// Poll period for /proc and pidfiles.
    pub interval: Duration,
    pub state_dir: PathBuf,
    pub control_socket: PathBuf,
    /// Group allowed on the control socket besides root: (name, gid).
    pub control_group: Option<(String, u32)>,
    pub log: LogTarget,
}

/// Where custos logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    Syslog,
}

/// Where custos keeps its record and boots when the config does not say.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/custos";
/// Where the control socket is when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/custos.sock";

/// How a service's process is identified.
#[derive(Debug, Clone, PartialEq)]
pub enum Identify {
    /// A pidfile written by the service or its init.d script.
    Pidfile(PathBuf),
    /// The process whose /proc/PID/exe is `exe` (and whose arguments are `args`, when given).
    Exe { exe: PathBuf, args: Option<String> },
}

/// A prebuilt argv: built at load so that starting a script allocates nothing new.
#[derive(Clone, PartialEq)]
pub struct Argv {
    pub args: Vec<CString>,
}

impl Argv {
    pub fn program(&self) -> &std::ffi::CStr {
        &self.args[0] // ok: validated non-empty at load
    }
}

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// What custos does with the leftovers of a dead instance: processes of the dead main
/// process's group that custos inherited as subreaper (see README "Leftovers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Leftovers {
    /// SIGTERM, then SIGKILL, before the next start (the default).
    #[default]
    Stop,
    /// Leave them running.
    Keep,
}

/// The `[boot]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct BootConfig {
    /// The guard trips when more than this many recent boots ended badly.
    pub max_resets: u32,
    /// Good boots in a row that end the count (and so clear a tripped guard).
    pub clear_after: u32,
    /// custos running this long in a boot without asking for a reboot makes the boot good.
    pub good_after: Duration,
    /// The boot-health gate, when `healthy_after` is set.
    pub gate: Option<GateConfig>,
}

/// The boot-health gate: a verdict once per boot on the services marked `vital`.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// Every vital service running, none of its checks failing, without a break for this long:
    /// the boot is healthy.
    pub healthy_after: Duration,
    /// Not healthy this long after custos started (boot clock; a respawned custos counts
    /// again from its own start): the boot is unhealthy.
    pub deadline: Duration,
    pub on_healthy: Option<crate::config::Argv>,
    pub on_unhealthy: Option<crate::config::Argv>,
    /// Bounds each program's run; then its process group is killed.
    pub timeout: Duration,
}

/// The gate's defaults.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(900);
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            max_resets: 3,
            clear_after: 2,
            good_after: Duration::from_secs(600),
            gate: None,
        }
    }
}

/// A hook's timeout when `timeout` is not set.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The events a hook may name in `on`: the words custos records (`custos events`), where there
/// is one, and `flapping`.
pub const EVENTS: [&str; 12] = [
    "died",
    "restarting",
    "crash-looping",
    "given-up",
    "check-failed",
    "start-failed",
    "held",
    "watchdog-reset",
    "boot-healthy",
    "boot-unhealthy",
    "stopped",
    "flapping",
];

/// The bit of event `name` in a hook's `on` mask.
pub fn event_bit(name: &str) -> Option<u16> {
    EVENTS.iter().position(|e| *e == name).map(|i| 1 << i)
}

#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    /// Events this hook runs for (bits of EVENTS).
    pub on: u16,
    pub run: Argv,
    pub timeout: Duration,
    /// Only these services' events (empty: every event).
    pub services: Vec<String>,
    /// (count, within): more than count events of a service within `within` are one
    /// `flapping` event.
    pub flap: Option<(u32, Duration)>,
}

/// The [watchdog] section.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchdogConfig {
    pub device: PathBuf,
    pub timeout: Duration,
    pub pet_every: Duration,
    pub magic_close: bool,
}

/// What a health check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// HTTP/1.0 GET; passes on `status` and, when given, `expect` within the first 4 KiB of body.
    Http {
        addr: SocketAddr,
        path: String,
        status: u16,
        expect: Option<String>,
    },
    /// A TCP connect succeeds.
    Tcp { addr: SocketAddr },
    /// Resident memory of the pinned process at most `max_bytes`.
    Memory { max_bytes: u64 },
    /// CPU use of the pinned process over `max_percent` for `over` fails.
    Cpu { max_percent: f64, over: Duration },
    /// Open file descriptors of the pinned process at most `max`.
    Fds { max: u64 },
    /// The file changed (as custos saw it, on the boot clock) at most `max_age` ago.
    Heartbeat { path: PathBuf, max_age: Duration },
    /// The program exits 0.
    Program { argv: Argv },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAction {
    Restart,
    Log,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub kind: CheckKind,
    pub timeout: Duration,
    pub every: Duration,
    pub failures: u32,
    pub grace: Duration,
    pub action: CheckAction,
}

impl fmt::Display for CheckConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CheckKind::Http { addr, path, .. } => write!(f, "http {addr}{path}"),
            CheckKind::Tcp { addr } => write!(f, "tcp {addr}"),
            CheckKind::Memory { max_bytes } => write!(f, "memory <= {}", Size(*max_bytes)),
            CheckKind::Cpu { max_percent, over } => {
                write!(f, "cpu <= {max_percent}% over {}", Dur(*over))
            }
            CheckKind::Fds { max } => write!(f, "fds <= {max}"),
            CheckKind::Heartbeat { path, max_age } => {
                write!(f, "heartbeat {} within {}", path.display(), Dur(*max_age))
            }
            CheckKind::Program { argv } => write!(f, "program `{argv}`"),
        }
    }
}

/// A byte count written the way configs write it: "64MiB", "512KiB", "100B".
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, n) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= n && b.is_multiple_of(n) {
                return write!(f, "{}{unit}", b / n);
            }
        }
        if b >= 1 << 20 {
            return write!(f, "{:.1}MiB", b as f64 / (1u64 << 20) as f64);
        }
        write!(f, "{b}B")
    }
}

/// Parses "64MiB", "512KiB", "1GiB", "4096B" (or a bare number of bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}` is not a size: write a whole number and a unit, like \"64MiB\"")
    })?;
    let mul: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size: unit `{unit}` is not one of B, KiB, MiB, GiB"
            ))
        }
    };
    let v = n
        .checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if v == 0 {
        return Err(format!("`{s}`: a size must be greater than zero"));
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    pub identify: Identify,
    pub start: Argv,
    pub stop: Option<Argv>,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub leftovers: Leftovers,
    pub restart: RestartPolicy,
    pub checks: Vec<CheckConfig>,
    /// Counted by the boot-health gate (`[boot] healthy_after`).
    pub vital: bool,
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if e.key.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The warnings, one line each: `FILE:LINE: warning: KEY: message`.
    pub fn warning_lines(&self, file: &Path) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| {
                let line = w.line.map(|l| format!(":{l}")).unwrap_or_default();
                format!(
                    "{}{line}: warning: {}: {}",
                    file.display(),
                    w.key,
                    w.message
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Durations: "250ms", "5s", "2m", "1h".

/// Parses a duration written as a whole number and a unit (`ms`, `s`, `m`, `h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "`{s}` is not a duration: write a whole number and a unit, like \"250ms\", \"5s\", \"2m\""
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: the number is too large"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "`{s}` is not a duration: unit `{unit}` is not one of ms, s, m, h"
            ))
        }
    };
    let ms = ms.ok_or_else(|| format!("`{s}` is not a duration: too large"))?;
    if ms == 0 {
        return Err(format!("`{s}`: a duration must be greater than zero"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::load::args_of;
    use super::*;
    use crate::limits::*;

    const GOOD: &str = r#"
    [supervisor]
    interval = "250ms"
    state_dir = "/var/lib/custos"

    [[service]]
    name = "web_server"
    pidfile = "/var/run/web_server.pid"
    start = ["/etc/init.d/web_server", "start"]
    stop  = ["/etc/init.d/web_server", "stop"]
    start_timeout = "10s"
    stop_timeout = "5s"

    [service.restart]
    backoff = "500ms"
    backoff_max = "60s"
    stable_after = "60s"
    max_restarts = 10
    window = "10m"
    on_exhausted = "give-up"

    [[service]]
    name = "sensor.d"
    exe = "/usr/sbin/sensord"
    args = "--port 80"
    start = ["/etc/init.d/sensord", "start"]
    "#;

    #[test]
    fn the_documented_example_loads() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.supervisor.interval, Duration::from_millis(250));
        assert_eq!(c.services.len(), 2);
        let w = &c.services[0];
        assert_eq!(w.name, "web_server");
        assert_eq!(
            w.identify,
            Identify::Pidfile("/var/run/web_server.pid".into())
        );
        assert_eq!(w.start.to_string(), "/etc/init.d/web_server start");
        assert_eq!(w.restart.window, Duration::from_secs(600));
        let s = &c.services[1];
        assert_eq!(
            s.identify,
            Identify::Exe {
                exe: "/usr/sbin/sensord".into(),
                args: Some("--port 80".into())
            }
        );
        assert!(s.stop.is_none());
        assert_eq!(s.restart, RestartPolicy::default());
    }

    fn errors(text: &str) -> String {
        let e = parse(text).expect_err("must be rejected");
        ConfigErrors {
            file: "/etc/custos.toml".into(),
            errors: e,
        }
        .to_string()
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let e = errors("[supervisor]\ninterval = \"1s\"\nintervall = \"2s\"\n");
        assert!(e.starts_with("/etc/custos.toml:3: "), "{e}");
        assert!(e.contains("intervall"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_line_and_key() {
        let text = r#"
    [[service]]
    name = "a"
    pidfile = "run/a.pid"
    start = []
    stop_timeout = "0s"

    [[service]]
    name = "a"
    exe = "/bin/a"
    start = ["/etc/init.d/a", "start"]
    start_timeout = "5 parsecs"
    "#;
        let e = errors(text);
        assert!(
            e.contains(":4: service.pidfile (service `a`): `run/a.pid` is not an absolute path"),
            "{e}"
        );
        assert!(
            e.contains(":5: service.start (service `a`): argv is empty"),
            "{e}"
        );
        assert!(
            e.contains(
                ":6: service.stop_timeout (service `a`): `0s`: a duration must be greater than zero"
            ),
            "{e}"
        );
        assert!(
            e.contains(":9: service[1].name: `a` is used by another service already"),
            "{e}"
        );
        assert!(
            e.contains(":12: service.start_timeout (service `a`): `5 parsecs` is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn capacities_are_checked_at_load() {
        let mut text = String::new();
        for i in 0..=MAX_SERVICES {
            text.push_str(&format!(
                "[[service]]\nname = \"s{i}\"\npidfile = \"/run/s{i}.pid\"\nstart = [\"/bin/true\"]\n"
            ));
        }
        let e = errors(&text);
        assert!(e.contains("33 services, over the limit of 32"), "{e}");

        let long: Vec<String> = (0..=MAX_ARGV).map(|i| format!("\"a{i}\"")).collect();
        let text = format!(
            "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\", {}]\n",
            long.join(", ")
        );
        assert!(errors(&text).contains("over the limit of 16"));

        let text = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\"]\n[service.restart]\nmax_restarts = 65\n";
        assert!(errors(text).contains("65 is out of range 1..=64"));
    }

    #[test]
    fn leftovers_are_stopped_unless_the_config_keeps_them() {
        let base = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\"]\n";
        assert_eq!(
            parse(base).expect("valid").services[0].leftovers,
            Leftovers::Stop
        );
        for (v, want) in [("stop", Leftovers::Stop), ("keep", Leftovers::Keep)] {
            let c = parse(&format!("{base}leftovers = \"{v}\"\n")).expect("valid");
            assert_eq!(c.services[0].leftovers, want);
        }
        let e = errors(&format!("{base}leftovers = \"kill\"\n"));
        assert!(
            e.contains(
                ":5: service.leftovers (service `x`): `kill` is not one of: \"stop\", \"keep\""
            ),
            "{e}"
        );
    }

    #[test]
    fn restarts_have_no_limit_unless_the_config_sets_one() {
        let base = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\"]\n";
        let restart = |extra: &str| {
            parse(&format!("{base}[service.restart]\n{extra}"))
                .expect("valid")
                .services[0]
                .restart
                .clone()
        };
        let d = parse(base).expect("valid").services[0].restart.clone();
        assert_eq!(d.max_restarts, None, "never gives up by default");
        assert_eq!(d.stable_after, Duration::from_secs(10));
        assert_eq!(restart("backoff = \"1s\"\n").max_restarts, None);
        assert_eq!(restart("max_restarts = \"unlimited\"\n").max_restarts, None);
        assert_eq!(restart("max_restarts = 5\n").max_restarts, Some(5));
        // What an older config wrote keeps its meaning: a window or an on_exhausted asked
        // for the limit that was the default then.
        let r = restart("on_exhausted = \"reboot\"\n");
        assert_eq!(r.max_restarts, Some(IMPLIED_MAX_RESTARTS));
        assert_eq!(r.on_exhausted, OnExhausted::Reboot);
        assert_eq!(restart("window = \"1m\"\n").max_restarts, Some(10));
        let r = restart("max_restarts = 3\nwindow = \"1m\"\n");
        assert_eq!(
            (r.max_restarts, r.window),
            (Some(3), Duration::from_secs(60))
        );

        let e = errors(&format!(
            "{base}[service.restart]\nmax_restarts = \"unlimited\"\non_exhausted = \"reboot\"\n"
        ));
        assert!(
                e.contains(":7: service.restart.on_exhausted (service `x`): has no effect with max_restarts = \"unlimited\""),
                "{e}"
            );
        let e = errors(&format!(
            "{base}[service.restart]\nmax_restarts = \"forever\"\n"
        ));
        assert!(
            e.contains("`forever` is neither a count 1..=64 nor \"unlimited\""),
            "{e}"
        );
        let e = errors(&format!("{base}[service.restart]\nmax_restarts = 0\n"));
        assert!(e.contains("0 is out of range 1..=64"), "{e}");
        let e = errors(&format!("{base}[service.restart]\nmax_restarts = true\n"));
        assert!(e.contains("expected a count or \"unlimited\""), "{e}");
    }

    #[test]
    fn only_a_regular_config_file_is_read_and_within_its_size() {
        let dir = std::env::temp_dir().join(format!("custos-cfgload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("custos.toml");
        std::fs::write(&file, "[supervisor]\ninterval = \"2s\"\n").expect("write");
        assert!(load(&file).is_ok());
        // A symlink is followed (a read-only /etc may point into a writable partition).
        let link = dir.join("link.toml");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(load(&link).is_ok());
        // A FIFO is refused at once: reading it would block until a writer appears.
        let fifo = dir.join("fifo.toml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = load(&fifo).expect_err("a FIFO").to_string();
        assert!(
            e.contains("fifo.toml: cannot read: is a FIFO, not a regular file"),
            "{e}"
        );
        let e = load(Path::new("/dev/null"))
            .expect_err("a device")
            .to_string();
        assert!(
            e.contains("is a character device, not a regular file"),
            "{e}"
        );
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).expect("write");
        let e = load(&big).expect_err("too big").to_string();
        assert!(e.contains("more than the 262144 custos reads"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_non_utf8_config_names_the_line_of_its_first_bad_byte() {
        let dir = std::env::temp_dir().join(format!("custos-cfgutf8-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("custos.toml");
        std::fs::write(
            &file,
            b"[supervisor]\ninterval = \"2s\"\n# caf\xe9\n# \xff\n",
        )
        .expect("write");
        let e = load(&file).expect_err("not UTF-8");
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].line, Some(3), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("custos.toml:3: not UTF-8: byte 0xe9 at column 6"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_duration_and_count_has_an_upper_bound() {
        let svc = "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\n";
        for (text, want) in [
                (
                    "[supervisor]\ninterval = \"2m\"\n".to_string(),
                    ":2: supervisor.interval: 2m is longer than the maximum 1m",
                ),
                (
                    format!("{svc}start_timeout = \"11m\"\n"),
                    "service.start_timeout (service `a`): 11m is longer than the maximum 10m",
                ),
                (
                    format!("{svc}stop_timeout = \"1h\"\n"),
                    "service.stop_timeout (service `a`): 1h is longer than the maximum 10m",
                ),
                (
                    format!("{svc}[service.restart]\nbackoff = \"2h\"\nbackoff_max = \"2h\"\n"),
                    "service.restart.backoff (service `a`): 2h is longer than the maximum 1h",
                ),
                (
                    format!("{svc}[service.restart]\nbackoff_max = \"2h\"\n"),
                    "service.restart.backoff_max (service `a`): 2h is longer than the maximum 1h",
                ),
                (
                    format!("{svc}[service.restart]\nstable_after = \"25h\"\n"),
                    "service.restart.stable_after (service `a`): 25h is longer than the maximum 24h",
                ),
                (
                    format!("{svc}[service.restart]\nwindow = \"25h\"\n"),
                    "service.restart.window (service `a`): 25h is longer than the maximum 24h",
                ),
                (
                    format!("{svc}[[service.check]]\nkind = \"tcp\"\nport = 80\ntimeout = \"2m\"\n"),
                    "timeout: 2m is longer than the maximum 1m",
                ),
                (
                    format!("{svc}[[service.check]]\nkind = \"tcp\"\nport = 80\nevery = \"25h\"\n"),
                    "every: 25h is longer than the maximum 24h",
                ),
                (
                    format!("{svc}[[service.check]]\nkind = \"tcp\"\nport = 80\ngrace = \"2h\"\n"),
                    "grace: 2h is longer than the maximum 1h",
                ),
                (
                    format!("{svc}[[service.check]]\nkind = \"cpu\"\nmax_percent = 50.0\nover = \"2h\"\n"),
                    "over: 2h is longer than the maximum 1h",
                ),
                (
                    format!("{svc}[[service.check]]\nkind = \"heartbeat\"\npath = \"/run/hb\"\nmax_age = \"25h\"\n"),
                    "max_age: 25h is longer than the maximum 24h",
                ),
                (
                    "[boot]\ngood_after = \"25h\"\n".to_string(),
                    ":2: boot.good_after: 25h is longer than the maximum 24h",
                ),
            ] {
                let e = errors(&text);
                assert!(e.contains(want), "{text}\nwant: {want}\ngot: {e}");
            }
        // At the bound itself: accepted.
        parse(&format!("[supervisor]\ninterval = \"1m\"\n{svc}start_timeout = \"10m\"\n[boot]\ngood_after = \"24h\"\n")).expect("at the bounds");
    }

    #[test]
    fn watchdog_timeout_is_within_what_drivers_accept() {
        let e = errors("[watchdog]\ntimeout = \"65536s\"\n");
        assert!(
            e.contains(":2: watchdog.timeout: 65536s is longer than the maximum 65535s"),
            "{e}"
        );
        let e = errors("[watchdog]\ntimeout = \"2000h\"\n");
        assert!(e.contains("is longer than the maximum 65535s"), "{e}");
        let w = parse("[watchdog]\ntimeout = \"65535s\"\n")
            .expect("softdog's maximum")
            .watchdog
            .expect("watchdog");
        assert_eq!(w.timeout, Duration::from_secs(65535));
    }

    #[test]
    fn program_checks_run_at_most_once_a_second() {
        let svc = "[supervisor]\ninterval = \"250ms\"\n[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\n[[service.check]]\nkind = \"program\"\nargv = [\"/bin/true\"]\n";
        let e = errors(&format!("{svc}every = \"500ms\"\n"));
        assert!(
            e.contains(
                ":10: service.check[0] (service `a`).every: 500ms is shorter than the minimum 1s"
            ),
            "{e}"
        );
        // Unset: the supervisor interval, but never under the floor.
        let c = parse(svc).expect("valid");
        assert_eq!(c.services[0].checks[0].every, Duration::from_secs(1));
        // Other kinds keep the interval.
        let c = parse(&svc.replace(
            "kind = \"program\"\nargv = [\"/bin/true\"]",
            "kind = \"tcp\"\nport = 80",
        ))
        .expect("valid");
        assert_eq!(c.services[0].checks[0].every, Duration::from_millis(250));
    }

    #[test]
    fn empty_args_are_refused() {
        let e = errors(
            "[[service]]\nname = \"a\"\nexe = \"/bin/a\"\nargs = \"\"\nstart = [\"/bin/a\"]\n",
        );
        assert!(
            e.contains(
                ":4: service.args (service `a`): empty: leave `args` out to match any arguments"
            ),
            "{e}"
        );
    }

    #[test]
    fn reboot_without_a_watchdog_is_warned_about() {
        let text = "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\n[service.restart]\non_exhausted = \"reboot\"\n";
        let c = parse(text).expect("valid, with a warning");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].line, Some(6));
        assert!(
            c.warnings[0].message.contains("no [watchdog]"),
            "{:?}",
            c.warnings
        );
        let c = parse(&format!("{text}[watchdog]\n")).expect("valid");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn an_exe_written_through_a_symlink_is_refused() {
        let dir = std::env::temp_dir().join(format!("custos-exe-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let real = dir.join("daemon");
        std::fs::write(&real, "#!/bin/sh\n").expect("write");
        let link = dir.join("applet");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let svc = |exe: &Path| {
            format!(
                "[[service]]\nname = \"x\"\nexe = \"{}\"\nstart = [\"/bin/true\"]\n",
                exe.display()
            )
        };
        let e = parse_with_init(&svc(&link), None).expect_err("a symlink");
        assert_eq!(e[0].line, Some(3), "{e:?}");
        assert_eq!(e[0].key, "service.exe (service `x`)");
        assert!(
            e[0].message
                .contains(&format!("resolves to `{}`", real.display())),
            "{e:?}"
        );
        assert!(parse_with_init(&svc(&real), None).is_ok());
        // Not on this machine: nothing to resolve, taken as written.
        assert!(parse_with_init(&svc(Path::new("/opt/board/sbin/httpd")), None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_exe_identity_that_could_match_init_is_refused() {
        // A path absent from this machine: where `exe` exists, it must be written as
        // /proc/PID/exe names it (on a merged-/usr host, /bin/busybox is /usr/bin/busybox).
        let init = InitIdentity {
            exe: "/opt/board/bin/busybox".into(),
            args: String::new(),
        };
        let svc = |extra: &str| {
            format!("[[service]]\nname = \"x\"\nexe = \"/opt/board/bin/busybox\"\n{extra}start = [\"/bin/true\"]\n")
        };
        // (`args = ""` is refused on its own: see empty_args_are_refused.)
        let e = parse_with_init(&svc(""), Some(&init)).expect_err("matches init");
        assert_eq!(e[0].line, Some(3), "{e:?}");
        assert_eq!(e[0].key, "service.exe (service `x`)");
        assert!(e[0].message.contains("could match PID 1"), "{e:?}");
        // busybox init's own cmdline, as the emulated board shows it.
        assert_eq!(args_of(b"init\0\0\0\0\0\0\0"), "");
        assert_eq!(args_of(b"/sbin/init\0splash\0"), "splash");
        // Arguments init does not have: cannot match it.
        assert!(parse_with_init(&svc("args = \"httpd -f\"\n"), Some(&init)).is_ok());
        // Another program: fine.
        let other = InitIdentity {
            exe: "/sbin/systemd".into(),
            args: "--system".into(),
        };
        assert!(parse_with_init(&svc(""), Some(&other)).is_ok());
    }

    #[test]
    fn names_and_identity_rules() {
        let e = errors(
            "[[service]]\nname = \"bad name!\"\npidfile = \"/a\"\nexe = \"/b\"\nstart = [\"/bin/x\"]\n",
        );
        assert!(e.contains("is not a valid name"), "{e}");
        assert!(
            e.contains("give either `pidfile` or `exe`, not both"),
            "{e}"
        );
        let e = errors("[[service]]\nname = \"x\"\nstart = [\"x\"]\n");
        assert!(e.contains("missing: give `pidfile`"), "{e}");
        assert!(
            e.contains("`x` is not an absolute path (scripts run without a shell"),
            "{e}"
        );
        let e = errors("[supervisor]\ninterval = \"5ms\"\n");
        assert!(e.contains("5ms is shorter than the minimum 10ms"), "{e}");
    }

    #[test]
    fn checks_load_with_their_defaults_and_wrong_keys_are_named() {
        let text = r#"
    [supervisor]
    interval = "2s"
    [[service]]
    name = "web_server"
    pidfile = "/var/run/web_server.pid"
    start = ["/etc/init.d/web_server", "start"]
    [[service.check]]
    kind = "http"
    host = "127.0.0.1"
    port = 80
    path = "/watchdog_page.html"
    expect = "woof woof still alive"
    timeout = "1s"
    failures = 2
    [[service.check]]
    kind = "memory"
    max = "64MiB"
    action = "log"
    [[service.check]]
    kind = "fds"
    max = 512
    [[service.check]]
    kind = "heartbeat"
    path = "/run/app.alive"
    max_age = "30s"
    "#;
        let c = parse(text).expect("valid");
        let checks = &c.services[0].checks;
        assert_eq!(checks.len(), 4);
        assert_eq!(
            checks[0].kind,
            CheckKind::Http {
                addr: "127.0.0.1:80".parse().expect("addr"),
                path: "/watchdog_page.html".into(),
                status: 200,
                expect: Some("woof woof still alive".into())
            }
        );
        assert_eq!(
            checks[0].every,
            Duration::from_secs(2),
            "defaults to the interval"
        );
        assert_eq!(checks[0].failures, 2);
        assert_eq!(checks[0].grace, Duration::from_secs(10));
        assert_eq!(
            checks[1].kind,
            CheckKind::Memory {
                max_bytes: 64 << 20
            }
        );
        assert_eq!(checks[1].action, CheckAction::Log);
        assert_eq!(checks[2].kind, CheckKind::Fds { max: 512 });
        assert_eq!(
            checks[0].to_string(),
            "http 127.0.0.1:80/watchdog_page.html"
        );

        let bad = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\"]\n[[service.check]]\nkind = \"tcp\"\nhost = \"localhost\"\nport = 70000\nexpect = \"x\"\n[[service.check]]\nkind = \"smtp\"\n";
        let e = errors(bad);
        assert!(e.contains(":7: service.check[0] (service `x`).host: `localhost` is not an IP address (names are not resolved)"), "{e}");
        assert!(
            e.contains(":8: service.check[0] (service `x`).port: 70000 is not a port"),
            "{e}"
        );
        assert!(
            e.contains(":9: service.check[0] (service `x`).expect: does not apply to kind \"tcp\""),
            "{e}"
        );
        assert!(
            e.contains(":11: service.check[1] (service `x`).kind: `smtp` is not one of"),
            "{e}"
        );
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert!(parse_size("5MB").is_err());
    }

    #[test]
    fn the_watchdog_section() {
        let c =
            parse("[watchdog]\ndevice = \"/dev/watchdog0\"\ntimeout = \"15s\"\n").expect("valid");
        let w = c.watchdog.expect("section");
        assert_eq!(w.device, PathBuf::from("/dev/watchdog0"));
        assert_eq!(w.pet_every, Duration::from_secs(5), "timeout/3 by default");
        assert!(!w.magic_close);
        assert!(parse("").expect("valid").watchdog.is_none());
        let e = errors("[watchdog]\ntimeout = \"5s\"\npet_every = \"5s\"\n");
        assert!(
            e.contains(":3: watchdog.pet_every: 5s is not shorter than the timeout 5s"),
            "{e}"
        );
        let e = errors("[watchdog]\ntimeout = \"1500ms\"\n");
        assert!(e.contains("whole seconds"), "{e}");
    }

    #[test]
    fn hooks_are_read_and_their_mistakes_refused_with_line_and_key() {
        let svc = "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\n";
        let c = parse(&format!(
                "{svc}[[hook]]\non = [\"died\", \"flapping\"]\nrun = [\"/bin/h\"]\nservices = [\"a\"]\nflap_count = 3\nflap_within = \"1m\"\n"
            ))
            .expect("valid");
        let h = &c.hooks[0];
        assert_eq!(h.timeout, crate::config::DEFAULT_HOOK_TIMEOUT);
        assert_eq!(h.flap, Some((3, Duration::from_secs(60))));
        assert_eq!(h.services, ["a"]);
        let e = errors(&format!("{svc}[[hook]]\non = [\"died\"]\nflap_count = 3\n"));
        assert!(e.contains(":5: hook.run: missing"), "{e}");
        assert!(
            e.contains("hook.flap_count: flap_count and flap_within go together"),
            "{e}"
        );
        let e = errors(&format!(
                "{svc}[[hook]]\non = [\"flapping\"]\nrun = [\"/bin/h\"]\nservices = [\"b\"]\ntimeout = \"1h\"\n"
            ));
        assert!(
            e.contains(":6: hook.on: `flapping` needs flap_count and flap_within"),
            "{e}"
        );
        assert!(
            e.contains(":8: hook.services: no service is named `b`"),
            "{e}"
        );
        assert!(
            e.contains(":9: hook.timeout: 1h is longer than the maximum 10m"),
            "{e}"
        );
        let nine = "[[hook]]\non = [\"died\"]\nrun = [\"/bin/h\"]\n".repeat(9);
        let e = errors(&format!("{svc}{nine}"));
        assert!(e.contains("hook: 9 hooks, over the limit of 8"), "{e}");
    }

    #[test]
    fn the_boot_health_gate() {
        let svc =
            "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\nvital = true\n";
        let c = parse(&format!(
                "{svc}[boot]\nhealthy_after = \"2m\"\non_healthy = [\"/usr/bin/rauc\", \"status\", \"mark-good\"]\n"
            ))
            .expect("valid");
        let g = c.boot.gate.expect("gate");
        assert_eq!(
            (g.healthy_after, g.deadline, g.timeout),
            (
                Duration::from_secs(120),
                DEFAULT_DEADLINE,
                DEFAULT_GATE_TIMEOUT
            )
        );
        assert!(c.services[0].vital);
        assert!(g.on_unhealthy.is_none());
        let e = errors(&format!(
            "{svc}[boot]\nhealthy_after = \"2m\"\ndeadline = \"1m\"\n"
        ));
        assert!(
            e.contains("boot.deadline: 1m is not longer than healthy_after 2m"),
            "{e}"
        );
        assert!(
            e.contains("boot.healthy_after: neither on_healthy nor on_unhealthy is set"),
            "{e}"
        );
        let e = errors("[boot]\non_unhealthy = [\"/sbin/reboot\"]\ntimeout = \"5s\"\n");
        assert!(
                e.contains(":2: boot.on_unhealthy: belongs to the boot-health gate, which needs boot.healthy_after"),
                "{e}"
            );
        assert!(
            e.contains(":3: boot.timeout: belongs to the boot-health gate"),
            "{e}"
        );
        let e = errors(&format!(
            "{svc}[boot]\nhealthy_after = \"2m\"\non_healthy = [\"rauc\"]\n"
        ));
        assert!(
            e.contains("boot.on_healthy: `rauc` is not an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn the_boot_section() {
        let c = parse("").expect("valid");
        assert_eq!(c.boot, BootConfig::default());
        assert_eq!(
            (c.boot.max_resets, c.boot.clear_after, c.boot.good_after),
            (3, 2, Duration::from_secs(600))
        );
        let c = parse("[boot]\nmax_resets = 0\nclear_after = 8\ngood_after = \"90s\"\n")
            .expect("valid");
        assert_eq!(
            (c.boot.max_resets, c.boot.clear_after, c.boot.good_after),
            (0, 8, Duration::from_secs(90))
        );
        let e = errors(
            "[boot]\nmax_resets = 17\nclear_after = 0\ngood_after = \"500ms\"\nwindow = 3\n",
        );
        assert!(
            e.contains(
                ":5: boot.window: unknown key; allowed here: max_resets, clear_after, good_after"
            ),
            "{e}"
        );
        let e = errors("[boot]\nmax_resets = 17\nclear_after = 0\ngood_after = \"500ms\"\n");
        assert!(
            e.contains(":2: boot.max_resets: 17 is not within 0..=16"),
            "{e}"
        );
        assert!(
            e.contains(":3: boot.clear_after: 0 is not within 1..=8"),
            "{e}"
        );
        assert!(
            e.contains(":4: boot.good_after: 500ms is shorter than the minimum 1s"),
            "{e}"
        );
        // The old spelling in [watchdog] is still read; reset_window is read and ignored.
        let c = parse("[watchdog]\nmax_resets = 1\nreset_window = \"1h\"\n").expect("valid");
        assert_eq!(c.boot.max_resets, 1);
        let e = errors("[watchdog]\nmax_resets = 1\n[boot]\nmax_resets = 2\n");
        assert!(
            e.contains(":2: watchdog.max_resets: set in [boot] too: keep boot.max_resets only"),
            "{e}"
        );
        assert!(errors("[watchdog]\nmax_resets = -1\n")
            .contains("watchdog.max_resets: -1 is not within 0..=16"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("18446744073709551615h").is_err());
        assert_eq!(Dur(Duration::from_millis(500)).to_string(), "500ms");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1.5s");
        assert_eq!(Dur(Duration::from_secs(150)).to_string(), "2m30s");
        assert_eq!(Dur(Duration::from_secs(600)).to_string(), "10m");
        // Edges of each form, and the largest duration there is.
        assert_eq!(Dur(Duration::from_micros(999_999)).to_string(), "999ms");
        assert_eq!(Dur(Duration::from_millis(59_999)).to_string(), "59.9s");
        assert_eq!(Dur(Duration::from_millis(60_999)).to_string(), "1m");
        assert_eq!(Dur(Duration::from_secs(3600)).to_string(), "1h");
        assert_eq!(Dur(Duration::from_secs(3661)).to_string(), "1h1m");
        assert_eq!(Dur(Duration::MAX).to_string(), "5124095576030431h");
    }

    const SVC: &str = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/x\"]\n";

    #[test]
    fn unknown_keys_are_named_with_the_keys_allowed_in_every_table() {
        let e = errors("[supervisor]\nintervall = \"2s\"\n");
        assert_eq!(
                e,
                "/etc/custos.toml:2: supervisor.intervall: unknown key; allowed here: interval, state_dir, control_socket, control_group, log"
            );
        let e = errors("colour = 1\n");
        assert_eq!(
                e,
                "/etc/custos.toml:1: colour: unknown key; allowed here: supervisor, watchdog, boot, metrics, service, hook"
            );
        let e = errors(&format!(
                "{SVC}restart_delay = \"1s\"\n[service.restart]\ntries = 3\n[[service.check]]\nkind = \"tcp\"\nport = 22\nretries = 2\n"
            ));
        assert!(
                e.contains(":5: service.restart_delay (service `x`): unknown key; allowed here: name, pidfile, exe, args, start, stop,"),
                "{e}"
            );
        assert!(
            e.contains(
                ":7: service.restart.tries (service `x`): unknown key; allowed here: backoff,"
            ),
            "{e}"
        );
        assert!(
            e.contains(
                ":11: service.check[0] (service `x`).retries: unknown key; allowed here: kind,"
            ),
            "{e}"
        );
        let e = errors("[watchdog]\ndevise = \"/dev/watchdog\"\n");
        assert!(
            e.starts_with("/etc/custos.toml:2: watchdog.devise: unknown key"),
            "{e}"
        );
        // A service without a name is named by its index.
        let e = errors("[[service]]\npidfile = \"/run/x.pid\"\nfoo = 1\n");
        assert!(
            e.starts_with("/etc/custos.toml:3: service[0].foo: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_with_their_line() {
        let e = errors("[supervisor]\ninterval = 5\n");
        assert_eq!(
            e,
            "/etc/custos.toml:2: supervisor.interval: expected a string, found an integer"
        );
        let e = errors(&format!("{SVC}stop = \"/bin/x stop\"\n"));
        assert_eq!(
                e,
                "/etc/custos.toml:5: service.stop (service `x`): expected an array of strings, found a string"
            );
        let e = errors(
            "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\n  \"/bin/x\",\n  3,\n]\n",
        );
        assert_eq!(
            e,
            "/etc/custos.toml:6: service.start (service `x`): expected a string, found an integer"
        );
        let e = errors("[service]\nname = \"x\"\n");
        assert!(
            e.starts_with("/etc/custos.toml:1: service: expected an array of tables"),
            "{e}"
        );
        let e = errors("[watchdog]\nmagic_close = \"yes\"\n");
        assert!(
            e.contains(":2: watchdog.magic_close: expected true or false"),
            "{e}"
        );
        let e = errors(&format!(
            "{SVC}[[service.check]]\nkind = \"memory\"\nmax = 1.5\n"
        ));
        assert!(
            e.contains(":7: service.check[0] (service `x`).max: expected a size"),
            "{e}"
        );
        let e = errors(&format!(
            "{SVC}[[service.check]]\nkind = \"tcp\"\nport = 99999999999999999999\n"
        ));
        assert!(
            e.contains(
                ":7: service.check[0] (service `x`).port: 99999999999999999999 is too large"
            ),
            "{e}"
        );
        // Every such problem is reported, in line order, before any value is checked.
        let e = errors(
            "[watchdog]\nmax_resets = \"3\"\n[supervisor]\ninterval = 1\nlog = \"nowhere\"\n",
        );
        assert_eq!(
            e,
            "/etc/custos.toml:2: watchdog.max_resets: expected an integer, found a string\n\
                 /etc/custos.toml:4: supervisor.interval: expected a string, found an integer"
        );
    }

    #[test]
    fn toml_syntax_errors_keep_their_line() {
        let e = errors("[supervisor]\ninterval = \"1s\"\nlog = \n");
        assert!(e.starts_with("/etc/custos.toml:3: "), "{e}");
        let e = errors("[supervisor]\ninterval = \"1s\"\ninterval = \"2s\"\n");
        assert!(e.starts_with("/etc/custos.toml:3: "), "{e}");
    }

    #[test]
    fn numbers_and_inline_tables_read_as_toml_writes_them() {
        // An integer where a float is wanted; hex and underscores; inline arrays of tables.
        let c = parse(
                "service = [{ name = \"x\", pidfile = \"/run/x.pid\", start = [\"/bin/x\"], check = [\n  { kind = \"cpu\", max_percent = 50 },\n  { kind = \"tcp\", port = 0x50 },\n  { kind = \"fds\", max = 1_024 },\n] }]\n[watchdog]\nmagic_close = true\nmax_resets = 0\n",
            )
            .expect("valid");
        let checks = &c.services[0].checks;
        assert_eq!(
            checks[0].kind,
            CheckKind::Cpu {
                max_percent: 50.0,
                over: Duration::from_secs(30)
            }
        );
        assert_eq!(
            checks[1].kind,
            CheckKind::Tcp {
                addr: "127.0.0.1:80".parse().expect("addr")
            }
        );
        assert_eq!(checks[2].kind, CheckKind::Fds { max: 1024 });
        let w = c.watchdog.expect("section");
        assert!(w.magic_close);
        assert_eq!(c.boot.max_resets, 0);
        let e = errors(&format!(
            "{SVC}[[service.check]]\nkind = \"cpu\"\nmax_percent = 1e400\n"
        ));
        assert!(
            e.contains(":7: service.check[0] (service `x`).max_percent: 1e400 is too large"),
            "{e}"
        );
    }
}

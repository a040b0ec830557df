//! Config: parse (toml's span-preserving document tree, read by hand: no serde; unknown keys
//! refused), validate (every problem collected, each with `file:line: key: message`), then hand
//! a checked `Config` to the supervisor. Nothing here touches a process or a device, so a bad
//! reload costs nothing.

use std::ffi::CString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::clock::Dur;
pub use crate::core::{OnExhausted, RestartPolicy, IMPLIED_MAX_RESTARTS};
use crate::limits::*;

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

// ---------------------------------------------------------------------------------------------
// The raw, as-written shape, read by hand from toml's span-preserving document tree (no serde:
// derived deserializers cost about 100 KiB on armv7). Spans give the line of each key for
// validation errors.

/// A value of the document tree, with its span.
type Value<'i> = Spanned<DeValue<'i>>;

struct RawConfig {
    supervisor: Option<Spanned<RawSupervisor>>,
    watchdog: Option<Spanned<RawWatchdog>>,
    boot: Option<Spanned<RawBoot>>,
    metrics: Option<Spanned<RawMetrics>>,
    service: Vec<Spanned<RawService>>,
    hook: Vec<Spanned<RawHook>>,
}

struct RawHook {
    on: Option<Spanned<Vec<String>>>,
    run: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    services: Option<Spanned<Vec<String>>>,
    flap_count: Option<Spanned<i64>>,
    flap_within: Option<Spanned<String>>,
}

struct RawMetrics {
    textfile: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
}

struct RawBoot {
    max_resets: Option<Spanned<i64>>,
    clear_after: Option<Spanned<i64>>,
    good_after: Option<Spanned<String>>,
    healthy_after: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
    on_healthy: Option<Spanned<Vec<String>>>,
    on_unhealthy: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
}

struct RawWatchdog {
    device: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    pet_every: Option<Spanned<String>>,
    magic_close: Option<Spanned<bool>>,
    max_resets: Option<Spanned<i64>>,
    reset_window: Option<Spanned<String>>,
}

struct RawSupervisor {
    interval: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    control_socket: Option<Spanned<String>>,
    control_group: Option<Spanned<String>>,
    log: Option<Spanned<String>>,
}

struct RawService {
    name: Option<Spanned<String>>,
    pidfile: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    args: Option<Spanned<String>>,
    start: Option<Spanned<Vec<String>>>,
    stop: Option<Spanned<Vec<String>>>,
    start_timeout: Option<Spanned<String>>,
    stop_timeout: Option<Spanned<String>>,
    leftovers: Option<Spanned<String>>,
    restart: Option<Spanned<RawRestart>>,
    check: Vec<Spanned<RawCheck>>,
    vital: Option<Spanned<bool>>,
}

/// `max` is a size ("64MiB") for memory checks and a count for fds checks.
enum RawMax {
    Count(i64),
    Size(String),
}

struct RawCheck {
    kind: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    path: Option<Spanned<String>>,
    status: Option<Spanned<i64>>,
    expect: Option<Spanned<String>>,
    max: Option<Spanned<RawMax>>,
    max_percent: Option<Spanned<f64>>,
    over: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    argv: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    failures: Option<Spanned<i64>>,
    grace: Option<Spanned<String>>,
    action: Option<Spanned<String>>,
}

struct RawRestart {
    backoff: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    stable_after: Option<Spanned<String>>,
    max_restarts: Option<Spanned<RawLimit>>,
    window: Option<Spanned<String>>,
    on_exhausted: Option<Spanned<String>>,
}

/// `max_restarts`: a count, or a word (only "unlimited" is valid).
enum RawLimit {
    Count(i64),
    Word(String),
}

/// How the keys of one table are named in errors: `{prefix}{key}{suffix}`, e.g.
/// `service.` + `start` + `` (service `web`)``.
struct Label {
    prefix: String,
    suffix: String,
}

impl Label {
    fn new(prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        Label {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}{}", self.prefix, self.suffix)
    }
}

/// `a string`, `an integer`, ...: what a value is, for type errors.
fn what(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Reading the document tree into the raw shape: unknown keys and values of the wrong type are
/// errors (with the line of the key or value); nothing else is checked here.
impl Validator<'_> {
    /// The values of `names` in `table`, in that order; every other key is refused, with the
    /// list of the keys allowed there.
    fn fields<'a, 'i, const N: usize>(
        &mut self,
        table: &'a DeTable<'i>,
        names: [&str; N],
        label: &Label,
    ) -> [Option<&'a Value<'i>>; N] {
        let mut found = [None; N];
        self.lookup(table, &names, &mut found, label);
        found
    }

    fn lookup<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        names: &[&str],
        found: &mut [Option<&'a Value<'i>>],
        label: &Label,
    ) {
        for (k, v) in table.iter() {
            let key: &str = k.get_ref();
            match names.iter().zip(found.iter_mut()).find(|(n, _)| **n == key) {
                Some((_, slot)) => *slot = Some(v),
                None => self.err(
                    Some(k.span()),
                    &label.key(key),
                    format!("unknown key; allowed here: {}", names.join(", ")),
                ),
            }
        }
    }

    fn wrong_type(&mut self, v: &Value<'_>, label: &Label, name: &str, want: &str) {
        self.err(
            Some(v.span()),
            &label.key(name),
            format!("expected {want}, found {}", what(v.get_ref())),
        );
    }

    fn string(
        &mut self,
        v: Option<&Value<'_>>,
        label: &Label,
        name: &str,
    ) -> Option<Spanned<String>> {
        let v = v?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong_type(v, label, name, "a string");
                None
            }
        }
    }

    fn boolean(
        &mut self,
        v: Option<&Value<'_>>,
        label: &Label,
        name: &str,
    ) -> Option<Spanned<bool>> {
        let v = v?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(v.span(), *b)),
            _ => {
                self.wrong_type(v, label, name, "true or false");
                None
            }
        }
    }

    /// An integer that fits in an i64 (hexadecimal, octal and binary included).
    fn int_of(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    Some(v.span()),
                    &label.key(name),
                    format!("{i} is too large for an integer"),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        v: Option<&Value<'_>>,
        label: &Label,
        name: &str,
    ) -> Option<Spanned<i64>> {
        let v = v?;
        if !v.get_ref().is_integer() {
            self.wrong_type(v, label, name, "an integer");
            return None;
        }
        self.int_of(v, label, name)
            .map(|n| Spanned::new(v.span(), n))
    }

    /// A float, or an integer taken as one.
    fn float(&mut self, v: Option<&Value<'_>>, label: &Label, name: &str) -> Option<Spanned<f64>> {
        let v = v?;
        let f = match v.get_ref() {
            DeValue::Integer(_) => self.int_of(v, label, name)? as f64,
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                // As toml does: an overflow parses as infinity, a written `inf` is kept.
                Ok(x) if !x.is_infinite() || f.as_str().contains("inf") => x,
                _ => {
                    self.err(
                        Some(v.span()),
                        &label.key(name),
                        format!("{f} is too large for a float"),
                    );
                    return None;
                }
            },
            _ => {
                self.wrong_type(v, label, name, "a number");
                return None;
            }
        };
        Some(Spanned::new(v.span(), f))
    }

    /// An array of strings (an argv).
    fn strings(
        &mut self,
        v: Option<&Value<'_>>,
        label: &Label,
        name: &str,
    ) -> Option<Spanned<Vec<String>>> {
        let v = v?;
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, label, name, "an array of strings");
            return None;
        };
        let mut list = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => list.push(s.to_string()),
                _ => {
                    self.wrong_type(item, label, name, "a string");
                    ok = false;
                }
            }
        }
        ok.then(|| Spanned::new(v.span(), list))
    }

    fn table<'a, 'i>(
        &mut self,
        v: Option<&'a Value<'i>>,
        label: &Label,
        name: &str,
    ) -> Option<(Range<usize>, &'a DeTable<'i>)> {
        let v = v?;
        match v.get_ref() {
            DeValue::Table(t) => Some((v.span(), t)),
            _ => {
                self.wrong_type(v, label, name, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[name]]`); absent is empty.
    fn tables<'a, 'i>(
        &mut self,
        v: Option<&'a Value<'i>>,
        label: &Label,
        name: &str,
    ) -> Vec<(Range<usize>, &'a DeTable<'i>)> {
        let mut out = Vec::new();
        let Some(v) = v else { return out };
        let want = "an array of tables ([[...]])";
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, label, name, want);
            return out;
        };
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push((item.span(), t)),
                _ => self.wrong_type(item, label, name, want),
            }
        }
        out
    }

    fn read_config(&mut self, doc: &DeTable<'_>) -> RawConfig {
        let top = Label::new("", "");
        let [supervisor, watchdog, boot, metrics, service, hook] = self.fields(
            doc,
            [
                "supervisor",
                "watchdog",
                "boot",
                "metrics",
                "service",
                "hook",
            ],
            &top,
        );
        let supervisor = self
            .table(supervisor, &top, "supervisor")
            .map(|(span, t)| Spanned::new(span, self.read_supervisor(t)));
        let watchdog = self
            .table(watchdog, &top, "watchdog")
            .map(|(span, t)| Spanned::new(span, self.read_watchdog(t)));
        let boot = self
            .table(boot, &top, "boot")
            .map(|(span, t)| Spanned::new(span, self.read_boot(t)));
        let metrics = self.table(metrics, &top, "metrics").map(|(span, t)| {
            let l = Label::new("metrics.", "");
            let [textfile, every] = self.fields(t, ["textfile", "every"], &l);
            Spanned::new(
                span,
                RawMetrics {
                    textfile: self.string(textfile, &l, "textfile"),
                    every: self.string(every, &l, "every"),
                },
            )
        });
        let service = self
            .tables(service, &top, "service")
            .into_iter()
            .enumerate()
            .map(|(i, (span, t))| Spanned::new(span, self.read_service(i, t)))
            .collect();
        let hook = self
            .tables(hook, &top, "hook")
            .into_iter()
            .map(|(span, t)| {
                let l = Label::new("hook.", "");
                let [on, run, timeout, services, flap_count, flap_within] = self.fields(
                    t,
                    [
                        "on",
                        "run",
                        "timeout",
                        "services",
                        "flap_count",
                        "flap_within",
                    ],
                    &l,
                );
                Spanned::new(
                    span,
                    RawHook {
                        on: self.strings(on, &l, "on"),
                        run: self.strings(run, &l, "run"),
                        timeout: self.string(timeout, &l, "timeout"),
                        services: self.strings(services, &l, "services"),
                        flap_count: self.integer(flap_count, &l, "flap_count"),
                        flap_within: self.string(flap_within, &l, "flap_within"),
                    },
                )
            })
            .collect();
        RawConfig {
            supervisor,
            watchdog,
            boot,
            metrics,
            service,
            hook,
        }
    }

    fn read_boot(&mut self, t: &DeTable<'_>) -> RawBoot {
        let l = Label::new("boot.", "");
        let [max_resets, clear_after, good_after, healthy_after, deadline, on_healthy, on_unhealthy, timeout] =
            self.fields(
                t,
                [
                    "max_resets",
                    "clear_after",
                    "good_after",
                    "healthy_after",
                    "deadline",
                    "on_healthy",
                    "on_unhealthy",
                    "timeout",
                ],
                &l,
            );
        RawBoot {
            max_resets: self.integer(max_resets, &l, "max_resets"),
            clear_after: self.integer(clear_after, &l, "clear_after"),
            good_after: self.string(good_after, &l, "good_after"),
            healthy_after: self.string(healthy_after, &l, "healthy_after"),
            deadline: self.string(deadline, &l, "deadline"),
            on_healthy: self.strings(on_healthy, &l, "on_healthy"),
            on_unhealthy: self.strings(on_unhealthy, &l, "on_unhealthy"),
            timeout: self.string(timeout, &l, "timeout"),
        }
    }

    fn read_supervisor(&mut self, t: &DeTable<'_>) -> RawSupervisor {
        let l = Label::new("supervisor.", "");
        let [interval, state_dir, control_socket, control_group, log] = self.fields(
            t,
            [
                "interval",
                "state_dir",
                "control_socket",
                "control_group",
                "log",
            ],
            &l,
        );
        RawSupervisor {
            interval: self.string(interval, &l, "interval"),
            state_dir: self.string(state_dir, &l, "state_dir"),
            control_socket: self.string(control_socket, &l, "control_socket"),
            control_group: self.string(control_group, &l, "control_group"),
            log: self.string(log, &l, "log"),
        }
    }

    fn read_watchdog(&mut self, t: &DeTable<'_>) -> RawWatchdog {
        let l = Label::new("watchdog.", "");
        let [device, timeout, pet_every, magic_close, max_resets, reset_window] = self.fields(
            t,
            [
                "device",
                "timeout",
                "pet_every",
                "magic_close",
                "max_resets",
                "reset_window",
            ],
            &l,
        );
        RawWatchdog {
            device: self.string(device, &l, "device"),
            timeout: self.string(timeout, &l, "timeout"),
            pet_every: self.string(pet_every, &l, "pet_every"),
            magic_close: self.boolean(magic_close, &l, "magic_close"),
            max_resets: self.integer(max_resets, &l, "max_resets"),
            reset_window: self.string(reset_window, &l, "reset_window"),
        }
    }

    fn read_service(&mut self, i: usize, t: &DeTable<'_>) -> RawService {
        // Keys named as the validator names them: by the service's name once it has one.
        let svc = t.get("name").and_then(|n| n.get_ref().as_str());
        let l = match svc {
            Some(n) => Label::new("service.", format!(" (service `{n}`)")),
            None => Label::new(format!("service[{i}]."), ""),
        };
        let [name, pidfile, exe, args, start, stop, start_timeout, stop_timeout, leftovers, restart, check, vital] =
            self.fields(
                t,
                [
                    "name",
                    "pidfile",
                    "exe",
                    "args",
                    "start",
                    "stop",
                    "start_timeout",
                    "stop_timeout",
                    "leftovers",
                    "restart",
                    "check",
                    "vital",
                ],
                &l,
            );
        let restart = self.table(restart, &l, "restart").map(|(span, t)| {
            let rl = Label::new(format!("{}restart.", l.prefix), l.suffix.as_str());
            Spanned::new(span, self.read_restart(t, &rl))
        });
        let check = self
            .tables(check, &l, "check")
            .into_iter()
            .enumerate()
            .map(|(j, (span, t))| {
                let cl = match svc {
                    Some(n) => Label::new(format!("service.check[{j}] (service `{n}`)."), ""),
                    None => Label::new(format!("service[{i}].check[{j}]."), ""),
                };
                Spanned::new(span, self.read_check(t, &cl))
            })
            .collect();
        RawService {
            name: self.string(name, &l, "name"),
            pidfile: self.string(pidfile, &l, "pidfile"),
            exe: self.string(exe, &l, "exe"),
            args: self.string(args, &l, "args"),
            start: self.strings(start, &l, "start"),
            stop: self.strings(stop, &l, "stop"),
            start_timeout: self.string(start_timeout, &l, "start_timeout"),
            stop_timeout: self.string(stop_timeout, &l, "stop_timeout"),
            leftovers: self.string(leftovers, &l, "leftovers"),
            restart,
            check,
            vital: self.boolean(vital, &l, "vital"),
        }
    }

    fn read_restart(&mut self, t: &DeTable<'_>, l: &Label) -> RawRestart {
        let [backoff, backoff_max, stable_after, max_restarts, window, on_exhausted] = self.fields(
            t,
            [
                "backoff",
                "backoff_max",
                "stable_after",
                "max_restarts",
                "window",
                "on_exhausted",
            ],
            l,
        );
        RawRestart {
            backoff: self.string(backoff, l, "backoff"),
            backoff_max: self.string(backoff_max, l, "backoff_max"),
            stable_after: self.string(stable_after, l, "stable_after"),
            max_restarts: max_restarts.and_then(|m| match m.get_ref() {
                DeValue::Integer(_) => self
                    .int_of(m, l, "max_restarts")
                    .map(|n| Spanned::new(m.span(), RawLimit::Count(n))),
                DeValue::String(w) => Some(Spanned::new(m.span(), RawLimit::Word(w.to_string()))),
                _ => {
                    self.wrong_type(m, l, "max_restarts", "a count or \"unlimited\"");
                    None
                }
            }),
            window: self.string(window, l, "window"),
            on_exhausted: self.string(on_exhausted, l, "on_exhausted"),
        }
    }

    fn read_check(&mut self, t: &DeTable<'_>, l: &Label) -> RawCheck {
        let [kind, host, port, path, status, expect, max, max_percent, over, max_age, argv, timeout, every, failures, grace, action] =
            self.fields(
                t,
                [
                    "kind",
                    "host",
                    "port",
                    "path",
                    "status",
                    "expect",
                    "max",
                    "max_percent",
                    "over",
                    "max_age",
                    "argv",
                    "timeout",
                    "every",
                    "failures",
                    "grace",
                    "action",
                ],
                l,
            );
        let max = max.and_then(|m| match m.get_ref() {
            DeValue::Integer(_) => self
                .int_of(m, l, "max")
                .map(|n| Spanned::new(m.span(), RawMax::Count(n))),
            DeValue::String(s) => Some(Spanned::new(m.span(), RawMax::Size(s.to_string()))),
            _ => {
                self.wrong_type(m, l, "max", "a size (\"64MiB\") or a count");
                None
            }
        });
        RawCheck {
            kind: self.string(kind, l, "kind"),
            host: self.string(host, l, "host"),
            port: self.integer(port, l, "port"),
            path: self.string(path, l, "path"),
            status: self.integer(status, l, "status"),
            expect: self.string(expect, l, "expect"),
            max,
            max_percent: self.float(max_percent, l, "max_percent"),
            over: self.string(over, l, "over"),
            max_age: self.string(max_age, l, "max_age"),
            argv: self.strings(argv, l, "argv"),
            timeout: self.string(timeout, l, "timeout"),
            every: self.string(every, l, "every"),
            failures: self.integer(failures, l, "failures"),
            grace: self.string(grace, l, "grace"),
            action: self.string(action, l, "action"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Reads and checks a config file. Every problem is reported, each with its line and key.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            line: None,
            key: String::new(),
            message,
        }],
    };
    // A regular file only (followed through symlinks: /etc/custos.toml may point at a writable
    // partition), checked before it is opened: a FIFO would block the reload (and the loop
    // with it) until a writer appears, and a device must not be opened at all.
    let mut f =
        crate::files::open_regular(path, true).map_err(|e| fail(format!("cannot read: {e}")))?;
    let len = f
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    let too_big = |len: u64| {
        fail(format!(
            "file is {len} bytes, more than the {MAX_CONFIG_BYTES} custos reads"
        ))
    };
    if len > MAX_CONFIG_BYTES {
        return Err(too_big(len));
    }
    // Bounded even if the file grows while it is read.
    let mut buf = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut f, MAX_CONFIG_BYTES + 1),
        &mut buf,
    )
    .map_err(|e| fail(format!("cannot read: {e}")))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(buf.len() as u64));
    }
    parse_bytes(&buf).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parses config bytes as `parse` does; bytes that are not UTF-8 are an error naming the line
/// and column (in bytes) of the first bad byte.
pub fn parse_bytes(bytes: &[u8]) -> Result<Config, Vec<ConfigError>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        vec![ConfigError {
            line: Some(line_of(bytes, at)),
            key: String::new(),
            message: format!(
                "not UTF-8: byte 0x{:02x} at column {}",
                bytes.get(at).copied().unwrap_or(0),
                at - line_start + 1
            ),
        }]
    })?;
    parse(text)
}

/// What PID 1 (init) runs on this machine: its /proc/1/exe and its arguments joined by spaces,
/// as an `exe` identity would see them. `None` when /proc/1 cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitIdentity {
    pub exe: PathBuf,
    pub args: String,
}

impl InitIdentity {
    /// Reads /proc/1.
    pub fn read() -> Option<InitIdentity> {
        let exe = std::fs::read_link("/proc/1/exe").ok()?;
        let exe = match exe
            .as_os_str()
            .as_encoded_bytes()
            .strip_suffix(b" (deleted)")
        {
            Some(b) => PathBuf::from(String::from_utf8_lossy(b).into_owned()),
            None => exe,
        };
        let cmdline = std::fs::read("/proc/1/cmdline").ok()?;
        Some(InitIdentity {
            exe,
            args: args_of(&cmdline),
        })
    }

    /// Whether the identity `exe` (+ `args`) could match this init: the same program (as
    /// written, or once symlinks are resolved) and, when `args` is given, the same arguments.
    pub fn could_match(&self, exe: &Path, args: Option<&str>) -> bool {
        let same_exe = exe == self.exe
            || std::fs::canonicalize(exe).is_ok_and(|c| c == self.exe)
            || std::fs::canonicalize(&self.exe).is_ok_and(|c| c == exe);
        same_exe && args.is_none_or(|a| a == self.args)
    }
}

/// The arguments in a /proc/PID/cmdline as an `exe` identity reads them
/// ([`crate::procs::args_text`]). busybox init pads its rewritten argv with NULs
/// ("init\0\0\0..."), which reads as no arguments.
fn args_of(cmdline: &[u8]) -> String {
    crate::procs::args_text(&String::from_utf8_lossy(cmdline))
}

/// Parses and validates config text. A TOML syntax error is reported alone; unknown keys and
/// values of the wrong type are all reported (in line order) before any value is checked.
/// An `exe` identity that could match this machine's PID 1 is refused.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_with_init(text, InitIdentity::read().as_ref())
}

/// [`parse`], with init's identity given (None: not checked).
pub fn parse_with_init(
    text: &str,
    init: Option<&InitIdentity>,
) -> Result<Config, Vec<ConfigError>> {
    let doc = DeTable::parse(text).map_err(|e| {
        vec![ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            key: String::new(),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut v = Validator {
        text,
        errors: Vec::new(),
        init,
    };
    let raw = v.read_config(doc.get_ref());
    if !v.errors.is_empty() {
        v.errors.sort_by_key(|e| e.line);
        return Err(v.errors);
    }
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The longest watchdog timeout any driver accepts: softdog's max_timeout (drivers/watchdog/
/// softdog.c); hardware watchdogs allow less (the driver refuses or clamps, and custos says so).
pub const MAX_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(65535);
/// The shortest period of a program check (each run forks and execs a program).
pub const MIN_PROGRAM_EVERY: Duration = Duration::from_secs(1);

fn line_of(text: &(impl AsRef<[u8]> + ?Sized), offset: usize) -> usize {
    text.as_ref()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Validator<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
    init: Option<&'a InitIdentity>,
}

impl Validator<'_> {
    fn err(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            line: span.map(|s| line_of(self.text, s.start)),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if d < min => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is shorter than the minimum {}", Dur(d), Dur(min)),
                );
                default
            }
            Ok(d) if d > max => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is longer than the maximum {}", Dur(d), Dur(max)),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(Some(v.span()), key, e);
                default
            }
        }
    }

    fn path(&mut self, v: &Spanned<String>, key: &str) -> PathBuf {
        let s = v.get_ref();
        if !s.starts_with('/') {
            self.err(
                Some(v.span()),
                key,
                format!("`{s}` is not an absolute path"),
            );
        } else if s.len() > MAX_ARG_LEN {
            self.err(
                Some(v.span()),
                key,
                format!("path is {} bytes, over the limit of {MAX_ARG_LEN}", s.len()),
            );
        } else if s.contains('\0') {
            self.err(Some(v.span()), key, "path contains a NUL byte");
        }
        PathBuf::from(s)
    }

    fn argv(&mut self, v: &Spanned<Vec<String>>, key: &str) -> Argv {
        let list = v.get_ref();
        let span = Some(v.span());
        let mut args = Vec::new();
        if list.is_empty() {
            self.err(
                span,
                key,
                "argv is empty: give the program and its arguments",
            );
            return Argv {
                args: vec![CString::default()],
            };
        }
        if list.len() > MAX_ARGV {
            self.err(
                span.clone(),
                key,
                format!("{} entries, over the limit of {MAX_ARGV}", list.len()),
            );
        }
        if !list[0].starts_with('/') {
            self.err(
                span.clone(),
                key,
                format!(
                    "`{}` is not an absolute path (scripts run without a shell and without PATH lookup)",
                    list[0]
                ),
            );
        }
        for a in list {
            if a.len() > MAX_ARG_LEN {
                self.err(
                    span.clone(),
                    key,
                    format!(
                        "an entry is {} bytes, over the limit of {MAX_ARG_LEN}",
                        a.len()
                    ),
                );
            }
            match CString::new(a.as_bytes()) {
                Ok(c) => args.push(c),
                Err(_) => {
                    self.err(span.clone(), key, "an entry contains a NUL byte");
                    args.push(CString::default());
                }
            }
        }
        Argv { args }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let mut supervisor = SupervisorConfig {
            interval: Duration::from_secs(1),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            control_group: None,
            log: LogTarget::Stderr,
        };
        if let Some(s) = &raw.supervisor {
            let s = s.get_ref();
            supervisor.interval = self.duration(
                &s.interval,
                "supervisor.interval",
                supervisor.interval,
                (Duration::from_millis(10), MINUTE),
            );
            if let Some(d) = &s.state_dir {
                supervisor.state_dir = self.path(d, "supervisor.state_dir");
            }
            if let Some(p) = &s.control_socket {
                supervisor.control_socket = self.path(p, "supervisor.control_socket");
                if p.get_ref().len() > 107 {
                    self.err(
                        Some(p.span()),
                        "supervisor.control_socket",
                        "longer than a UNIX socket path may be (107 bytes)",
                    );
                }
            }
            if let Some(g) = &s.control_group {
                match crate::sys::group_id(g.get_ref()) {
                    Some(gid) => supervisor.control_group = Some((g.get_ref().clone(), gid)),
                    None => self.err(
                        Some(g.span()),
                        "supervisor.control_group",
                        format!("no group `{}` in /etc/group", g.get_ref()),
                    ),
                }
            }
            if let Some(l) = &s.log {
                match l.get_ref().as_str() {
                    "stderr" => supervisor.log = LogTarget::Stderr,
                    "syslog" => supervisor.log = LogTarget::Syslog,
                    other => self.err(
                        Some(l.span()),
                        "supervisor.log",
                        format!("`{other}` is not one of: \"stderr\", \"syslog\""),
                    ),
                }
            }
        }
        if raw.service.len() > MAX_SERVICES {
            let span = raw.service.get(MAX_SERVICES).map(|s| s.span());
            self.err(
                span,
                "service",
                format!(
                    "{} services, over the limit of {MAX_SERVICES}",
                    raw.service.len()
                ),
            );
        }
        let mut services: Vec<ServiceConfig> = Vec::new();
        for (i, s) in raw.service.iter().enumerate() {
            let svc = self.service(i, s);
            if let Some(svc) = svc {
                if services.iter().any(|o| o.name == svc.name) {
                    let span = s.get_ref().name.as_ref().map(|n| n.span());
                    self.err(
                        span,
                        &format!("service[{i}].name"),
                        format!("`{}` is used by another service already", svc.name),
                    );
                }
                services.push(svc);
            }
        }
        for svc in &mut services {
            for c in &mut svc.checks {
                if c.every.is_zero() {
                    c.every = supervisor.interval;
                    if matches!(c.kind, CheckKind::Program { .. }) {
                        c.every = c.every.max(MIN_PROGRAM_EVERY);
                    }
                }
            }
        }
        let watchdog = raw.watchdog.as_ref().map(|w| self.watchdog(w));
        let mut warnings = Vec::new();
        if watchdog.is_none() {
            for (i, s) in raw.service.iter().enumerate() {
                let Some(o) = s
                    .get_ref()
                    .restart
                    .as_ref()
                    .and_then(|r| r.get_ref().on_exhausted.as_ref())
                else {
                    continue;
                };
                if o.get_ref() == "reboot" {
                    warnings.push(ConfigError {
                        line: Some(line_of(self.text, o.span().start)),
                        key: match s.get_ref().name.as_ref() {
                            Some(n) => format!("service.restart.on_exhausted (service `{}`)", n.get_ref()),
                            None => format!("service[{i}].restart.on_exhausted"),
                        },
                        message: "\"reboot\" with no [watchdog]: custos reboots the board itself at once, and no hardware watchdog resets it if it hangs on the way".to_string(),
                    });
                }
            }
        }
        let mut boot = self.boot(&raw);
        boot.gate = self.gate(&raw, &services);
        let metrics = raw.metrics.as_ref().and_then(|m| {
            let m = m.get_ref();
            let every = self.duration(
                &m.every,
                "metrics.every",
                DEFAULT_METRICS_EVERY,
                (Duration::from_secs(1), HOUR),
            );
            let Some(t) = &m.textfile else {
                self.err(
                    None,
                    "metrics.textfile",
                    "missing: [metrics] needs textfile",
                );
                return None;
            };
            let textfile = self.path(t, "metrics.textfile");
            if textfile.file_name().is_none() || t.get_ref().ends_with('/') {
                self.err(
                    Some(t.span()),
                    "metrics.textfile",
                    "names a directory, not a file",
                );
            }
            Some(MetricsConfig { textfile, every })
        });
        let hooks = self.hooks(&raw, &services);
        Config {
            supervisor,
            services,
            watchdog,
            warnings,
            boot,
            metrics,
            hooks,
        }
    }

    /// `[[hook]]` tables: known event names, a program, bounded timeout and flap rule, known
    /// services.
    fn hooks(&mut self, raw: &RawConfig, services: &[ServiceConfig]) -> Vec<HookConfig> {
        if raw.hook.len() > MAX_HOOKS {
            self.err(
                raw.hook.get(MAX_HOOKS).map(|h| h.span()),
                "hook",
                format!("{} hooks, over the limit of {MAX_HOOKS}", raw.hook.len()),
            );
        }
        let mut out = Vec::new();
        for h in raw.hook.iter().take(MAX_HOOKS) {
            let span = h.span();
            let h = h.get_ref();
            let mut on = 0u16;
            match &h.on {
                None => self.err(
                    Some(span.clone()),
                    "hook.on",
                    "missing: name the events this hook runs for",
                ),
                Some(list) => {
                    if list.get_ref().is_empty() {
                        self.err(
                            Some(list.span()),
                            "hook.on",
                            "empty: name the events this hook runs for",
                        );
                    }
                    for e in list.get_ref() {
                        match event_bit(e) {
                            Some(b) => on |= b,
                            None => self.err(
                                Some(list.span()),
                                "hook.on",
                                format!("unknown event `{e}`; known: {}", EVENTS.join(", ")),
                            ),
                        }
                    }
                }
            }
            // Every problem of the table is reported, a missing run too, before it is left out.
            let run = match &h.run {
                Some(r) => Some(self.argv(r, "hook.run")),
                None => {
                    self.err(
                        Some(span.clone()),
                        "hook.run",
                        "missing: give the program and its arguments",
                    );
                    None
                }
            };
            let timeout = self.duration(
                &h.timeout,
                "hook.timeout",
                DEFAULT_HOOK_TIMEOUT,
                (Duration::from_millis(100), Duration::from_secs(600)),
            );
            let mut names = Vec::new();
            if let Some(list) = &h.services {
                for n in list.get_ref() {
                    if !services.iter().any(|s| &s.name == n) {
                        self.err(
                            Some(list.span()),
                            "hook.services",
                            format!("no service is named `{n}`"),
                        );
                    }
                    names.push(n.clone());
                }
            }
            let flap = match (&h.flap_count, &h.flap_within) {
                (None, None) => {
                    if on & event_bit("flapping").unwrap_or(0) != 0 {
                        self.err(
                            h.on.as_ref().map(|o| o.span()),
                            "hook.on",
                            "`flapping` needs flap_count and flap_within",
                        );
                    }
                    None
                }
                (Some(_), Some(_)) => {
                    let n = self.count(&h.flap_count, "hook.flap_count", 1, MAX_FLAP_COUNT, 1);
                    let w = self.duration(
                        &h.flap_within,
                        "hook.flap_within",
                        Duration::from_secs(60),
                        (Duration::from_secs(1), Duration::from_secs(24 * 3600)),
                    );
                    Some((n, w))
                }
                _ => {
                    self.err(
                        Some(span.clone()),
                        "hook.flap_count",
                        "flap_count and flap_within go together",
                    );
                    None
                }
            };
            if let Some(run) = run {
                out.push(HookConfig {
                    on,
                    run,
                    timeout,
                    services: names,
                    flap,
                });
            }
        }
        out
    }

    /// A count within `0..=max` (or `1..=max`), else an error and the default.
    fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        min: u32,
        max: u32,
        default: u32,
    ) -> u32 {
        let Some(v) = v else { return default };
        match u32::try_from(*v.get_ref()) {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is not within {min}..={max}", v.get_ref()),
                );
                default
            }
        }
    }

    /// `[boot]`. The guard's `max_resets` was once a `[watchdog]` key: it is still read there
    /// when `[boot]` does not set it (`[watchdog] reset_window` is read and ignored: the guard
    /// counts boots, not time).
    fn boot(&mut self, raw: &RawConfig) -> BootConfig {
        let d = BootConfig::default();
        let b = raw.boot.as_ref().map(|b| b.get_ref());
        let legacy = raw
            .watchdog
            .as_ref()
            .and_then(|w| w.get_ref().max_resets.as_ref());
        let max = crate::limits::MAX_MAX_RESETS;
        let max_resets = match (b.and_then(|b| b.max_resets.as_ref()), legacy) {
            (Some(_), Some(l)) => {
                self.err(
                    Some(l.span()),
                    "watchdog.max_resets",
                    "set in [boot] too: keep boot.max_resets only",
                );
                d.max_resets
            }
            (Some(m), None) => {
                self.count(&Some(m.clone()), "boot.max_resets", 0, max, d.max_resets)
            }
            (None, Some(l)) => self.count(
                &Some(l.clone()),
                "watchdog.max_resets",
                0,
                max,
                d.max_resets,
            ),
            (None, None) => d.max_resets,
        };
        let (clear_after, good_after) = match b {
            None => (d.clear_after, d.good_after),
            Some(b) => (
                self.count(
                    &b.clear_after,
                    "boot.clear_after",
                    1,
                    crate::limits::MAX_CLEAR_AFTER,
                    d.clear_after,
                ),
                self.duration(
                    &b.good_after,
                    "boot.good_after",
                    d.good_after,
                    (Duration::from_secs(1), DAY),
                ),
            ),
        };
        BootConfig {
            max_resets,
            clear_after,
            good_after,
            gate: None,
        }
    }

    /// The boot-health gate of `[boot]`: `healthy_after` turns it on; the other keys need it,
    /// and it needs a vital service and a program to run.
    fn gate(&mut self, raw: &RawConfig, services: &[ServiceConfig]) -> Option<GateConfig> {
        let b = raw.boot.as_ref()?.get_ref();
        let Some(h) = &b.healthy_after else {
            for (key, span) in [
                ("boot.deadline", b.deadline.as_ref().map(|v| v.span())),
                ("boot.on_healthy", b.on_healthy.as_ref().map(|v| v.span())),
                (
                    "boot.on_unhealthy",
                    b.on_unhealthy.as_ref().map(|v| v.span()),
                ),
                ("boot.timeout", b.timeout.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    self.err(
                        Some(span),
                        key,
                        "belongs to the boot-health gate, which needs boot.healthy_after",
                    );
                }
            }
            return None;
        };
        let healthy_after = self.duration(
            &b.healthy_after,
            "boot.healthy_after",
            Duration::from_secs(60),
            (Duration::from_secs(1), DAY),
        );
        let deadline = self.duration(
            &b.deadline,
            "boot.deadline",
            DEFAULT_DEADLINE,
            (Duration::from_secs(1), DAY),
        );
        let timeout = self.duration(
            &b.timeout,
            "boot.timeout",
            DEFAULT_GATE_TIMEOUT,
            (Duration::from_millis(100), Duration::from_secs(3600)),
        );
        if !services.iter().any(|s| s.vital) {
            self.err(
                Some(h.span()),
                "boot.healthy_after",
                "no service is marked `vital = true`: the gate would have nothing to judge",
            );
        }
        if deadline <= healthy_after {
            self.err(
                b.deadline.as_ref().map_or(Some(h.span()), |d| Some(d.span())),
                "boot.deadline",
                format!(
                    "{} is not longer than healthy_after {}: no boot could be found healthy in time",
                    Dur(deadline),
                    Dur(healthy_after)
                ),
            );
        }
        if b.on_healthy.is_none() && b.on_unhealthy.is_none() {
            self.err(
                Some(h.span()),
                "boot.healthy_after",
                "neither on_healthy nor on_unhealthy is set: the verdict would do nothing",
            );
        }
        let on_healthy = b
            .on_healthy
            .as_ref()
            .map(|v| self.argv(v, "boot.on_healthy"));
        let on_unhealthy = b
            .on_unhealthy
            .as_ref()
            .map(|v| self.argv(v, "boot.on_unhealthy"));
        Some(GateConfig {
            healthy_after,
            deadline,
            on_healthy,
            on_unhealthy,
            timeout,
        })
    }

    fn watchdog(&mut self, w: &Spanned<RawWatchdog>) -> WatchdogConfig {
        let at = Some(w.span());
        let w = w.get_ref();
        let device = match &w.device {
            Some(d) => self.path(d, "watchdog.device"),
            None => PathBuf::from("/dev/watchdog"),
        };
        let sec = Duration::from_secs(1);
        let timeout = self.duration(
            &w.timeout,
            "watchdog.timeout",
            Duration::from_secs(15),
            (sec, Duration::MAX),
        );
        if let Some(t) = &w.timeout {
            if timeout > MAX_WATCHDOG_TIMEOUT {
                self.err(
                    Some(t.span()),
                    "watchdog.timeout",
                    format!(
                        "{}s is longer than the maximum {}s (softdog's limit; most hardware watchdogs allow far less)",
                        timeout.as_secs(),
                        MAX_WATCHDOG_TIMEOUT.as_secs()
                    ),
                );
            } else if timeout.subsec_millis() != 0 {
                self.err(
                    Some(t.span()),
                    "watchdog.timeout",
                    "watchdog timeouts are whole seconds (WDIOC_SETTIMEOUT)",
                );
            }
        }
        let pet_every = self.duration(
            &w.pet_every,
            "watchdog.pet_every",
            timeout / 3,
            (Duration::from_millis(10), Duration::MAX),
        );
        if pet_every >= timeout {
            let span = w.pet_every.as_ref().map(|p| p.span()).or(at);
            self.err(
                span,
                "watchdog.pet_every",
                format!(
                    "{} is not shorter than the timeout {}",
                    Dur(pet_every),
                    Dur(timeout)
                ),
            );
        }
        // Read for the old configs that set it; the guard counts boots, not time.
        let _ = self.duration(
            &w.reset_window,
            "watchdog.reset_window",
            Duration::from_secs(3600),
            (sec, Duration::MAX),
        );
        WatchdogConfig {
            device,
            timeout,
            pet_every,
            magic_close: w.magic_close.as_ref().is_some_and(|m| *m.get_ref()),
        }
    }

    fn service(&mut self, i: usize, s: &Spanned<RawService>) -> Option<ServiceConfig> {
        let at = Some(s.span());
        let s = s.get_ref();
        let k = |key: &str| format!("service[{i}].{key}");
        let name = match &s.name {
            None => {
                self.err(
                    at.clone(),
                    &k("name"),
                    "missing: every service needs a name",
                );
                format!("service[{i}]")
            }
            Some(n) => {
                let v = n.get_ref();
                let ok_chars = v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
                if v.is_empty() || v.len() > MAX_NAME || !ok_chars {
                    self.err(
                        Some(n.span()),
                        &k("name"),
                        format!(
                            "`{v}` is not a valid name: use 1 to {MAX_NAME} of A-Z a-z 0-9 _ . -"
                        ),
                    );
                }
                v.clone()
            }
        };
        let k = |key: &str| format!("service.{key} (service `{name}`)");
        let identify = match (&s.pidfile, &s.exe) {
            (Some(p), None) => {
                if let Some(a) = &s.args {
                    self.err(
                        Some(a.span()),
                        &k("args"),
                        "`args` goes with `exe`, not with `pidfile`",
                    );
                }
                Identify::Pidfile(self.path(p, &k("pidfile")))
            }
            (None, Some(e)) => {
                let args = s.args.as_ref().map(|a| {
                    if a.get_ref().is_empty() {
                        self.err(
                            Some(a.span()),
                            &k("args"),
                            "empty: leave `args` out to match any arguments",
                        );
                    } else if a.get_ref().len() > MAX_ARG_LEN {
                        self.err(
                            Some(a.span()),
                            &k("args"),
                            format!("over the limit of {MAX_ARG_LEN} bytes"),
                        );
                    }
                    a.get_ref().clone()
                });
                let exe = self.path(e, &k("exe"));
                // /proc/PID/exe names the program with every symlink resolved: an `exe` written
                // through a symlink (a busybox applet, /bin on a merged-/usr system) would never
                // match, and every start would add another copy of the service. Checked where
                // the path exists (a config may be checked on another machine).
                if let Ok(real) = std::fs::canonicalize(&exe) {
                    if real != exe && exe.is_absolute() {
                        self.err(
                            Some(e.span()),
                            &k("exe"),
                            format!(
                                "`{}` resolves to `{}` (symbolic links followed), the name /proc/PID/exe gives: as written it would never match, and every start would add a copy of the service; write `{}` (with `args` if other programs run it too), or use a pidfile",
                                exe.display(),
                                real.display(),
                                real.display()
                            ),
                        );
                    }
                }
                if let Some(init) = self.init.filter(|i| i.could_match(&exe, args.as_deref())) {
                    let with = match &args {
                        None => "with any arguments".to_string(),
                        Some(a) => format!("with the arguments `{a}`"),
                    };
                    self.err(
                        Some(e.span()),
                        &k("exe"),
                        format!(
                            "`{}` {with} could match PID 1 (init runs {} `{}` here): custos never pins init; give `args` that init does not have, or use a pidfile",
                            exe.display(),
                            init.exe.display(),
                            init.args
                        ),
                    );
                }
                Identify::Exe { exe, args }
            }
            (Some(p), Some(_)) => {
                self.err(
                    Some(p.span()),
                    &k("pidfile"),
                    "give either `pidfile` or `exe`, not both",
                );
                Identify::Pidfile(PathBuf::new())
            }
            (None, None) => {
                self.err(
                    at.clone(),
                    &k("pidfile"),
                    "missing: give `pidfile` (or `exe`) so custos can identify the process",
                );
                Identify::Pidfile(PathBuf::new())
            }
        };
        let start = match &s.start {
            Some(a) => self.argv(a, &k("start")),
            None => {
                self.err(
                    at.clone(),
                    &k("start"),
                    "missing: the argv that starts the service",
                );
                Argv {
                    args: vec![CString::default()],
                }
            }
        };
        let stop = s.stop.as_ref().map(|a| self.argv(a, &k("stop")));
        let start_timeout = self.duration(
            &s.start_timeout,
            &k("start_timeout"),
            Duration::from_secs(10),
            (Duration::from_millis(1), 10 * MINUTE),
        );
        let stop_timeout = self.duration(
            &s.stop_timeout,
            &k("stop_timeout"),
            Duration::from_secs(5),
            (Duration::from_millis(1), 10 * MINUTE),
        );
        let leftovers = match &s.leftovers {
            None => Leftovers::Stop,
            Some(v) => match v.get_ref().as_str() {
                "stop" => Leftovers::Stop,
                "keep" => Leftovers::Keep,
                other => {
                    self.err(
                        Some(v.span()),
                        &k("leftovers"),
                        format!("`{other}` is not one of: \"stop\", \"keep\""),
                    );
                    Leftovers::Stop
                }
            },
        };
        let mut restart = RestartPolicy::default();
        if let Some(r) = &s.restart {
            let r = r.get_ref();
            let one = Duration::from_millis(1);
            restart.backoff = self.duration(
                &r.backoff,
                &k("restart.backoff"),
                restart.backoff,
                (one, HOUR),
            );
            restart.backoff_max = self.duration(
                &r.backoff_max,
                &k("restart.backoff_max"),
                restart.backoff_max,
                (one, HOUR),
            );
            restart.stable_after = self.duration(
                &r.stable_after,
                &k("restart.stable_after"),
                restart.stable_after,
                (one, DAY),
            );
            restart.window =
                self.duration(&r.window, &k("restart.window"), restart.window, (one, DAY));
            // No limit unless the config asks for one. A config that writes `window` or
            // `on_exhausted` without `max_restarts` asked for the limit that was the default
            // then, and keeps it.
            if r.window.is_some() || r.on_exhausted.is_some() {
                restart.max_restarts = Some(IMPLIED_MAX_RESTARTS);
            }
            match r.max_restarts.as_ref().map(|m| (m.span(), m.get_ref())) {
                None => {}
                Some((span, RawLimit::Count(v))) => {
                    if *v < 1 || *v > MAX_RESTART_HISTORY as i64 {
                        self.err(
                            Some(span),
                            &k("restart.max_restarts"),
                            format!(
                                "{v} is out of range 1..={MAX_RESTART_HISTORY} (or \"unlimited\")"
                            ),
                        );
                    } else {
                        restart.max_restarts = Some(*v as u32);
                    }
                }
                Some((_, RawLimit::Word(w))) if w == "unlimited" => {
                    restart.max_restarts = None;
                    for (key, set) in [
                        ("window", r.window.as_ref().map(|v| v.span())),
                        ("on_exhausted", r.on_exhausted.as_ref().map(|v| v.span())),
                    ] {
                        if let Some(at) = set {
                            self.err(
                                Some(at),
                                &k(&format!("restart.{key}")),
                                "has no effect with max_restarts = \"unlimited\" (never exhausted): remove it, or set max_restarts to a count".to_string(),
                            );
                        }
                    }
                }
                Some((span, RawLimit::Word(w))) => self.err(
                    Some(span),
                    &k("restart.max_restarts"),
                    format!("`{w}` is neither a count 1..={MAX_RESTART_HISTORY} nor \"unlimited\""),
                ),
            }
            if let Some(o) = &r.on_exhausted {
                match o.get_ref().as_str() {
                    "give-up" => restart.on_exhausted = OnExhausted::GiveUp,
                    "reboot" => restart.on_exhausted = OnExhausted::Reboot,
                    other => self.err(
                        Some(o.span()),
                        &k("restart.on_exhausted"),
                        format!("`{other}` is not one of: \"give-up\", \"reboot\""),
                    ),
                }
            }
            if restart.backoff > restart.backoff_max {
                let span = r.backoff.as_ref().map(|b| b.span());
                self.err(
                    span,
                    &k("restart.backoff"),
                    format!(
                        "{} is longer than backoff_max {}",
                        Dur(restart.backoff),
                        Dur(restart.backoff_max)
                    ),
                );
            }
        }
        if s.check.len() > MAX_CHECKS {
            self.err(
                s.check.get(MAX_CHECKS).map(|c| c.span()),
                &k("check"),
                format!("{} checks, over the limit of {MAX_CHECKS}", s.check.len()),
            );
        }
        let mut checks = Vec::new();
        for (j, c) in s.check.iter().enumerate() {
            if let Some(c) = self.check(c, &format!("service.check[{j}] (service `{name}`)")) {
                checks.push(c);
            }
        }
        Some(ServiceConfig {
            name,
            identify,
            start,
            stop,
            start_timeout,
            stop_timeout,
            leftovers,
            restart,
            checks,
            vital: s.vital.as_ref().is_some_and(|v| *v.get_ref()),
        })
    }
}

impl Validator<'_> {
    fn check(&mut self, c: &Spanned<RawCheck>, key: &str) -> Option<CheckConfig> {
        let at = Some(c.span());
        let c = c.get_ref();
        let k = |f: &str| format!("{key}.{f}");
        let Some(kind_s) = &c.kind else {
            self.err(
                at,
                &k("kind"),
                "missing: one of http, tcp, memory, cpu, fds, heartbeat, program",
            );
            return None;
        };
        let kind_name = kind_s.get_ref().as_str();
        // Which keys each kind takes, besides the common ones.
        let allowed: &[&str] = match kind_name {
            "http" => &["host", "port", "path", "status", "expect"],
            "tcp" => &["host", "port"],
            "memory" => &["max"],
            "cpu" => &["max_percent", "over"],
            "fds" => &["max"],
            "heartbeat" => &["path", "max_age"],
            "program" => &["argv"],
            other => {
                self.err(
                    Some(kind_s.span()),
                    &k("kind"),
                    format!(
                        "`{other}` is not one of http, tcp, memory, cpu, fds, heartbeat, program"
                    ),
                );
                return None;
            }
        };
        let present: [(&str, Option<Range<usize>>); 10] = [
            ("host", c.host.as_ref().map(|v| v.span())),
            ("port", c.port.as_ref().map(|v| v.span())),
            ("path", c.path.as_ref().map(|v| v.span())),
            ("status", c.status.as_ref().map(|v| v.span())),
            ("expect", c.expect.as_ref().map(|v| v.span())),
            ("max", c.max.as_ref().map(|v| v.span())),
            ("max_percent", c.max_percent.as_ref().map(|v| v.span())),
            ("over", c.over.as_ref().map(|v| v.span())),
            ("max_age", c.max_age.as_ref().map(|v| v.span())),
            ("argv", c.argv.as_ref().map(|v| v.span())),
        ];
        for (name, span) in present {
            if let Some(span) = span {
                if !allowed.contains(&name) {
                    self.err(
                        Some(span),
                        &k(name),
                        format!("does not apply to kind \"{kind_name}\""),
                    );
                }
            }
        }
        let mut missing = |this: &mut Self, name: &str| {
            this.err(
                at.clone(),
                &k(name),
                format!("missing: kind \"{kind_name}\" needs it"),
            );
        };
        let addr = |this: &mut Self, missing: &mut dyn FnMut(&mut Self, &str)| -> SocketAddr {
            let ip = match &c.host {
                None => IpAddr::from([127, 0, 0, 1]),
                Some(h) => h.get_ref().parse::<IpAddr>().unwrap_or_else(|_| {
                    this.err(
                        Some(h.span()),
                        &k("host"),
                        format!(
                            "`{}` is not an IP address (names are not resolved)",
                            h.get_ref()
                        ),
                    );
                    IpAddr::from([127, 0, 0, 1])
                }),
            };
            let port = match &c.port {
                None => {
                    missing(this, "port");
                    0
                }
                Some(p) => u16::try_from(*p.get_ref())
                    .ok()
                    .filter(|&p| p > 0)
                    .unwrap_or_else(|| {
                        this.err(
                            Some(p.span()),
                            &k("port"),
                            format!("{} is not a port (1..=65535)", p.get_ref()),
                        );
                        0
                    }),
            };
            SocketAddr::new(ip, port)
        };
        let kind = match kind_name {
            "http" => {
                let addr = addr(self, &mut missing);
                let path = match &c.path {
                    None => "/".to_string(),
                    Some(p) => {
                        let v = p.get_ref();
                        if !v.starts_with('/')
                            || v.len() > MAX_ARG_LEN
                            || v.bytes().any(|b| b <= b' ' || b == 0x7f)
                        {
                            self.err(Some(p.span()), &k("path"), format!("`{v}` is not a request path: it starts with / and has no spaces or control characters"));
                        }
                        v.clone()
                    }
                };
                let status = match &c.status {
                    None => 200,
                    Some(st) => match u16::try_from(*st.get_ref()) {
                        Ok(v) if (100..=599).contains(&v) => v,
                        _ => {
                            self.err(
                                Some(st.span()),
                                &k("status"),
                                format!("{} is not an HTTP status (100..=599)", st.get_ref()),
                            );
                            200
                        }
                    },
                };
                let expect = c.expect.as_ref().map(|e| {
                    if e.get_ref().is_empty() || e.get_ref().len() > MAX_ARG_LEN {
                        self.err(
                            Some(e.span()),
                            &k("expect"),
                            format!("must be 1 to {MAX_ARG_LEN} bytes"),
                        );
                    }
                    e.get_ref().clone()
                });
                CheckKind::Http {
                    addr,
                    path,
                    status,
                    expect,
                }
            }
            "tcp" => CheckKind::Tcp {
                addr: addr(self, &mut missing),
            },
            "memory" => match &c.max {
                Some(m) => match m.get_ref() {
                    RawMax::Size(s) => match parse_size(s) {
                        Ok(b) => CheckKind::Memory { max_bytes: b },
                        Err(e) => {
                            self.err(Some(m.span()), &k("max"), e);
                            return None;
                        }
                    },
                    RawMax::Count(_) => {
                        self.err(
                            Some(m.span()),
                            &k("max"),
                            "write a size with its unit, like \"64MiB\"",
                        );
                        return None;
                    }
                },
                None => {
                    missing(self, "max");
                    return None;
                }
            },
            "fds" => match &c.max {
                Some(m) => match m.get_ref() {
                    RawMax::Count(n) if *n > 0 => CheckKind::Fds { max: *n as u64 },
                    _ => {
                        self.err(
                            Some(m.span()),
                            &k("max"),
                            "write a whole number of descriptors greater than 0",
                        );
                        return None;
                    }
                },
                None => {
                    missing(self, "max");
                    return None;
                }
            },
            "cpu" => {
                let max_percent = match &c.max_percent {
                    Some(p) if *p.get_ref() > 0.0 && p.get_ref().is_finite() => *p.get_ref(),
                    Some(p) => {
                        self.err(
                            Some(p.span()),
                            &k("max_percent"),
                            "must be a number greater than 0 (100 = one core)",
                        );
                        100.0
                    }
                    None => {
                        missing(self, "max_percent");
                        100.0
                    }
                };
                let over = self.duration(
                    &c.over,
                    &k("over"),
                    Duration::from_secs(30),
                    (Duration::from_millis(1), HOUR),
                );
                CheckKind::Cpu { max_percent, over }
            }
            "heartbeat" => {
                let path = match &c.path {
                    Some(p) => self.path(p, &k("path")),
                    None => {
                        missing(self, "path");
                        PathBuf::new()
                    }
                };
                if c.max_age.is_none() {
                    missing(self, "max_age");
                }
                let max_age = self.duration(
                    &c.max_age,
                    &k("max_age"),
                    Duration::from_secs(30),
                    (Duration::from_millis(1), DAY),
                );
                CheckKind::Heartbeat { path, max_age }
            }
            _ => match &c.argv {
                // "program": the only kind left.
                Some(a) => CheckKind::Program {
                    argv: self.argv(a, &k("argv")),
                },
                None => {
                    missing(self, "argv");
                    return None;
                }
            },
        };
        let one = Duration::from_millis(1);
        let timeout = self.duration(
            &c.timeout,
            &k("timeout"),
            Duration::from_secs(5),
            (one, MINUTE),
        );
        // Zero stands for "the supervisor interval", filled in once the [supervisor] table is read.
        // A program check forks and execs each time: not more than once a second.
        let floor = match kind {
            CheckKind::Program { .. } => MIN_PROGRAM_EVERY,
            _ => Duration::from_millis(10),
        };
        let every = self.duration(&c.every, &k("every"), Duration::ZERO, (floor, DAY));
        let grace = self.duration(&c.grace, &k("grace"), Duration::from_secs(10), (one, HOUR));
        let failures = match &c.failures {
            None => 1,
            Some(f) => match u32::try_from(*f.get_ref()) {
                Ok(v) if (1..=1000).contains(&v) => v,
                _ => {
                    self.err(
                        Some(f.span()),
                        &k("failures"),
                        format!("{} is out of range 1..=1000", f.get_ref()),
                    );
                    1
                }
            },
        };
        let action = match c.action.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "restart")) => CheckAction::Restart,
            Some((_, "log")) => CheckAction::Log,
            Some((a, other)) => {
                self.err(
                    Some(a.span()),
                    &k("action"),
                    format!("`{other}` is not one of: \"restart\", \"log\""),
                );
                CheckAction::Restart
            }
        };
        Some(CheckConfig {
            kind,
            timeout,
            every,
            failures,
            grace,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(e.contains(":6: service.stop_timeout (service `a`): `0s`: a duration must be greater than zero"), "{e}");
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
        let e = errors("[[service]]\nname = \"bad name!\"\npidfile = \"/a\"\nexe = \"/b\"\nstart = [\"/bin/x\"]\n");
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
        let svc = "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\nvital = true\n";
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
        let e = errors("[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\n  \"/bin/x\",\n  3,\n]\n");
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

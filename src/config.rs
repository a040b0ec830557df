//! Config: parse (serde, unknown keys refused), validate (every problem collected, each with
//! `file:line: key: message`), then hand a checked `Config` to the supervisor. Nothing here
//! touches a process or a device, so a bad reload costs nothing.

use std::ffi::CString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    /// Poll period for /proc and pidfiles.
    pub interval: Duration,
    pub state_dir: PathBuf,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhausted {
    GiveUp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
    pub max_restarts: u32,
    pub window: Duration,
    pub on_exhausted: OnExhausted,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            max_restarts: 10,
            window: Duration::from_secs(600),
            on_exhausted: OnExhausted::GiveUp,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    pub identify: Identify,
    pub start: Argv,
    pub stop: Option<Argv>,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub restart: RestartPolicy,
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

/// Formats a duration the way configs write it: "500ms", "5s", "2m30s", "1h".
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        if ms < 60_000 {
            let (s, rest) = (ms / 1000, ms % 1000);
            return if rest == 0 {
                write!(f, "{s}s")
            } else {
                write!(f, "{s}.{:01}s", rest / 100)
            };
        }
        let s = ms / 1000;
        let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
        if h > 0 {
            write!(f, "{h}h")?;
            if m > 0 {
                write!(f, "{m}m")?;
            }
            return Ok(());
        }
        write!(f, "{m}m")?;
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The raw, as-written shape. Spans give the line of each key for validation errors.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    supervisor: Option<Spanned<RawSupervisor>>,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    interval: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Option<Spanned<String>>,
    pidfile: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    args: Option<Spanned<String>>,
    start: Option<Spanned<Vec<String>>>,
    stop: Option<Spanned<Vec<String>>>,
    start_timeout: Option<Spanned<String>>,
    stop_timeout: Option<Spanned<String>>,
    restart: Option<Spanned<RawRestart>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    backoff: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    stable_after: Option<Spanned<String>>,
    max_restarts: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    on_exhausted: Option<Spanned<String>>,
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
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "file is {} bytes, more than the {MAX_CONFIG_BYTES} custos reads",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse(&text).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        vec![ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            key: String::new(),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut v = Validator {
        text,
        errors: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Validator<'a> {
    text: &'a str,
    errors: Vec<ConfigError>,
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
        min: Duration,
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
            state_dir: PathBuf::from("/var/lib/custos"),
        };
        if let Some(s) = &raw.supervisor {
            let s = s.get_ref();
            supervisor.interval = self.duration(
                &s.interval,
                "supervisor.interval",
                supervisor.interval,
                Duration::from_millis(10),
            );
            if let Some(d) = &s.state_dir {
                supervisor.state_dir = self.path(d, "supervisor.state_dir");
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
        Config {
            supervisor,
            services,
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
                    if a.get_ref().len() > MAX_ARG_LEN {
                        self.err(
                            Some(a.span()),
                            &k("args"),
                            format!("over the limit of {MAX_ARG_LEN} bytes"),
                        );
                    }
                    a.get_ref().clone()
                });
                Identify::Exe {
                    exe: self.path(e, &k("exe")),
                    args,
                }
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
            Duration::from_millis(1),
        );
        let stop_timeout = self.duration(
            &s.stop_timeout,
            &k("stop_timeout"),
            Duration::from_secs(5),
            Duration::from_millis(1),
        );
        let mut restart = RestartPolicy::default();
        if let Some(r) = &s.restart {
            let r = r.get_ref();
            let one = Duration::from_millis(1);
            restart.backoff =
                self.duration(&r.backoff, &k("restart.backoff"), restart.backoff, one);
            restart.backoff_max = self.duration(
                &r.backoff_max,
                &k("restart.backoff_max"),
                restart.backoff_max,
                one,
            );
            restart.stable_after = self.duration(
                &r.stable_after,
                &k("restart.stable_after"),
                restart.stable_after,
                one,
            );
            restart.window = self.duration(&r.window, &k("restart.window"), restart.window, one);
            if let Some(m) = &r.max_restarts {
                let v = *m.get_ref();
                if v < 1 || v > MAX_RESTART_HISTORY as i64 {
                    self.err(
                        Some(m.span()),
                        &k("restart.max_restarts"),
                        format!("{v} is out of range 1..={MAX_RESTART_HISTORY}"),
                    );
                } else {
                    restart.max_restarts = v as u32;
                }
            }
            if let Some(o) = &r.on_exhausted {
                match o.get_ref().as_str() {
                    "give-up" => restart.on_exhausted = OnExhausted::GiveUp,
                    other => self.err(
                        Some(o.span()),
                        &k("restart.on_exhausted"),
                        format!("`{other}` is not one of: \"give-up\""),
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
        Some(ServiceConfig {
            name,
            identify,
            start,
            stop,
            start_timeout,
            stop_timeout,
            restart,
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
    }
}

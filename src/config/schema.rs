//! The config's schema: one table per section, and one row per check kind. Each key is written
//! once, with the type of its value, its bounds, what applies when it is not set and a one-line
//! doc. The reader takes from here which keys a table allows and what type each must be;
//! validation reads every value by its name and takes bounds and defaults from here; the
//! README's key reference is [`reference`] (a unit test keeps them equal).

use std::time::Duration;

use super::MAX_WATCHDOG_TIMEOUT;
use crate::limits::{
    MAX_CHECKS, MAX_CLEAR_AFTER, MAX_FLAP_COUNT, MAX_HOOKS, MAX_MAX_RESETS, MAX_RESTART_HISTORY,
    MAX_SERVICES,
};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
pub(super) const MINUTE: Duration = Duration::from_secs(60);
pub(super) const HOUR: Duration = Duration::from_secs(3600);
pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);

/// What a key's value is, and its bounds.
#[derive(Debug, Clone, Copy)]
pub enum Type {
    /// A string.
    Str,
    /// An absolute path (a string).
    Path,
    /// One of these words (a string).
    Word(&'static [&'static str]),
    /// The name of a check kind: a row of [`KINDS`] (a string).
    CheckKind,
    /// A duration string ("250ms", "5s", "2m", "1h") within min..=max.
    Dur(Duration, Duration),
    /// An integer within min..=max.
    Count(i64, i64),
    /// A number (a float, or an integer taken as one).
    Number,
    /// true or false.
    Bool,
    /// An argv: an array of strings, the first an absolute path.
    Argv,
    /// An array of strings.
    Strings,
    /// A size ("64MiB") or a count, as the check kind wants.
    SizeOrCount,
    /// A count within 1..=max, or "unlimited".
    CountOrUnlimited(i64),
    /// A table (`[name]`) of these keys.
    Table(&'static Section),
    /// An array of tables (`[[name]]`) of these keys, at most so many.
    Tables(&'static Section, usize),
}

/// What applies when a key is not set.
#[derive(Debug, Clone, Copy)]
pub enum Unset {
    /// The key must be set.
    Required,
    /// Nothing: the feature it names is off.
    Off,
    Dur(Duration),
    Count(i64),
    Word(&'static str),
    Bool(bool),
    /// Worked out from other keys, as said here.
    Text(&'static str),
}

/// One key of a table.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub ty: Type,
    pub unset: Unset,
    /// Kept for the README's reference only: custos itself does not carry the text.
    #[cfg(test)]
    pub doc: &'static str,
}

/// The keys of one table, in the order errors list them.
#[derive(Debug)]
pub struct Section {
    /// As the README heads it: `[supervisor]`, `[[service]]`, ...
    pub title: &'static str,
    pub keys: &'static [Key],
}

impl Section {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Where `name` is in the table (its bit in a table's "read" mask).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.name == name)
    }

    /// "a, b, c": the keys allowed here.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.keys.iter().map(|k| k.name).collect();
        names.join(", ")
    }
}

const fn key(name: &'static str, ty: Type, unset: Unset, doc: &'static str) -> Key {
    #[cfg(not(test))]
    let _ = doc;
    Key {
        name,
        ty,
        unset,
        #[cfg(test)]
        doc,
    }
}

#[rustfmt::skip]
pub static TOP: Section = Section {
    title: "top level",
    keys: &[
        key("supervisor", Type::Table(&SUPERVISOR), Unset::Text("the defaults below"), "the supervisor's own settings"),
        key("watchdog", Type::Table(&WATCHDOG), Unset::Off, "the hardware watchdog (absent: none)"),
        key("boot", Type::Table(&BOOT), Unset::Text("the defaults below"), "the boot-loop guard and the boot-health gate"),
        key("metrics", Type::Table(&METRICS), Unset::Off, "the Prometheus textfile (absent: none)"),
        key("service", Type::Tables(&SERVICE, MAX_SERVICES), Unset::Off, "a supervised service"),
        key("hook", Type::Tables(&HOOK, MAX_HOOKS), Unset::Off, "a program run on events"),
    ],
};

#[rustfmt::skip]
pub static SUPERVISOR: Section = Section {
    title: "[supervisor]",
    keys: &[
        key("interval", Type::Dur(Duration::from_millis(10), MINUTE), Unset::Dur(SEC), "poll period for /proc and pidfiles"),
        key("state_dir", Type::Path, Unset::Word(super::DEFAULT_STATE_DIR), "the record of events and boots (survives reboots)"),
        key("control_socket", Type::Path, Unset::Word(super::DEFAULT_CONTROL_SOCKET), "the control socket (at most 107 bytes)"),
        key("control_group", Type::Str, Unset::Off, "a group in /etc/group that may use the control socket besides root"),
        key("log", Type::Word(&["stderr", "syslog"]), Unset::Word("stderr"), "where custos logs (syslog: /dev/log, facility daemon)"),
    ],
};

#[rustfmt::skip]
pub static WATCHDOG: Section = Section {
    title: "[watchdog]",
    keys: &[
        key("device", Type::Path, Unset::Word("/dev/watchdog"), "the watchdog device"),
        key("timeout", Type::Dur(SEC, MAX_WATCHDOG_TIMEOUT), Unset::Dur(Duration::from_secs(15)), "whole seconds; set with WDIOC_SETTIMEOUT, the driver's value is used"),
        key("pet_every", Type::Dur(Duration::from_millis(10), Duration::MAX), Unset::Text("timeout/3"), "how often the healthy loop pets; shorter than timeout"),
        key("magic_close", Type::Bool, Unset::Bool(false), "write 'V' on SIGTERM (only if the driver supports it)"),
        key("max_resets", Type::Count(0, MAX_MAX_RESETS as i64), Unset::Off, "old name of boot.max_resets (not both)"),
        key("reset_window", Type::Dur(SEC, Duration::MAX), Unset::Off, "read and ignored: the guard counts boots, not time"),
    ],
};

#[rustfmt::skip]
pub static BOOT: Section = Section {
    title: "[boot]",
    keys: &[
        key("max_resets", Type::Count(0, MAX_MAX_RESETS as i64), Unset::Count(3), "more bad boots than this: no reboot escalation this boot"),
        key("clear_after", Type::Count(1, MAX_CLEAR_AFTER as i64), Unset::Count(2), "good boots in a row that end the count"),
        key("good_after", Type::Dur(SEC, DAY), Unset::Dur(Duration::from_secs(600)), "custos running this long in a boot makes it good"),
        key("healthy_after", Type::Dur(SEC, DAY), Unset::Off, "turns the boot-health gate on: vital services healthy this long"),
        key("deadline", Type::Dur(SEC, DAY), Unset::Dur(super::DEFAULT_DEADLINE), "gate: not healthy this long after custos started is unhealthy"),
        key("on_healthy", Type::Argv, Unset::Off, "gate: run on a healthy verdict"),
        key("on_unhealthy", Type::Argv, Unset::Off, "gate: run on an unhealthy verdict"),
        key("timeout", Type::Dur(Duration::from_millis(100), HOUR), Unset::Dur(super::DEFAULT_GATE_TIMEOUT), "gate: bounds each program's run"),
    ],
};

#[rustfmt::skip]
pub static METRICS: Section = Section {
    title: "[metrics]",
    keys: &[
        key("textfile", Type::Path, Unset::Required, "the Prometheus text file written"),
        key("every", Type::Dur(SEC, HOUR), Unset::Dur(super::DEFAULT_METRICS_EVERY), "how often it may be rewritten"),
    ],
};

#[rustfmt::skip]
pub static HOOK: Section = Section {
    title: "[[hook]]",
    keys: &[
        key("on", Type::Strings, Unset::Required, "the events it runs for (see \"event hooks\")"),
        key("run", Type::Argv, Unset::Required, "the program and its arguments"),
        key("timeout", Type::Dur(Duration::from_millis(100), Duration::from_secs(600)), Unset::Dur(super::DEFAULT_HOOK_TIMEOUT), "bounds its run"),
        key("services", Type::Strings, Unset::Text("every service"), "only these services' events"),
        key("flap_count", Type::Count(1, MAX_FLAP_COUNT as i64), Unset::Off, "more events of a service than this within flap_within are one `flapping`"),
        key("flap_within", Type::Dur(SEC, DAY), Unset::Off, "goes with flap_count"),
    ],
};

#[rustfmt::skip]
pub static SERVICE: Section = Section {
    title: "[[service]]",
    keys: &[
        key("name", Type::Str, Unset::Required, "[A-Za-z0-9_.-], 1..=31 chars, unique"),
        key("pidfile", Type::Path, Unset::Text("exe"), "identity: the PID in this file (or `exe`, not both)"),
        key("exe", Type::Path, Unset::Text("pidfile"), "identity: the one process running this program"),
        key("args", Type::Str, Unset::Text("any arguments"), "with `exe`: its arguments, joined by spaces"),
        key("start", Type::Argv, Unset::Required, "the argv that starts it, never through a shell"),
        key("stop", Type::Argv, Unset::Off, "the argv that stops it, before SIGTERM"),
        key("start_timeout", Type::Dur(MS, Duration::from_secs(600)), Unset::Dur(Duration::from_secs(10)), "the start script must exit 0 and the process appear within it"),
        key("stop_timeout", Type::Dur(MS, Duration::from_secs(600)), Unset::Dur(Duration::from_secs(5)), "bounds the stop script, then SIGTERM -> wait -> SIGKILL"),
        key("leftovers", Type::Word(&["stop", "keep"]), Unset::Word("stop"), "what a dead instance leaves in its process group"),
        key("restart", Type::Table(&RESTART), Unset::Text("the defaults below"), "the restart policy"),
        key("check", Type::Tables(&CHECK, MAX_CHECKS), Unset::Off, "a health check"),
        key("vital", Type::Bool, Unset::Bool(false), "counted by the boot-health gate"),
    ],
};

#[rustfmt::skip]
pub static RESTART: Section = Section {
    title: "[service.restart]",
    keys: &[
        key("backoff", Type::Dur(MS, HOUR), Unset::Dur(Duration::from_millis(500)), "delay after the first failure in a row; doubles per failure"),
        key("backoff_max", Type::Dur(MS, HOUR), Unset::Dur(Duration::from_secs(60)), "the delay stays here while it crash-loops"),
        key("stable_after", Type::Dur(MS, DAY), Unset::Dur(Duration::from_secs(10)), "a death after this much running is restarted at once"),
        key("max_restarts", Type::CountOrUnlimited(MAX_RESTART_HISTORY as i64), Unset::Word("unlimited"), "this many restarts within `window`, then `on_exhausted`"),
        key("window", Type::Dur(MS, DAY), Unset::Dur(Duration::from_secs(600)), "written without max_restarts: max_restarts = 10"),
        key("on_exhausted", Type::Word(&["give-up", "reboot"]), Unset::Word("give-up"), "written without max_restarts: max_restarts = 10"),
    ],
};

#[rustfmt::skip]
pub static CHECK: Section = Section {
    title: "[[service.check]]",
    keys: &[
        key("kind", Type::CheckKind, Unset::Required, "what it looks at (the kinds below)"),
        key("host", Type::Str, Unset::Word("127.0.0.1"), "an IP address (names are not resolved)"),
        key("port", Type::Count(1, 65535), Unset::Required, "the TCP port"),
        key("path", Type::Str, Unset::Text("http: /"), "http: the request path; heartbeat: the file (absolute)"),
        key("status", Type::Count(100, 599), Unset::Count(200), "the HTTP status that passes"),
        key("expect", Type::Str, Unset::Off, "text the first 4 KiB of the body must hold"),
        key("max", Type::SizeOrCount, Unset::Required, "memory: a size (\"64MiB\"); fds: a count"),
        key("max_percent", Type::Number, Unset::Required, "CPU use that fails (100 = one core)"),
        key("over", Type::Dur(MS, HOUR), Unset::Dur(Duration::from_secs(30)), "CPU use above max_percent this long fails"),
        key("max_age", Type::Dur(MS, DAY), Unset::Required, "the file changed within this, on the boot clock"),
        key("argv", Type::Argv, Unset::Required, "the program that must exit 0"),
        key("timeout", Type::Dur(MS, MINUTE), Unset::Dur(Duration::from_secs(5)), "a probe's reply or a program's run time"),
        key("every", Type::Dur(Duration::from_millis(10), DAY), Unset::Text("supervisor.interval"), "how often it runs; program checks at least every 1s"),
        key("failures", Type::Count(1, 1000), Unset::Count(1), "failures in a row before acting"),
        key("grace", Type::Dur(MS, HOUR), Unset::Dur(Duration::from_secs(10)), "after a start, failures count once it passed or this ran out"),
        key("action", Type::Word(&["restart", "log"]), Unset::Word("restart"), "what a failing check does"),
    ],
};

/// One check kind: its name, the keys it takes besides `kind` and the common ones, and what
/// it passes on.
pub struct Kind {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    #[cfg(test)]
    pub doc: &'static str,
}

const fn kind_row(name: &'static str, keys: &'static [&'static str], doc: &'static str) -> Kind {
    #[cfg(not(test))]
    let _ = doc;
    Kind {
        name,
        keys,
        #[cfg(test)]
        doc,
    }
}

#[rustfmt::skip]
pub static KINDS: [Kind; 7] = [
    kind_row("http", &["host", "port", "path", "status", "expect"], "an HTTP/1.0 GET gets `status`, and `expect` within the first 4 KiB of the body"),
    kind_row("tcp", &["host", "port"], "the connect succeeds"),
    kind_row("memory", &["max"], "resident memory (/proc/PID/statm) <= max"),
    kind_row("cpu", &["max_percent", "over"], "usage has not stayed above max_percent for `over`"),
    kind_row("fds", &["max"], "open descriptors (/proc/PID/fd) <= max"),
    kind_row("heartbeat", &["path", "max_age"], "the file changed within max_age, on the boot clock"),
    kind_row("program", &["argv"], "the program exits 0 within `timeout`"),
];

/// "http, tcp, ...": the check kinds.
pub fn kind_names() -> String {
    let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.join(", ")
}

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Whether `name` is a key of some check kind (not one every check takes).
pub fn is_kind_key(name: &str) -> bool {
    KINDS.iter().any(|k| k.keys.contains(&name))
}

/// The README's key reference, written out from the tables (with the docs, which only the
/// tests carry).
#[cfg(test)]
pub mod reference {
    use super::*;

    fn type_text(ty: &Type) -> String {
        match ty {
            Type::Str => "string".to_string(),
            Type::Path => "absolute path".to_string(),
            Type::Word(w) => {
                let w: Vec<String> = w.iter().map(|w| format!("`\"{w}\"`")).collect();
                w.join(" or ")
            }
            Type::CheckKind => {
                let w: Vec<String> = KINDS.iter().map(|k| format!("`\"{}\"`", k.name)).collect();
                w.join(" or ")
            }
            Type::Dur(min, max) if *max == Duration::MAX => {
                format!("duration >= {}", dur_text(*min))
            }
            Type::Dur(min, max) => format!("duration {} ..= {}", dur_text(*min), dur_text(*max)),
            Type::Count(min, max) => format!("integer {min} ..= {max}"),
            Type::Number => "number".to_string(),
            Type::Bool => "true or false".to_string(),
            Type::Argv => "argv (array of strings)".to_string(),
            Type::Strings => "array of strings".to_string(),
            Type::SizeOrCount => "size (`\"64MiB\"`) or integer".to_string(),
            Type::CountOrUnlimited(max) => format!("integer 1 ..= {max} or `\"unlimited\"`"),
            Type::Table(s) => format!("table `{}`", s.title),
            Type::Tables(s, n) => format!("up to {n} tables `{}`", s.title),
        }
    }

    /// A duration as a config writes it: the largest unit it is a whole number of.
    fn dur_text(d: Duration) -> String {
        let ms = d.as_millis();
        for (unit, n) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
            if ms >= n && ms.is_multiple_of(n) {
                return format!("{}{unit}", ms / n);
            }
        }
        format!("{ms}ms")
    }

    fn unset_text(u: &Unset) -> String {
        match u {
            Unset::Required => "required".to_string(),
            Unset::Off => "none".to_string(),
            Unset::Dur(d) => format!("`\"{}\"`", dur_text(*d)),
            Unset::Count(n) => format!("`{n}`"),
            Unset::Word(w) => format!("`\"{w}\"`"),
            Unset::Bool(b) => format!("`{b}`"),
            Unset::Text(t) => t.to_string(),
        }
    }

    /// The README's key reference: a table of keys per section, then the check kinds.
    pub fn reference() -> String {
        let mut o = String::new();
        for s in [
            &TOP,
            &SUPERVISOR,
            &WATCHDOG,
            &BOOT,
            &METRICS,
            &HOOK,
            &SERVICE,
            &RESTART,
            &CHECK,
        ] {
            o.push_str(&format!(
                "\n`{}`\n\n| key | value | unset | what |\n|---|---|---|---|\n",
                s.title
            ));
            for k in s.keys {
                o.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    k.name,
                    type_text(&k.ty),
                    unset_text(&k.unset),
                    k.doc
                ));
            }
        }
        o.push_str("\nCheck kinds: the keys each takes besides `kind` and the common ones.\n\n| kind | keys | passes when |\n|---|---|---|\n");
        for k in &KINDS {
            let keys: Vec<String> = k.keys.iter().map(|n| format!("`{n}`")).collect();
            o.push_str(&format!(
                "| `{}` | {} | {} |\n",
                k.name,
                keys.join(", "),
                k.doc
            ));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use toml::de::DeTable;

    use super::reference::reference;
    use super::*;
    use crate::config::validate::Validator;
    use crate::config::{BootConfig, RestartPolicy};

    /// Every table reachable from the top, once.
    fn sections() -> Vec<&'static Section> {
        let mut out: Vec<&'static Section> = vec![&TOP];
        let mut i = 0;
        while i < out.len() {
            for k in out[i].keys {
                if let Type::Table(s) | Type::Tables(s, _) = k.ty {
                    if !out.iter().any(|o| std::ptr::eq(*o, s)) {
                        out.push(s);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// A config that writes every key of every table (and every check kind).
    const EVERY_KEY: &str = r#"
[supervisor]
interval = "2s"
state_dir = "/var/lib/custos"
control_socket = "/run/custos.sock"
control_group = "root"
log = "syslog"

[watchdog]
device = "/dev/watchdog"
timeout = "30s"
pet_every = "5s"
magic_close = true
max_resets = 2
reset_window = "1h"

[boot]
max_resets = 4
clear_after = 3
good_after = "5m"
healthy_after = "1m"
deadline = "10m"
on_healthy = ["/bin/true"]
on_unhealthy = ["/bin/false"]
timeout = "30s"

[metrics]
textfile = "/var/lib/node_exporter/custos.prom"
every = "30s"

[[hook]]
on = ["died", "flapping"]
run = ["/bin/cat"]
timeout = "5s"
services = ["a"]
flap_count = 3
flap_within = "5m"

[[service]]
name = "a"
pidfile = "/run/a.pid"
start = ["/etc/init.d/a", "start"]
stop = ["/etc/init.d/a", "stop"]
start_timeout = "20s"
stop_timeout = "7s"
leftovers = "keep"
vital = true

[service.restart]
backoff = "1s"
backoff_max = "2m"
stable_after = "20s"
max_restarts = 5
window = "20m"
on_exhausted = "reboot"

[[service.check]]
kind = "http"
host = "127.0.0.2"
port = 8080
path = "/health"
status = 204
expect = "ok"
timeout = "2s"
every = "3s"
failures = 3
grace = "20s"
action = "log"

[[service.check]]
kind = "tcp"
port = 22

[[service.check]]
kind = "memory"
max = "64MiB"

[[service.check]]
kind = "fds"
max = 100

[[service]]
name = "b"
exe = "/usr/sbin/b-daemon"
args = "--b"
start = ["/etc/init.d/b", "start"]

[[service.check]]
kind = "cpu"
max_percent = 90.0
over = "1m"

[[service.check]]
kind = "heartbeat"
path = "/run/b.beat"
max_age = "1m"

[[service.check]]
kind = "program"
argv = ["/bin/true"]
"#;

    #[test]
    fn every_key_of_every_table_is_read_by_its_name() {
        let doc = DeTable::parse(EVERY_KEY).expect("toml");
        let mut v = Validator {
            text: EVERY_KEY,
            errors: Vec::new(),
            init: None,
        };
        let top = v.read_config(doc.get_ref());
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        let config = v.config(&top);
        let mut asked = Vec::new();
        top.asked(&mut asked);
        let asked: BTreeSet<_> = asked.into_iter().collect();
        let mut every = BTreeSet::new();
        for s in sections() {
            for k in s.keys {
                every.insert((s.title, k.name));
            }
        }
        let never: Vec<_> = every.difference(&asked).collect();
        assert!(never.is_empty(), "keys written but never read: {never:?}");
        // Each value landed in its own field, not in a neighbour of the same type.
        let a = &config.services[0];
        assert_eq!(a.start_timeout, Duration::from_secs(20));
        assert_eq!(a.stop_timeout, Duration::from_secs(7));
        assert_eq!(a.restart.backoff, Duration::from_secs(1));
        assert_eq!(a.restart.backoff_max, Duration::from_secs(120));
        assert_eq!(a.restart.stable_after, Duration::from_secs(20));
        assert_eq!(a.restart.window, Duration::from_secs(1200));
        let c = &a.checks[0];
        assert_eq!(
            (c.timeout, c.every, c.grace, c.failures),
            (
                Duration::from_secs(2),
                Duration::from_secs(3),
                Duration::from_secs(20),
                3
            )
        );
        let kinds: Vec<String> = config
            .services
            .iter()
            .flat_map(|s| s.checks.iter().map(|c| c.to_string()))
            .map(|d| d.split(' ').next().unwrap_or("").to_string())
            .collect();
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        let mut kinds = kinds;
        kinds.sort_unstable();
        assert_eq!(kinds, names, "one check of every kind");
    }

    #[test]
    fn every_key_of_a_check_kind_is_a_check_key_and_the_other_way_round() {
        for k in &KINDS {
            for key in k.keys {
                assert!(
                    CHECK.key(key).is_some(),
                    "{}: `{key}` is not in CHECK",
                    k.name
                );
            }
        }
        let common = ["kind", "timeout", "every", "failures", "grace", "action"];
        for key in CHECK.keys {
            assert!(
                is_kind_key(key.name) != common.contains(&key.name),
                "`{}`: a key of some kind, or one every check takes",
                key.name
            );
        }
    }

    #[test]
    fn the_defaults_written_in_the_schema_are_the_ones_applied() {
        let unset = |s: &Section, name: &str| s.key(name).map(|k| format!("{:?}", k.unset));
        let r = RestartPolicy::default();
        for (name, d) in [
            ("backoff", r.backoff),
            ("backoff_max", r.backoff_max),
            ("stable_after", r.stable_after),
            ("window", r.window),
        ] {
            assert_eq!(
                unset(&RESTART, name),
                Some(format!("{:?}", Unset::Dur(d))),
                "{name}"
            );
        }
        let b = BootConfig::default();
        assert_eq!(
            unset(&BOOT, "max_resets"),
            Some(format!("{:?}", Unset::Count(b.max_resets.into())))
        );
        assert_eq!(
            unset(&BOOT, "clear_after"),
            Some(format!("{:?}", Unset::Count(b.clear_after.into())))
        );
        assert_eq!(
            unset(&BOOT, "good_after"),
            Some(format!("{:?}", Unset::Dur(b.good_after)))
        );
        let c = crate::config::parse_with_init(
            "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/bin/a\"]\n[[service.check]]\nkind = \"tcp\"\nport = 1\n",
            None,
        )
        .expect("valid");
        let s = &c.services[0];
        assert_eq!(
            unset(&SUPERVISOR, "interval"),
            Some(format!("{:?}", Unset::Dur(c.supervisor.interval)))
        );
        assert_eq!(
            unset(&SERVICE, "start_timeout"),
            Some(format!("{:?}", Unset::Dur(s.start_timeout)))
        );
        assert_eq!(
            unset(&SERVICE, "stop_timeout"),
            Some(format!("{:?}", Unset::Dur(s.stop_timeout)))
        );
        let k = &s.checks[0];
        assert_eq!(
            unset(&CHECK, "timeout"),
            Some(format!("{:?}", Unset::Dur(k.timeout)))
        );
        assert_eq!(
            unset(&CHECK, "grace"),
            Some(format!("{:?}", Unset::Dur(k.grace)))
        );
        assert_eq!(
            unset(&CHECK, "failures"),
            Some(format!("{:?}", Unset::Count(k.failures.into())))
        );
    }

    /// The README's key reference is this schema written out: a key added to a table and not
    /// to the README (or the other way round) fails here, with the text the README needs.
    #[test]
    fn the_readme_lists_exactly_the_keys_of_the_schema() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let begin = "<!-- config keys: written from src/config/schema.rs -->\n";
        let end = "<!-- config keys: end -->";
        let want = reference();
        let got = readme
            .split_once(begin)
            .and_then(|(_, rest)| rest.split_once(end))
            .map(|(block, _)| block);
        assert_eq!(
            got,
            Some(want.as_str()),
            "README.md's key reference differs from the schema; between the markers it must read:\n{begin}{want}{end}"
        );
    }
}

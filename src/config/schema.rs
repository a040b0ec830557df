//! The config's schema: one table per section, and one row per check kind. Each key is written
//! once, with the type of its value, its bounds, what applies when it is not set and a one-line
//! doc. The reader takes from here which keys a table allows and what type each must be;
//! validation reads every value by its name and takes bounds and defaults from here; the
//! README's key reference is [`reference`] (a unit test keeps them equal).

use std::time::Duration;

use super::MAX_WATCHDOG_TIMEOUT;
use crate::clock::Dur;
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
    Key {
        name,
        ty,
        unset,
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
        key("kind", Type::Word(&["http", "tcp", "memory", "cpu", "fds", "heartbeat", "program"]), Unset::Required, "what it looks at (the kinds below)"),
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
    pub doc: &'static str,
}

#[rustfmt::skip]
pub static KINDS: [Kind; 7] = [
    Kind { name: "http", keys: &["host", "port", "path", "status", "expect"], doc: "an HTTP/1.0 GET gets `status`, and `expect` within the first 4 KiB of the body" },
    Kind { name: "tcp", keys: &["host", "port"], doc: "the connect succeeds" },
    Kind { name: "memory", keys: &["max"], doc: "resident memory (/proc/PID/statm) <= max" },
    Kind { name: "cpu", keys: &["max_percent", "over"], doc: "usage has not stayed above max_percent for `over`" },
    Kind { name: "fds", keys: &["max"], doc: "open descriptors (/proc/PID/fd) <= max" },
    Kind { name: "heartbeat", keys: &["path", "max_age"], doc: "the file changed within max_age, on the boot clock" },
    Kind { name: "program", keys: &["argv"], doc: "the program exits 0 within `timeout`" },
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

// ---------------------------------------------------------------------------------------------
// The README's key reference.

fn type_text(ty: &Type) -> String {
    match ty {
        Type::Str => "string".to_string(),
        Type::Path => "absolute path".to_string(),
        Type::Word(w) => {
            let w: Vec<String> = w.iter().map(|w| format!("`\"{w}\"`")).collect();
            w.join(" or ")
        }
        Type::Dur(min, max) if *max == Duration::MAX => format!("duration >= {}", Dur(*min)),
        Type::Dur(min, max) => format!("duration {} ..= {}", Dur(*min), Dur(*max)),
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

fn unset_text(u: &Unset) -> String {
    match u {
        Unset::Required => "required".to_string(),
        Unset::Off => "none".to_string(),
        Unset::Dur(d) => format!("`\"{}\"`", Dur(*d)),
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

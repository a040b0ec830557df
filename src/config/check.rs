//! Validating a `[[service.check]]`: its kind (a row of the schema's `KINDS`), the keys that
//! kind takes, and the keys every check takes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::read::{Fields, Label, Raw};
use super::schema::{self, Kind};
use super::validate::Validator;
use super::*;
use crate::limits::MAX_ARG_LEN;

impl Validator<'_> {
    /// A check of a service; `key` names it in errors (`service.check[0] (service `web`)`).
    pub(super) fn check(&mut self, c: &Spanned<Fields>, key: &str) -> Option<CheckConfig> {
        let at = Some(c.span());
        let c = c.get_ref();
        let l = Label::new(format!("{key}."), "");
        let Some(kind_s) = c.str("kind") else {
            self.err(
                at,
                &l.key("kind"),
                format!("missing: one of {}", schema::kind_names()),
            );
            return None;
        };
        let Some(kind) = schema::kind(kind_s.get_ref()) else {
            self.err(
                Some(kind_s.span()),
                &l.key("kind"),
                format!(
                    "`{}` is not one of {}",
                    kind_s.get_ref(),
                    schema::kind_names()
                ),
            );
            return None;
        };
        let probe = Probe { c, l: &l, kind, at };
        self.keys_of_other_kinds(&probe);
        let kind = self.kind(&probe)?;
        self.common(c, &l, kind)
    }

    /// Keys of other kinds are refused.
    fn keys_of_other_kinds(&mut self, p: &Probe<'_>) {
        for key in schema::CHECK.keys {
            if !schema::is_kind_key(key.name) || p.kind.keys.contains(&key.name) {
                continue;
            }
            if let Some(span) = p.c.span(key.name) {
                self.err(
                    Some(span),
                    &p.l.key(key.name),
                    format!("does not apply to kind \"{}\"", p.kind.name),
                );
            }
        }
    }

    /// What the check looks at, from the keys of its kind.
    fn kind(&mut self, p: &Probe<'_>) -> Option<CheckKind> {
        Some(match p.kind.name {
            "http" => self.http(p),
            "tcp" => CheckKind::Tcp { addr: self.addr(p) },
            "memory" => CheckKind::Memory {
                max_bytes: self.memory_max(p)?,
            },
            "fds" => CheckKind::Fds {
                max: self.fds_max(p)?,
            },
            "cpu" => self.cpu(p),
            "heartbeat" => self.heartbeat(p),
            _ => match p.c.strings("argv") {
                // "program": the only kind left.
                Some(a) => CheckKind::Program {
                    argv: self.argv(&a, &p.l.key("argv")),
                },
                None => {
                    self.missing(p, "argv");
                    return None;
                }
            },
        })
    }

    fn missing(&mut self, p: &Probe<'_>, name: &str) {
        self.err(
            p.at.clone(),
            &p.l.key(name),
            format!("missing: kind \"{}\" needs it", p.kind.name),
        );
    }

    /// `host` (an IP address, default 127.0.0.1) and `port`.
    fn addr(&mut self, p: &Probe<'_>) -> SocketAddr {
        let ip = match p.c.str("host") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.get_ref().parse::<IpAddr>().unwrap_or_else(|_| {
                self.err(
                    Some(h.span()),
                    &p.l.key("host"),
                    format!(
                        "`{}` is not an IP address (names are not resolved)",
                        h.get_ref()
                    ),
                );
                IpAddr::from([127, 0, 0, 1])
            }),
        };
        let port = match p.c.int("port") {
            None => {
                self.missing(p, "port");
                0
            }
            Some(n) => u16::try_from(*n.get_ref())
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| {
                    self.err(
                        Some(n.span()),
                        &p.l.key("port"),
                        format!("{} is not a port (1..=65535)", n.get_ref()),
                    );
                    0
                }),
        };
        SocketAddr::new(ip, port)
    }

    fn http(&mut self, p: &Probe<'_>) -> CheckKind {
        let addr = self.addr(p);
        let path = match p.c.str("path") {
            None => "/".to_string(),
            Some(r) => {
                let v = r.get_ref();
                if !v.starts_with('/')
                    || v.len() > MAX_ARG_LEN
                    || v.bytes().any(|b| b <= b' ' || b == 0x7f)
                {
                    self.err(Some(r.span()), &p.l.key("path"), format!("`{v}` is not a request path: it starts with / and has no spaces or control characters"));
                }
                v.clone()
            }
        };
        let status = match p.c.int("status") {
            None => 200,
            Some(st) => match u16::try_from(*st.get_ref()) {
                Ok(v) if (100..=599).contains(&v) => v,
                _ => {
                    self.err(
                        Some(st.span()),
                        &p.l.key("status"),
                        format!("{} is not an HTTP status (100..=599)", st.get_ref()),
                    );
                    200
                }
            },
        };
        let expect = p.c.str("expect").map(|e| {
            if e.get_ref().is_empty() || e.get_ref().len() > MAX_ARG_LEN {
                self.err(
                    Some(e.span()),
                    &p.l.key("expect"),
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

    /// A memory check's `max`: a size with its unit.
    fn memory_max(&mut self, p: &Probe<'_>) -> Option<u64> {
        let Some(m) = p.c.raw("max") else {
            self.missing(p, "max");
            return None;
        };
        let err = match m.get_ref() {
            Raw::Str(s) => match parse_size(s) {
                Ok(b) => return Some(b),
                Err(e) => e,
            },
            _ => "write a size with its unit, like \"64MiB\"".to_string(),
        };
        self.err(Some(m.span()), &p.l.key("max"), err);
        None
    }

    /// An fds check's `max`: a count of descriptors.
    fn fds_max(&mut self, p: &Probe<'_>) -> Option<u64> {
        let Some(m) = p.c.raw("max") else {
            self.missing(p, "max");
            return None;
        };
        match m.get_ref() {
            Raw::Int(n) if *n > 0 => Some(*n as u64),
            _ => {
                self.err(
                    Some(m.span()),
                    &p.l.key("max"),
                    "write a whole number of descriptors greater than 0",
                );
                None
            }
        }
    }

    fn cpu(&mut self, p: &Probe<'_>) -> CheckKind {
        let max_percent = match p.c.float("max_percent") {
            Some(v) if *v.get_ref() > 0.0 && v.get_ref().is_finite() => *v.get_ref(),
            Some(v) => {
                self.err(
                    Some(v.span()),
                    &p.l.key("max_percent"),
                    "must be a number greater than 0 (100 = one core)",
                );
                100.0
            }
            None => {
                self.missing(p, "max_percent");
                100.0
            }
        };
        let over = self.dur(p.c, p.l, "over");
        CheckKind::Cpu { max_percent, over }
    }

    fn heartbeat(&mut self, p: &Probe<'_>) -> CheckKind {
        let path = match p.c.str("path") {
            Some(v) => self.path(&v, &p.l.key("path")),
            None => {
                self.missing(p, "path");
                PathBuf::new()
            }
        };
        if p.c.span("max_age").is_none() {
            self.missing(p, "max_age");
        }
        let max_age = self.dur_or(p.c, p.l, "max_age", Duration::from_secs(30));
        CheckKind::Heartbeat { path, max_age }
    }

    /// The keys every check takes.
    fn common(&mut self, c: &Fields, l: &Label, kind: CheckKind) -> Option<CheckConfig> {
        let timeout = self.dur(c, l, "timeout");
        // Zero stands for "the supervisor interval", filled in once the [supervisor] table is
        // read. A program check forks and execs each time: not more than once a second.
        let every = match kind {
            CheckKind::Program { .. } => self.duration(
                &c.str("every"),
                &l.key("every"),
                Duration::ZERO,
                (MIN_PROGRAM_EVERY, schema::DAY),
            ),
            _ => self.dur_or(c, l, "every", Duration::ZERO),
        };
        let grace = self.dur(c, l, "grace");
        let failures = match c.int("failures") {
            None => 1,
            Some(f) => match u32::try_from(*f.get_ref()) {
                Ok(v) if (1..=1000).contains(&v) => v,
                _ => {
                    self.err(
                        Some(f.span()),
                        &l.key("failures"),
                        format!("{} is out of range 1..=1000", f.get_ref()),
                    );
                    1
                }
            },
        };
        let action = match c.str("action") {
            None => CheckAction::Restart,
            Some(a) => match a.get_ref().as_str() {
                "restart" => CheckAction::Restart,
                "log" => CheckAction::Log,
                other => {
                    self.err(
                        Some(a.span()),
                        &l.key("action"),
                        format!("`{other}` is not one of: \"restart\", \"log\""),
                    );
                    CheckAction::Restart
                }
            },
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

/// The check being read, and its kind.
struct Probe<'a> {
    c: &'a Fields,
    l: &'a Label,
    kind: &'static Kind,
    at: Option<std::ops::Range<usize>>,
}

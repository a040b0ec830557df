//! The conversion state, and the statements it converts first: `set` settings, the `check`
//! line (the service's name and identity) and `every`.

use std::path::PathBuf;

use super::directive::{Check, Directive};
use super::lex::{at, num, Tok};
use super::values::regex_literal;
use super::write::{dur, toml_str};
use crate::limits::{MAX_ARG_LEN, MAX_NAME};

pub(super) struct Converter<'a> {
    pub(super) files: &'a [PathBuf],
    pub(super) cycle: u64,
    pub(super) cycle_given: bool,
    /// Comments for global settings, at the top of the config.
    pub(super) header: Vec<String>,
    pub(super) body: String,
    pub(super) notes: Vec<String>,
    /// Service names written so far (unique).
    pub(super) names: Vec<String>,
    pub(super) services: usize,
    pub(super) log_syslog: bool,
}

/// A check being built: its TOML lines (after `[[service.check]]`).
pub(super) struct OutCheck {
    pub(super) lines: Vec<String>,
}

pub(super) struct OutService {
    pub(super) name: String,
    pub(super) comments: Vec<String>,
    pub(super) identity: Vec<String>,
    pub(super) start: Option<Vec<String>>,
    pub(super) start_line: Vec<String>,
    pub(super) stop_line: Vec<String>,
    pub(super) keys: Vec<String>,
    pub(super) restart: Vec<String>,
    pub(super) checks: Vec<OutCheck>,
    pub(super) every: u64,
}

impl Converter<'_> {
    pub(super) fn at(&self, d: &Directive) -> String {
        at(self.files, d.file, d.line)
    }

    pub(super) fn err(&self, d: &Directive, msg: impl std::fmt::Display) -> String {
        format!("{}: error: {msg}", self.at(d))
    }

    pub(super) fn cycles(&self, n: u64) -> u64 {
        n.saturating_mul(self.cycle)
    }

    pub(super) fn set_daemon_cycle(&mut self, d: &Directive) {
        let w = d.words();
        if w.get(1).is_some_and(|t| t.is("daemon")) {
            if let Some(n) = num(w.get(2)).filter(|n| *n > 0) {
                self.cycle = n;
                self.cycle_given = true;
            }
        }
    }

    pub(super) fn set(&mut self, d: &Directive) -> Result<(), String> {
        let w = d.words();
        let what = w.get(1).map(|t| t.kw()).unwrap_or_default();
        match what.as_str() {
            "daemon" => {
                let Some(n) = num(w.get(2)).filter(|n| *n > 0) else {
                    return Err(self.err(d, "`set daemon` needs a number of seconds"));
                };
                // Only `[with] start delay N` may follow.
                let rest: Vec<String> = w[3..].iter().map(|t| t.kw()).collect();
                let delay_ok = rest.is_empty()
                    || (rest.len() == 3
                        && rest[0] == "start"
                        && rest[1] == "delay"
                        && num(w.get(5)).is_some());
                if !delay_ok {
                    let bad = w.get(3).map(|t| t.text.as_str()).unwrap_or_default();
                    let line = w
                        .get(3)
                        .map(|t| (t.file, t.line))
                        .unwrap_or((d.file, d.line));
                    return Err(format!(
                        "{}: error: `{bad}`: expected `start delay N` or a new statement (`set`, `check`, `include`)",
                        at(self.files, line.0, line.1)
                    ));
                }
                self.header.push(format!(
                    "# {} ({}): Monit's cycle. custos sees a death at once and polls every [supervisor] interval (default 1s); cycles below are counted as {}.",
                    d.text(),
                    self.at(d),
                    dur(n)
                ));
                if w.iter().any(|t| t.is("delay")) {
                    let c = self.not_converted(
                        d,
                        "start delay",
                        "custos checks from its start; a check's failures count once it has passed or after its `grace`",
                    );
                    self.header.extend(c);
                }
            }
            "log" | "logfile" if w.get(2).is_some_and(|t| t.is("syslog")) => {
                self.log_syslog = true;
                self.header.push(format!(
                    "# {} ({}): [supervisor] log = \"syslog\"",
                    d.text(),
                    self.at(d)
                ));
                if w.len() > 3 {
                    let c = self.not_converted(
                        d,
                        "syslog facility",
                        "custos logs to the daemon facility",
                    );
                    self.header.extend(c);
                }
            }
            _ => {
                let why = match what.as_str() {
                    "log" | "logfile" => "custos logs to stderr or syslog ([supervisor] log); redirect its stderr in inittab",
                    "idfile" | "statefile" | "pidfile" => {
                        "custos keeps its state in [supervisor] state_dir"
                    }
                    "eventqueue" | "mailserver" | "alert" | "mail-format" | "mmonit" => {
                        "custos sends no alerts: it logs every event with its cause (`custos events`)"
                    }
                    "httpd" => "custos is controlled through its UNIX socket (`custos status`, `custos start NAME`)",
                    "limits" | "ssl" | "fips" | "init" | "onreboot" | "expectbuffer" | "netrc" | "ssl options" => {
                        "no custos equivalent"
                    }
                    _ => "not a setting custos knows",
                };
                let label = format!("set {what}");
                let c = self.not_converted(d, &label, why);
                self.header.extend(c);
            }
        }
        Ok(())
    }

    pub(super) fn check(&mut self, c: &Check) -> Result<(), String> {
        let hw = c.head.words();
        let kind = hw.get(1).map(|t| t.kw()).unwrap_or_default();
        let Some(name_tok) = hw.get(2) else {
            return Err(self.err(&c.head, "`check` needs a service type and a name"));
        };
        if kind != "process" {
            // Not a process: custos has nothing like it. The whole entry is one comment block.
            let what = format!(
                "check {kind} {} and its {} directive(s)",
                name_tok.text,
                c.body.len()
            );
            let why = match kind.as_str() {
                "file" | "directory" | "fifo" | "filesystem" => {
                    "custos supervises processes; it does not watch files, permissions or checksums"
                }
                "host" | "network" => "custos checks only the services it supervises (a [[service.check]] of kind tcp or http)",
                "system" => "custos watches no system-wide load, memory or swap",
                "program" => "custos runs programs only as a service's check (kind = \"program\")",
                _ => "not a Monit service type custos knows",
            };
            let mut lines = vec![String::new()];
            lines.extend(self.not_converted(&c.head, &what, why));
            for d in &c.body {
                lines.push(format!("#   {}: {}", self.at(d), d.text()));
            }
            self.emit(&lines);
            return Ok(());
        }
        let mut s = OutService {
            name: self.service_name(&name_tok.text),
            comments: Vec::new(),
            identity: Vec::new(),
            start: None,
            start_line: Vec::new(),
            stop_line: Vec::new(),
            keys: Vec::new(),
            restart: Vec::new(),
            checks: Vec::new(),
            every: 1,
        };
        if s.name != name_tok.text {
            s.comments.push(format!(
                "# Monit's name `{}` is not a custos name ([A-Za-z0-9_.-], 1 to {MAX_NAME}, unique)",
                name_tok.text
            ));
        }
        self.identity(&c.head, &hw[3..], &mut s)?;
        // `every` first: it sets the period of every check of the service.
        for d in &c.body {
            let w = d.words();
            if w.first().is_some_and(|t| t.is("every")) {
                match num(w.get(1)) {
                    Some(n) if n > 0 && w.get(2).is_some_and(|t| t.kw().starts_with("cycle")) => {
                        s.every = n;
                        s.comments.push(format!(
                            "# {} ({}): its checks run every {} cycle(s)",
                            d.text(),
                            self.at(d),
                            n
                        ));
                    }
                    _ => {
                        let lines = self.not_converted(
                            d,
                            &d.text(),
                            "custos runs checks at fixed periods (`every`), not on a cron schedule",
                        );
                        s.comments.extend(lines);
                    }
                }
            }
        }
        for d in &c.body {
            self.directive(d, &mut s)?;
        }
        self.write_service(&c.head, s);
        Ok(())
    }

    pub(super) fn service_name(&mut self, monit: &str) -> String {
        let mut n: String = monit
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_NAME)
            .collect();
        if n.is_empty() {
            n.push_str("service");
        }
        let base = n.clone();
        let mut k = 2;
        while self.names.contains(&n) {
            let suffix = format!("-{k}");
            let keep = base.len().min(MAX_NAME - suffix.len());
            n = format!("{}{suffix}", &base[..keep]);
            k += 1;
        }
        self.names.push(n.clone());
        n
    }

    /// `with pidfile P`, `matching "re"`, `path P` on the check line.
    pub(super) fn identity(
        &mut self,
        head: &Directive,
        rest: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let first = rest.first().map(|t| t.kw()).unwrap_or_default();
        match first.as_str() {
            "pidfile" => {
                let Some(p) = rest.get(1) else {
                    return Err(self.err(head, "`pidfile` needs a path"));
                };
                if !p.text.starts_with('/') || p.text.len() > MAX_ARG_LEN {
                    return Err(self.err(
                        head,
                        format!("pidfile `{}` is not an absolute path", p.text),
                    ));
                }
                s.identity.push(format!("pidfile = {}", toml_str(&p.text)));
                self.rest_of_head(head, &rest[2..], s);
            }
            "matching" | "match" => {
                let Some(re) = rest.get(1) else {
                    return Err(self.err(head, "`matching` needs a regular expression"));
                };
                let lit = regex_literal(&re.text);
                let (keys, alt) = if lit.starts_with('/') {
                    let mut parts = lit.splitn(2, ' ');
                    let exe = parts.next().unwrap_or_default().to_string();
                    let args = parts.next().map(str::trim).filter(|a| !a.is_empty());
                    let mut k = vec![format!("exe = {}", toml_str(&exe))];
                    if let Some(a) = args {
                        k.push(format!("args = {}", toml_str(a)));
                    }
                    (k, "or the pidfile its start script writes".to_string())
                } else {
                    let stem: String = lit
                        .split(|c: char| {
                            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                        })
                        .max_by_key(|w| w.len())
                        .filter(|w| !w.is_empty())
                        .unwrap_or(&s.name)
                        .to_string();
                    (
                        vec![format!(
                            "pidfile = {}",
                            toml_str(&format!("/var/run/{stem}.pid"))
                        )],
                        format!("check that the start script writes it; if none, exe = \"/full/path/of/{stem}\""),
                    )
                };
                let why = format!(
                    "custos never identifies a process by a regex: it can match the wrong process or miss the right one; suggested from the regex's literal text: {} ({alt})",
                    keys.join(", ")
                );
                let lines =
                    self.not_converted(head, &format!("matching {}", toml_str(&re.text)), &why);
                s.identity.extend(lines);
                s.identity
                    .push("# SUGGESTED: check this before use".to_string());
                s.identity.extend(keys);
                self.rest_of_head(head, &rest[2..], s);
            }
            _ => {
                return Err(self.err(
                    head,
                    "`check process` needs `with pidfile PATH` or `matching REGEX`",
                ));
            }
        }
        Ok(())
    }

    /// What follows the identity on the check line (nothing, usually).
    pub(super) fn rest_of_head(&mut self, head: &Directive, rest: &[&Tok], s: &mut OutService) {
        if !rest.is_empty() {
            let what: Vec<&str> = rest.iter().map(|t| t.text.as_str()).collect();
            let lines = self.not_converted(
                head,
                &what.join(" "),
                "not understood on a `check process` line",
            );
            s.comments.extend(lines);
        }
    }
}

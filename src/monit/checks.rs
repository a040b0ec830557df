//! Monit tests that become a `[[service.check]]`: `if failed … port` (tcp, http) and the
//! memory and cpu limits, with their cycles counted as failures and their action.

use super::convert::{Converter, OutCheck, OutService};
use super::directive::Directive;
use super::lex::{float, num, Tok};
use super::port::{port_target, PortTest};
use super::values::regex_literal;
use super::write::{dur, toml_str};
use crate::limits::{MAX_ARG_LEN, MAX_CHECKS};

impl Converter<'_> {
    /// `for N cycles` / `N times within M cycles` at the end of a condition: failures, and the
    /// tokens before it.
    pub(super) fn cycles_of<'t>(
        &self,
        cond: &'t [&'t Tok],
    ) -> (&'t [&'t Tok], u64, Option<String>) {
        let n = cond.len();
        if n >= 2 && cond[n - 1].kw().starts_with("cycle") {
            if n >= 4 && cond[n - 3].kw() == "times" {
                if let (Some(a), Some(b)) = (num(cond.get(n - 4)), num(cond.get(n - 2))) {
                    return (
                        &cond[..n - 4],
                        a.max(1),
                        Some(format!(
                            "{a} times within {b} cycles: custos counts {a} failures in a row"
                        )),
                    );
                }
            }
            if let Some(a) = num(cond.get(n - 2)) {
                return (&cond[..n - 2], a.max(1), None);
            }
        }
        (cond, 1, None)
    }

    pub(super) fn check_every(&self, s: &OutService) -> u64 {
        self.cycles(s.every).clamp(1, 24 * 3600)
    }

    /// The action of a convertible test: (TOML action line, comments).
    pub(super) fn action(
        &mut self,
        d: &Directive,
        action: &[&Tok],
    ) -> (Option<String>, Vec<String>) {
        let act = action.first().map(|t| t.kw()).unwrap_or_default();
        match act.as_str() {
            "restart" => (None, Vec::new()),
            "alert" => (
                Some("action = \"log\"".to_string()),
                self.not_converted(
                    d,
                    "then alert",
                    "custos sends no alerts; the failure is logged (action = \"log\")",
                ),
            ),
            other => {
                let what = if other == "exec" {
                    let prog = action.get(1).map(|t| t.text.as_str()).unwrap_or("");
                    format!("then exec {}", toml_str(prog))
                } else {
                    format!("then {other}")
                };
                (
                    Some("action = \"log\"".to_string()),
                    self.not_converted(
                        d,
                        &what,
                        "a custos check restarts the service or logs; this one logs (action = \"log\")",
                    ),
                )
            }
        }
    }

    /// True (and said, once for the whole directive) when the service has all the checks
    /// custos takes.
    pub(super) fn checks_full(&mut self, d: &Directive, s: &mut OutService) -> bool {
        if s.checks.len() < MAX_CHECKS {
            return false;
        }
        let c = self.not_converted(d, &d.text(), "custos takes at most 4 checks per service");
        s.comments.extend(c);
        true
    }

    pub(super) fn push_check(&mut self, d: &Directive, s: &mut OutService, mut lines: Vec<String>) {
        if self.checks_full(d, s) {
            return;
        }
        lines.insert(0, format!("# {} ({})", d.text(), self.at(d)));
        s.checks.push(OutCheck { lines });
    }

    /// `if failed [host H] port N [type T] [protocol P …] [timeout N seconds] [for …] then A`.
    pub(super) fn failed(
        &mut self,
        d: &Directive,
        cond: &[&Tok],
        action: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let (cond, failures, within) = self.cycles_of(cond);
        let mut t = self.port_test(d, cond)?;
        let (host, port) = match port_target(cond, &t) {
            Ok(target) => target,
            Err(why) => {
                let c = self.not_converted(d, &d.text(), &why);
                s.comments.extend(c);
                return Ok(());
            }
        };
        if self.checks_full(d, s) {
            return Ok(());
        }
        let mut comments = Vec::new();
        let mut lines = Vec::new();
        let is_http = t.proto.as_deref() == Some("http");
        if is_http {
            lines.push("kind = \"http\"".to_string());
        } else {
            lines.push("kind = \"tcp\"".to_string());
            if let Some(p) = &t.proto {
                if p != "default" && p != "generic" {
                    comments.extend(self.not_converted(
                        d,
                        &format!("protocol {p}"),
                        "custos checks only that the port accepts a connection (kind = \"tcp\")",
                    ));
                }
            }
        }
        lines.push(format!("host = {}", toml_str(&host)));
        lines.push(format!("port = {port}"));
        if is_http {
            self.http_lines(d, &t, &mut lines, &mut comments);
        } else if t.request.is_some() || t.content.is_some() || t.status.is_some() {
            t.unsupported
                .push("request/content/status without protocol http".to_string());
        }
        if !t.unsupported.is_empty() {
            comments.extend(self.not_converted(
                d,
                &t.unsupported.join(" "),
                "no custos check option like it",
            ));
        }
        // Monit's default connection timeout is 5 s, custos's too.
        if let Some(t) = t.timeout {
            if t > 60 {
                lines.push(format!(
                    "timeout = \"1m\"   # Monit: {}; custos's longest is 1m",
                    dur(t)
                ));
            } else if t > 0 {
                lines.push(format!("timeout = \"{}\"", dur(t)));
            }
        }
        self.finish_check(d, s, lines, comments, failures, within, action);
        Ok(())
    }

    /// The keys of an http check after its port: path, status, expect.
    fn http_lines(
        &mut self,
        d: &Directive,
        t: &PortTest,
        lines: &mut Vec<String>,
        comments: &mut Vec<String>,
    ) {
        if let Some(r) = &t.request {
            if r.starts_with('/')
                && !r.bytes().any(|b| b <= b' ' || b == 0x7f)
                && r.len() <= MAX_ARG_LEN
            {
                lines.push(format!("path = {}", toml_str(r)));
            } else {
                comments.extend(self.not_converted(
                    d,
                    &format!("request {}", toml_str(r)),
                    "a custos request path starts with / and has no spaces; the check asks for /",
                ));
            }
        }
        if let Some(st) = t.status {
            if (100..=599).contains(&st) {
                lines.push(format!("status = {st}"));
            }
        }
        let Some(c) = &t.content else {
            return;
        };
        let lit = regex_literal(c);
        let plain = !c.contains(|ch: char| "\\^$.|?*+()[]{}".contains(ch));
        if plain && !c.is_empty() && c.len() <= MAX_ARG_LEN {
            lines.push(format!("expect = {}", toml_str(c)));
        } else if !lit.is_empty() && lit.len() <= MAX_ARG_LEN {
            comments.extend(self.not_converted(
                d,
                &format!("content = {}", toml_str(c)),
                &format!("custos's `expect` is plain text, not a regex; suggested from the regex's literal text: expect = {}", toml_str(&lit)),
            ));
            lines.push(format!(
                "expect = {}   # SUGGESTED: check this",
                toml_str(&lit)
            ));
        } else {
            comments.extend(self.not_converted(
                d,
                &format!("content = {}", toml_str(c)),
                "custos's `expect` is plain text, not a regex, and this one has no literal text",
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_check(
        &mut self,
        d: &Directive,
        s: &mut OutService,
        mut lines: Vec<String>,
        comments: Vec<String>,
        failures: u64,
        within: Option<String>,
        action: &[&Tok],
    ) {
        // Without `set daemon` Monit's cycle is unknown: the check keeps custos's period.
        if self.cycle_given || s.every > 1 {
            lines.push(format!(
                "every = \"{}\"   # Monit's cycle{}",
                dur(self.check_every(s)),
                if s.every > 1 { " x every" } else { "" }
            ));
        }
        if failures > 1 {
            let f = failures.min(1000);
            match within {
                Some(w) => lines.push(format!("failures = {f}   # {w}")),
                None => lines.push(format!("failures = {f}")),
            }
        }
        let (act, mut notes) = self.action(d, action);
        if let Some(a) = act {
            lines.push(a);
        }
        notes.extend(comments);
        // What was not carried over goes with the check, before its keys.
        lines.splice(0..0, notes);
        self.push_check(d, s, lines);
    }

    /// `if [total]mem[ory] [usage] > N (B|KB|MB|GB|%)`, `if [total]cpu [usage] > N%`.
    pub(super) fn resource(
        &mut self,
        d: &Directive,
        cond: &[&Tok],
        action: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let (cond, cycles, _) = self.cycles_of(cond);
        let words: Vec<String> = cond.iter().map(|t| t.kw()).collect();
        let total = words.iter().any(|w| w.starts_with("total"));
        let cpu = words.iter().any(|w| w.ends_with("cpu"));
        let Some((v, unit)) = self.maximum(d, cond, s)? else {
            return Ok(());
        };
        if self.checks_full(d, s) {
            return Ok(());
        }
        let mut comments = Vec::new();
        let (lines, failures) = if cpu {
            let lines = self.cpu_lines(d, v, &unit, cycles)?;
            if total {
                comments.push(format!("# {} ({}): Monit's total cpu counts the children too; custos's cpu check reads the process alone", d.text(), self.at(d)));
            }
            (lines, 1)
        } else {
            let Some(lines) = self.memory_lines(d, v, &unit, s)? else {
                return Ok(());
            };
            if total {
                comments.push(format!("# {} ({}): Monit's total memory counts the children too; custos's memory check reads the process alone", d.text(), self.at(d)));
            }
            (lines, cycles)
        };
        self.finish_check(d, s, lines, comments, failures, None, action);
        Ok(())
    }

    /// The limit of a resource test: its number and unit (lower case), or None (and said) when
    /// the comparison is not a maximum.
    fn maximum(
        &mut self,
        d: &Directive,
        cond: &[&Tok],
        s: &mut OutService,
    ) -> Result<Option<(f64, String)>, String> {
        let Some(op_at) = cond.iter().position(|t| {
            matches!(
                t.kw().as_str(),
                ">" | "gt"
                    | "greater"
                    | "<"
                    | "lt"
                    | "less"
                    | "="
                    | "=="
                    | "!="
                    | "eq"
                    | "ne"
                    | "equal"
            )
        }) else {
            return Err(self.err(d, "expected a comparison (`>`, `<`)"));
        };
        let op = cond[op_at].kw();
        if !matches!(op.as_str(), ">" | "gt" | "greater") {
            let c = self.not_converted(
                d,
                &d.text(),
                "custos's resource checks have a maximum only (`>`)",
            );
            s.comments.extend(c);
            return Ok(None);
        }
        let value = cond.get(op_at + 1);
        let Some(v) = float(value) else {
            return Err(self.err(d, "expected a number after the comparison"));
        };
        let attached = value
            .map(|t| {
                t.text
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                    .to_string()
            })
            .unwrap_or_default();
        let unit = if attached.is_empty() {
            cond.get(op_at + 2).map(|t| t.kw()).unwrap_or_default()
        } else {
            attached.to_ascii_lowercase()
        };
        Ok(Some((v, unit)))
    }

    /// A cpu check's keys: the percentage over the test's cycles.
    fn cpu_lines(
        &self,
        d: &Directive,
        v: f64,
        unit: &str,
        cycles: u64,
    ) -> Result<Vec<String>, String> {
        if unit != "%" {
            return Err(self.err(d, "a cpu limit is a percentage"));
        }
        let over = self.cycles(cycles).clamp(1, 3600);
        Ok(vec![
            "kind = \"cpu\"".to_string(),
            format!("max_percent = {:.1}   # Monit's % is of all cores; custos's 100 = one core: multiply by the board's cores", v.max(0.1)),
            format!("over = \"{}\"", dur(over)),
        ])
    }

    /// A memory check's keys, or None (and said) when the limit is no size custos takes.
    fn memory_lines(
        &mut self,
        d: &Directive,
        v: f64,
        unit: &str,
        s: &mut OutService,
    ) -> Result<Option<Vec<String>>, String> {
        let mul: f64 = match unit {
            "b" | "byte" | "bytes" => 1.0,
            "kb" | "kilobyte" | "kilobytes" | "k" => 1024.0,
            "mb" | "megabyte" | "megabytes" | "m" => 1024.0 * 1024.0,
            "gb" | "gigabyte" | "gigabytes" | "g" => 1024.0 * 1024.0 * 1024.0,
            "%" => {
                let c = self.not_converted(
                    d,
                    &d.text(),
                    "custos's memory check takes a size (max = \"64MiB\"), not a share of the board's memory",
                );
                s.comments.extend(c);
                return Ok(None);
            }
            _ => {
                return Err(self.err(
                    d,
                    format!("`{unit}` is not a memory unit (B, KB, MB, GB, %)"),
                ))
            }
        };
        let kib = ((v * mul) / 1024.0).ceil().max(1.0) as u64;
        // More than 1 TiB is a typo, and past what a size in the config can hold.
        if kib > 1 << 30 {
            let c = self.not_converted(d, &d.text(), "a memory limit over 1 TiB");
            s.comments.extend(c);
            return Ok(None);
        }
        let max = if kib.is_multiple_of(1024) {
            format!("max = \"{}MiB\"", kib / 1024)
        } else {
            format!("max = \"{kib}KiB\"")
        };
        Ok(Some(vec!["kind = \"memory\"".to_string(), max]))
    }
}

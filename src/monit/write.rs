//! What the import writes: TOML values, comment lines made safe, the not-converted report (a
//! comment in the config and a summary line for each directive not carried over) and a
//! service's block.

use std::fmt::Write as _;

use super::convert::{Converter, OutService};
use super::directive::Directive;
use crate::limits::MAX_SERVICES;

pub(super) fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `s` with its control characters (a newline inside a quoted string, a CR) written as
/// escapes: a TOML comment, and a summary line, is one line without control characters.
pub(super) fn one_line(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => o.push('\t'),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// Appends one line of the config; a comment line is made safe with `one_line`.
pub(super) fn push_line(out: &mut String, l: &str) {
    if l.starts_with('#') {
        out.push_str(&one_line(l));
    } else {
        out.push_str(l);
    }
    out.push('\n');
}

/// A whole-number duration the config accepts: "90s", "2m", "1h".
pub(super) fn dur(secs: u64) -> String {
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl Converter<'_> {
    /// Records a directive (or a part of one) not carried over: a summary line and the comment
    /// lines for the config.
    pub(super) fn not_converted(&mut self, d: &Directive, what: &str, why: &str) -> Vec<String> {
        let where_ = self.at(d);
        self.notes.push(one_line(&format!(
            "{where_}: not converted: {what} ({why})"
        )));
        vec![
            format!("# not converted ({where_}): {what}"),
            format!("#   why: {why}"),
        ]
    }

    pub(super) fn emit(&mut self, lines: &[String]) {
        for l in lines {
            push_line(&mut self.body, l);
        }
    }

    pub(super) fn write_service(&mut self, head: &Directive, s: OutService) {
        let mut o: Vec<String> = vec![String::new()];
        o.push(format!("# {} ({})", head.text(), self.at(head)));
        let missing_start = s.start.is_none();
        let over_limit = !missing_start && self.services >= MAX_SERVICES;
        let commented = missing_start || over_limit;
        if missing_start {
            o.extend(self.not_converted(
                head,
                &format!("check process {} without a start program", s.name),
                "custos supervises what it can start: the service below is commented out; give it `start` to use it",
            ));
        } else if over_limit {
            o.extend(self.not_converted(
                head,
                &format!("check process {}", s.name),
                "custos supervises at most 32 services: the service below is commented out",
            ));
        }
        let mut body = Vec::new();
        body.push("[[service]]".to_string());
        body.push(format!("name = {}", toml_str(&s.name)));
        body.extend(s.identity);
        body.extend(s.start_line);
        body.extend(s.stop_line);
        body.extend(s.comments);
        body.extend(s.keys);
        if !s.restart.is_empty() {
            body.push(String::new());
            body.push("[service.restart]".to_string());
            body.extend(s.restart);
        }
        for c in s.checks {
            body.push(String::new());
            body.push("[[service.check]]".to_string());
            body.extend(c.lines);
        }
        for l in body {
            if commented && !l.is_empty() && !l.starts_with('#') {
                o.push(format!("# {l}"));
            } else {
                o.push(l);
            }
        }
        if !commented {
            self.services += 1;
        }
        self.emit(&o);
    }
}

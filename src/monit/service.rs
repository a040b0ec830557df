//! A `check process` body's directives: start and stop programs, `if` tests and the restart
//! limit; what custos has no equivalent for is reported as not converted.

use super::convert::{Converter, OutService};
use super::directive::Directive;
use super::lex::{num, Tok};
use super::values::split_argv;
use super::write::{dur, toml_str};
use crate::limits::{MAX_ARGV, MAX_ARG_LEN};

impl Converter<'_> {
    pub(super) fn directive(&mut self, d: &Directive, s: &mut OutService) -> Result<(), String> {
        let w = d.words();
        if d.toks.first().is_some_and(|t| t.is("if")) {
            return self.test(d, &w, s);
        }
        let Some(first) = w.first() else {
            return Ok(());
        };
        match first.kw().as_str() {
            "every" => {}
            "start" | "stop" => self.program(d, &w, s)?,
            "restart" => {
                let lines = self.not_converted(
                    d,
                    "restart program",
                    "custos restarts a running process with its stop script (or SIGTERM, SIGKILL) and then its start script",
                );
                s.comments.extend(lines);
            }
            "depends" | "depend" => {
                let lines = self.not_converted(
                    d,
                    &d.text(),
                    "custos has no dependencies between services: it starts each one on its own; order them in the init scripts",
                );
                s.comments.extend(lines);
            }
            "group" => {
                let lines = self.not_converted(d, &d.text(), "custos has no service groups");
                s.comments.extend(lines);
            }
            "mode" => {
                let m = w.get(1).map(|t| t.kw()).unwrap_or_default();
                if m == "active" {
                    s.comments.push(format!(
                        "# {} ({}): custos's only mode",
                        d.text(),
                        self.at(d)
                    ));
                } else {
                    let lines = self.not_converted(
                        d,
                        &d.text(),
                        "custos always starts a service it finds not running and acts on its checks; `custos unmonitor NAME` pauses that",
                    );
                    s.comments.extend(lines);
                }
            }
            "alert" | "noalert" => {
                let lines = self.not_converted(
                    d,
                    &d.text(),
                    "custos sends no mail: it logs every event with its cause (`custos events`)",
                );
                s.comments.extend(lines);
            }
            _ => {
                let lines = self.not_converted(d, &d.text(), "not a directive custos knows");
                s.comments.extend(lines);
            }
        }
        Ok(())
    }

    /// `start|stop [program] [=] "CMD" [as uid U [and gid G]] [with timeout N seconds]`.
    pub(super) fn program(
        &mut self,
        d: &Directive,
        w: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let which = w.first().map(|t| t.kw()).unwrap_or_default();
        let mut i = 1;
        while w.get(i).is_some_and(|t| t.is("program") || t.is("=")) {
            i += 1;
        }
        let Some(cmd) = w.get(i).filter(|t| t.quoted || t.text.starts_with('/')) else {
            return Err(self.err(d, format!("`{which} program` needs a command")));
        };
        let argv = self.program_argv(d, &which, cmd)?;
        let (mut out, timeout) = self.program_options(d, w, i + 1)?;
        let key = if which == "start" { "start" } else { "stop" };
        let list: Vec<String> = argv.iter().map(|a| toml_str(a)).collect();
        out.push(format!("{key} = [{}]", list.join(", ")));
        if let Some(t) = timeout {
            if t <= 600 {
                out.push(format!("{key}_timeout = \"{}\"", dur(t)));
            } else {
                out.push(format!(
                    "{key}_timeout = \"10m\"   # Monit: {}; custos's longest is 10m",
                    dur(t)
                ));
            }
        }
        if which == "start" {
            s.start = Some(argv);
            s.start_line = out;
        } else {
            s.stop_line = out;
        }
        Ok(())
    }

    /// The program's argv: an absolute path first (no shell, no PATH), within custos's bounds.
    fn program_argv(&self, d: &Directive, which: &str, cmd: &Tok) -> Result<Vec<String>, String> {
        let argv = split_argv(&cmd.text);
        match argv.first() {
            Some(p) if p.starts_with('/') => {}
            _ => {
                return Err(self.err(
                    d,
                    format!(
                        "{which} program `{}` does not start with an absolute path (custos runs argv without a shell or PATH)",
                        cmd.text
                    ),
                ))
            }
        }
        if argv.len() > MAX_ARGV
            || argv
                .iter()
                .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
        {
            return Err(self.err(
                d,
                format!("{which} program `{}`: more than {MAX_ARGV} words, or a word over {MAX_ARG_LEN} bytes", cmd.text),
            ));
        }
        Ok(argv)
    }

    /// What follows the program from `w[i]` on: `as uid U [and gid G]` (not converted),
    /// `timeout N seconds|cycles`, anything else (not understood). The comment lines and the
    /// timeout in seconds.
    fn program_options(
        &mut self,
        d: &Directive,
        w: &[&Tok],
        mut i: usize,
    ) -> Result<(Vec<String>, Option<u64>), String> {
        let mut out = Vec::new();
        let mut timeout = None;
        let mut extra = Vec::new();
        while let Some(t) = w.get(i) {
            if t.is("as") || t.is("uid") || t.is("gid") {
                // as uid U [and gid G]
                let mut part = vec![t.text.clone()];
                i += 1;
                while let Some(n) = w.get(i) {
                    if n.is("timeout") {
                        break;
                    }
                    part.push(n.text.clone());
                    i += 1;
                }
                let lines = self.not_converted(
                    d,
                    &part.join(" "),
                    "custos runs scripts as root: drop privileges in the script (e.g. start-stop-daemon --chuid)",
                );
                out.extend(lines);
            } else if t.is("timeout") {
                let n = num(w.get(i + 1));
                let unit = w.get(i + 2).map(|t| t.kw()).unwrap_or_default();
                match n {
                    Some(n) if n > 0 => {
                        let secs = if unit.starts_with("cycle") {
                            self.cycles(n)
                        } else {
                            n
                        };
                        timeout = Some(secs);
                    }
                    _ => return Err(self.err(d, "`timeout` needs a number of seconds")),
                }
                i += if unit.starts_with("sec") || unit.starts_with("cycle") {
                    3
                } else {
                    2
                };
            } else {
                extra.push(t.text.clone());
                i += 1;
            }
        }
        if !extra.is_empty() {
            let lines = self.not_converted(d, &extra.join(" "), "not understood after the program");
            out.extend(lines);
        }
        Ok((out, timeout))
    }

    /// Everything after `if`.
    pub(super) fn test(
        &mut self,
        d: &Directive,
        w: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let Some(first) = w.first() else {
            return Err(self.err(d, "`if` needs a test"));
        };
        // The action and what follows it (`else if succeeded …`).
        // `timeout` is the old name of `unmonitor` as an action, and an option when a number
        // follows it (`timeout 15 seconds`).
        let act_at = w.iter().enumerate().position(|(i, t)| {
            matches!(
                t.kw().as_str(),
                "restart" | "alert" | "exec" | "stop" | "start" | "unmonitor" | "else"
            ) || (t.is("timeout") && num(w.get(i + 1)).is_none())
        });
        let (cond, action) = match act_at {
            Some(p) => (&w[..p], &w[p..]),
            None => (w, &w[w.len()..]),
        };
        let act = action.first().map(|t| t.kw()).unwrap_or_default();
        if act.is_empty() {
            return Err(self.err(
                d,
                "a test without an action (`then restart`, `then alert`, …)",
            ));
        }
        if let Some(e) = action.iter().position(|t| t.is("else")) {
            let rest: Vec<&str> = action[e..].iter().map(|t| t.text.as_str()).collect();
            let lines = self.not_converted(
                d,
                &rest.join(" "),
                "custos logs a check that passes again after failures (`passed again`); it runs no action for it",
            );
            s.comments.extend(lines);
        }
        // N restarts within M cycles
        if let (Some(n), Some(kw)) = (num(Some(first)), cond.get(1)) {
            if kw.kw().starts_with("restart") {
                return self.restart_limit(d, n, cond, &act, s);
            }
        }
        let k = first.kw();
        match k.as_str() {
            "failed" => self.failed(d, &cond[1..], action, s),
            "totalmem" | "totalmemory" | "mem" | "memory" | "total" | "totalcpu" | "cpu" => {
                self.resource(d, cond, action, s)
            }
            "does" | "not" => {
                // if does not exist then restart: what custos does for every service.
                s.comments.push(format!(
                    "# {} ({}): custos starts a service it finds not running",
                    d.text(),
                    self.at(d)
                ));
                Ok(())
            }
            _ => {
                let why = match k.as_str() {
                    "children" => "custos has no check on the number of children; an `fds` check bounds descriptors",
                    "uptime" | "threads" | "changed" | "status" | "content" | "timestamp" | "size" => {
                        "no custos check of this kind"
                    }
                    _ => "no custos check of this kind",
                };
                let lines = self.not_converted(d, &d.text(), why);
                s.comments.extend(lines);
                Ok(())
            }
        }
    }

    /// `if N restarts within M cycles then unmonitor|timeout|…`.
    pub(super) fn restart_limit(
        &mut self,
        d: &Directive,
        n: u64,
        cond: &[&Tok],
        act: &str,
        s: &mut OutService,
    ) -> Result<(), String> {
        let m = num(cond.get(2));
        let Some(m) =
            m.filter(|m| *m > 0 && cond.get(3).is_some_and(|t| t.kw().starts_with("cycle")))
        else {
            return Err(self.err(d, "expected `N restarts within M cycles`"));
        };
        if !matches!(act, "unmonitor" | "timeout") {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos's only actions after too many restarts are to give up or to reboot (on_exhausted)",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        let window = self.cycles(m);
        if n == 0 || n > 64 || window > 24 * 3600 {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos takes 1 to 64 restarts within at most 24h",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        if s.restart.iter().any(|l| l.starts_with("max_restarts")) {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos keeps one restart limit per service: the first one above was taken",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        s.restart.push(format!(
            "# {} ({}): {n} restarts within {m} cycle(s) of {}",
            d.text(),
            self.at(d),
            dur(self.cycle)
        ));
        s.restart.push(format!("max_restarts = {n}"));
        s.restart.push(format!("window = \"{}\"", dur(window)));
        s.restart.push(
            "on_exhausted = \"give-up\"   # until a reload or `custos start NAME`; without a limit custos never gives up".to_string(),
        );
        Ok(())
    }
}

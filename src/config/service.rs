//! Validating a `[[service]]`: its name, how its process is identified, its scripts and their
//! timeouts, its restart policy and its checks.

use std::ffi::CString;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::read::{Fields, Label, Raw};
use super::validate::Validator;
use super::*;
use crate::clock::Dur;
use crate::limits::{MAX_ARG_LEN, MAX_CHECKS, MAX_NAME, MAX_RESTART_HISTORY};

impl Validator<'_> {
    pub(super) fn service(&mut self, i: usize, s: &Spanned<Fields>) -> Option<ServiceConfig> {
        let at = Some(s.span());
        let s = s.get_ref();
        let name = self.service_name(i, s, at.clone());
        // Keys are named by the service's name from here on.
        let l = Label::new("service.", format!(" (service `{name}`)"));
        let k = |key: &str| l.key(key);
        let identify = self.identify(s, &l, at.clone());
        let start = match &s.strings("start") {
            Some(a) => self.argv(a, &k("start")),
            None => {
                self.err(at, &k("start"), "missing: the argv that starts the service");
                Argv {
                    args: vec![CString::default()],
                }
            }
        };
        let stop = s.strings("stop").map(|a| self.argv(&a, &k("stop")));
        let start_timeout = self.dur(s, &l, "start_timeout");
        let stop_timeout = self.dur(s, &l, "stop_timeout");
        let leftovers = match &s.str("leftovers") {
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
        let restart = match s.table("restart") {
            Some(r) => self.restart(r.get_ref(), &l),
            None => RestartPolicy::default(),
        };
        let checks = self.checks(s, &name, &l);
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
            vital: s.boolean("vital").is_some_and(|v| *v.get_ref()),
        })
    }

    /// The service's name: given, and 1 to MAX_NAME safe characters.
    fn service_name(&mut self, i: usize, s: &Fields, at: Option<Range<usize>>) -> String {
        let key = format!("service[{i}].name");
        let Some(n) = s.str("name") else {
            self.err(at, &key, "missing: every service needs a name");
            return format!("service[{i}]");
        };
        let v = n.get_ref();
        let ok_chars = v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if v.is_empty() || v.len() > MAX_NAME || !ok_chars {
            self.err(
                Some(n.span()),
                &key,
                format!("`{v}` is not a valid name: use 1 to {MAX_NAME} of A-Z a-z 0-9 _ . -"),
            );
        }
        v.clone()
    }

    /// How the process is identified: a pidfile, or an exe (and its arguments), not both.
    fn identify(&mut self, s: &Fields, l: &Label, at: Option<Range<usize>>) -> Identify {
        let k = |key: &str| l.key(key);
        match (s.str("pidfile"), s.str("exe")) {
            (Some(p), None) => {
                if let Some(a) = s.str("args") {
                    self.err(
                        Some(a.span()),
                        &k("args"),
                        "`args` goes with `exe`, not with `pidfile`",
                    );
                }
                Identify::Pidfile(self.path(&p, &k("pidfile")))
            }
            (None, Some(e)) => self.exe_identity(s, l, &e),
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
                    at,
                    &k("pidfile"),
                    "missing: give `pidfile` (or `exe`) so custos can identify the process",
                );
                Identify::Pidfile(PathBuf::new())
            }
        }
    }

    /// An `exe` identity: a path as /proc/PID/exe names it, that cannot match init.
    fn exe_identity(&mut self, s: &Fields, l: &Label, e: &Spanned<String>) -> Identify {
        let k = |key: &str| l.key(key);
        let args = s.str("args").map(|a| {
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

    /// `[service.restart]`: the policy's defaults, overridden by what is written.
    fn restart(&mut self, r: &Fields, l: &Label) -> RestartPolicy {
        let rl = Label::new("service.restart.", l.suffix.as_str());
        let mut restart = RestartPolicy::default();
        restart.backoff = self.dur_or(r, &rl, "backoff", restart.backoff);
        restart.backoff_max = self.dur_or(r, &rl, "backoff_max", restart.backoff_max);
        restart.stable_after = self.dur_or(r, &rl, "stable_after", restart.stable_after);
        restart.window = self.dur_or(r, &rl, "window", restart.window);
        // No limit unless the config asks for one. A config that writes `window` or
        // `on_exhausted` without `max_restarts` asked for the limit that was the default
        // then, and keeps it.
        if r.span("window").is_some() || r.span("on_exhausted").is_some() {
            restart.max_restarts = Some(IMPLIED_MAX_RESTARTS);
        }
        self.max_restarts(r, &rl, &mut restart);
        if let Some(o) = r.str("on_exhausted") {
            match o.get_ref().as_str() {
                "give-up" => restart.on_exhausted = OnExhausted::GiveUp,
                "reboot" => restart.on_exhausted = OnExhausted::Reboot,
                other => self.err(
                    Some(o.span()),
                    &rl.key("on_exhausted"),
                    format!("`{other}` is not one of: \"give-up\", \"reboot\""),
                ),
            }
        }
        if restart.backoff > restart.backoff_max {
            self.err(
                r.span("backoff"),
                &rl.key("backoff"),
                format!(
                    "{} is longer than backoff_max {}",
                    Dur(restart.backoff),
                    Dur(restart.backoff_max)
                ),
            );
        }
        restart
    }

    /// `max_restarts`: a count within the restart history, or "unlimited" (which makes
    /// `window` and `on_exhausted` pointless).
    fn max_restarts(&mut self, r: &Fields, rl: &Label, restart: &mut RestartPolicy) {
        let Some(m) = r.raw("max_restarts") else {
            return;
        };
        let span = m.span();
        match m.get_ref() {
            Raw::Int(v) => {
                if *v < 1 || *v > MAX_RESTART_HISTORY as i64 {
                    self.err(
                        Some(span),
                        &rl.key("max_restarts"),
                        format!("{v} is out of range 1..={MAX_RESTART_HISTORY} (or \"unlimited\")"),
                    );
                } else {
                    restart.max_restarts = Some(*v as u32);
                }
            }
            Raw::Str(w) if w == "unlimited" => {
                restart.max_restarts = None;
                for key in ["window", "on_exhausted"] {
                    if let Some(at) = r.span(key) {
                        self.err(
                            Some(at),
                            &rl.key(key),
                            "has no effect with max_restarts = \"unlimited\" (never exhausted): remove it, or set max_restarts to a count".to_string(),
                        );
                    }
                }
            }
            Raw::Str(w) => self.err(
                Some(span),
                &rl.key("max_restarts"),
                format!("`{w}` is neither a count 1..={MAX_RESTART_HISTORY} nor \"unlimited\""),
            ),
            _ => {}
        }
    }

    /// The service's checks, at most MAX_CHECKS.
    fn checks(&mut self, s: &Fields, name: &str, l: &Label) -> Vec<CheckConfig> {
        let raw = s.tables("check");
        if raw.len() > MAX_CHECKS {
            self.err(
                raw.get(MAX_CHECKS).map(|c| c.span()),
                &l.key("check"),
                format!("{} checks, over the limit of {MAX_CHECKS}", raw.len()),
            );
        }
        let mut checks = Vec::new();
        for (j, c) in raw.iter().enumerate() {
            if let Some(c) = self.check(c, &format!("service.check[{j}] (service `{name}`)")) {
                checks.push(c);
            }
        }
        checks
    }
}

//! Validating the whole config and its sections other than `[[service]]`: `[supervisor]`,
//! `[watchdog]`, `[boot]` (the boot-loop guard and the boot-health gate), `[metrics]` and
//! `[[hook]]`.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::load::line_of;
use super::read::{Fields, Label};
use super::validate::Validator;
use super::*;
use crate::limits::{MAX_HOOKS, MAX_SERVICES};

impl Validator<'_> {
    /// The checked config, from the document's tables; validation errors come in the order the
    /// sections are checked here.
    pub(super) fn config(&mut self, top: &Fields) -> Config {
        let supervisor = self.supervisor(top.table("supervisor"));
        let services = self.services(top, &supervisor);
        let watchdog = top.table("watchdog").map(|w| self.watchdog(w));
        let warnings = match watchdog {
            None => self.reboot_without_watchdog(top),
            Some(_) => Vec::new(),
        };
        let mut boot = self.boot(top);
        boot.gate = self.gate(top, &services);
        let metrics = top.table("metrics").and_then(|m| self.metrics(m.get_ref()));
        let hooks = self.hooks(top, &services);
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

    fn supervisor(&mut self, s: Option<Spanned<&Fields>>) -> SupervisorConfig {
        let mut supervisor = SupervisorConfig {
            interval: Duration::from_secs(1),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            control_group: None,
            log: LogTarget::Stderr,
        };
        let Some(s) = s else { return supervisor };
        let s = *s.get_ref();
        let l = Label::new("supervisor.", "");
        supervisor.interval = self.dur(s, &l, "interval");
        if let Some(d) = &s.str("state_dir") {
            supervisor.state_dir = self.path(d, "supervisor.state_dir");
        }
        if let Some(p) = &s.str("control_socket") {
            supervisor.control_socket = self.path(p, "supervisor.control_socket");
            if p.get_ref().len() > 107 {
                self.err(
                    Some(p.span()),
                    "supervisor.control_socket",
                    "longer than a UNIX socket path may be (107 bytes)",
                );
            }
        }
        if let Some(g) = &s.str("control_group") {
            match crate::sys::group_id(g.get_ref()) {
                Some(gid) => supervisor.control_group = Some((g.get_ref().clone(), gid)),
                None => self.err(
                    Some(g.span()),
                    "supervisor.control_group",
                    format!("no group `{}` in /etc/group", g.get_ref()),
                ),
            }
        }
        if let Some(l) = &s.str("log") {
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
        supervisor
    }

    /// Every `[[service]]`: within the limit, each valid, names unique; a check's unset
    /// `every` becomes the supervisor's interval (a program check's at least its floor).
    fn services(&mut self, top: &Fields, supervisor: &SupervisorConfig) -> Vec<ServiceConfig> {
        let raw = top.tables("service");
        if raw.len() > MAX_SERVICES {
            let span = raw.get(MAX_SERVICES).map(|s| s.span());
            self.err(
                span,
                "service",
                format!("{} services, over the limit of {MAX_SERVICES}", raw.len()),
            );
        }
        let mut services: Vec<ServiceConfig> = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let svc = self.service(i, s);
            if let Some(svc) = svc {
                if services.iter().any(|o| o.name == svc.name) {
                    self.err(
                        s.get_ref().span("name"),
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
        services
    }

    /// `on_exhausted = "reboot"` with no `[watchdog]`: valid, but likely not meant.
    fn reboot_without_watchdog(&mut self, top: &Fields) -> Vec<ConfigError> {
        let mut warnings = Vec::new();
        for (i, s) in top.tables("service").iter().enumerate() {
            let s = s.get_ref();
            let Some(o) = s
                .table("restart")
                .and_then(|r| r.get_ref().str("on_exhausted"))
            else {
                continue;
            };
            if o.get_ref() == "reboot" {
                warnings.push(ConfigError {
                    line: Some(line_of(self.text, o.span().start)),
                    key: match s.str("name") {
                        Some(n) => format!("service.restart.on_exhausted (service `{}`)", n.get_ref()),
                        None => format!("service[{i}].restart.on_exhausted"),
                    },
                    message: "\"reboot\" with no [watchdog]: custos reboots the board itself at once, and no hardware watchdog resets it if it hangs on the way".to_string(),
                });
            }
        }
        warnings
    }

    fn metrics(&mut self, m: &Fields) -> Option<MetricsConfig> {
        let l = Label::new("metrics.", "");
        let every = self.dur(m, &l, "every");
        let Some(t) = m.str("textfile") else {
            self.err(
                None,
                "metrics.textfile",
                "missing: [metrics] needs textfile",
            );
            return None;
        };
        let textfile = self.path(&t, "metrics.textfile");
        if textfile.file_name().is_none() || t.get_ref().ends_with('/') {
            self.err(
                Some(t.span()),
                "metrics.textfile",
                "names a directory, not a file",
            );
        }
        Some(MetricsConfig { textfile, every })
    }

    /// `[[hook]]` tables: known event names, a program, bounded timeout and flap rule, known
    /// services.
    fn hooks(&mut self, top: &Fields, services: &[ServiceConfig]) -> Vec<HookConfig> {
        let raw = top.tables("hook");
        if raw.len() > MAX_HOOKS {
            self.err(
                raw.get(MAX_HOOKS).map(|h| h.span()),
                "hook",
                format!("{} hooks, over the limit of {MAX_HOOKS}", raw.len()),
            );
        }
        let mut out = Vec::new();
        for h in raw.iter().take(MAX_HOOKS) {
            if let Some(hook) = self.hook(h, services) {
                out.push(hook);
            }
        }
        out
    }

    fn hook(&mut self, h: &Spanned<Fields>, services: &[ServiceConfig]) -> Option<HookConfig> {
        let span = h.span();
        let h = h.get_ref();
        let l = Label::new("hook.", "");
        let on = self.hook_events(h, span.clone());
        // Every problem of the table is reported, a missing run too, before it is left out.
        let run = match &h.strings("run") {
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
        let timeout = self.dur(h, &l, "timeout");
        let mut names = Vec::new();
        if let Some(list) = &h.strings("services") {
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
        let flap = self.flap(h, on, span);
        Some(HookConfig {
            on,
            run: run?,
            timeout,
            services: names,
            flap,
        })
    }

    /// A hook's `on`: the bits of the events it names.
    fn hook_events(&mut self, h: &Fields, span: std::ops::Range<usize>) -> u16 {
        let mut on = 0u16;
        let Some(list) = h.strings("on") else {
            self.err(
                Some(span),
                "hook.on",
                "missing: name the events this hook runs for",
            );
            return on;
        };
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
        on
    }

    /// A hook's flap rule: flap_count and flap_within together, and needed by `flapping`.
    fn flap(
        &mut self,
        h: &Fields,
        on: u16,
        span: std::ops::Range<usize>,
    ) -> Option<(u32, Duration)> {
        let l = Label::new("hook.", "");
        match (h.span("flap_count"), h.span("flap_within")) {
            (None, None) => {
                if on & event_bit("flapping").unwrap_or(0) != 0 {
                    self.err(
                        h.span("on"),
                        "hook.on",
                        "`flapping` needs flap_count and flap_within",
                    );
                }
                None
            }
            (Some(_), Some(_)) => {
                let n = self.count_of(h, &l, "flap_count", 1);
                let w = self.dur_or(h, &l, "flap_within", Duration::from_secs(60));
                Some((n, w))
            }
            _ => {
                self.err(
                    Some(span),
                    "hook.flap_count",
                    "flap_count and flap_within go together",
                );
                None
            }
        }
    }

    fn watchdog(&mut self, w: Spanned<&Fields>) -> WatchdogConfig {
        let at = Some(w.span());
        let w = *w.get_ref();
        let l = Label::new("watchdog.", "");
        let device = match &w.str("device") {
            Some(d) => self.path(d, "watchdog.device"),
            None => PathBuf::from("/dev/watchdog"),
        };
        let sec = Duration::from_secs(1);
        // Bounded by MAX_WATCHDOG_TIMEOUT below, with its own message.
        let timeout = self.duration(
            &w.str("timeout"),
            "watchdog.timeout",
            Duration::from_secs(15),
            (sec, Duration::MAX),
        );
        if let Some(t) = &w.str("timeout") {
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
        let pet_every = self.dur_or(w, &l, "pet_every", timeout / 3);
        if pet_every >= timeout {
            let span = w.span("pet_every").or(at);
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
        let _ = self.dur_or(w, &l, "reset_window", Duration::from_secs(3600));
        WatchdogConfig {
            device,
            timeout,
            pet_every,
            magic_close: w.boolean("magic_close").is_some_and(|m| *m.get_ref()),
        }
    }
}

//! What `custos status` and `events` show: service states in words, text and JSON.

use super::gate::Gate;
use super::svc::Svc;
use super::Supervisor;
use crate::clock::{Dur, Mono};
use crate::core::Phase;
use crate::record;
use crate::watchdog::BootStatus;
use std::fmt::Write as _;

/// One recorded event as a JSON object.
pub(super) fn entry_json(e: &record::Entry) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"time\":");
    crate::text::json_str(&mut s, &record::Utc(e.time).to_string());
    s.push_str(",\"boot\":");
    crate::text::json_str(&mut s, &e.boot);
    s.push_str(",\"service\":");
    crate::text::json_str(&mut s, &e.service);
    s.push_str(",\"kind\":");
    crate::text::json_str(&mut s, e.kind.as_str());
    s.push_str(",\"text\":");
    crate::text::json_str(&mut s, &e.text);
    s.push('}');
    s
}

/// A service's state in one word for `custos status` and `why`: its phase, or "crash-looping"
/// while failures in a row keep it at backoff_max.
pub(super) fn state_word(s: &Svc) -> &'static str {
    if crash_looping(s) {
        "crash-looping"
    } else {
        phase_word(&s.st.phase)
    }
}

/// Crash-looping and still being tried (not given up, stopped or unmonitored).
pub(super) fn crash_looping(s: &Svc) -> bool {
    matches!(
        s.st.phase,
        Phase::Waiting { .. } | Phase::Starting { .. } | Phase::Running { .. }
    ) && s.st.crash_looping(&s.policy.restart)
}

/// What `status` and `why` add for a crash-looping service: how long, and how it ends.
pub(super) fn crash_loop_words(s: &Svc) -> String {
    let r = &s.policy.restart;
    let end = match r.max_restarts {
        None => "never gives up".to_string(),
        Some(n) => format!("gives up after {n} restarts within {}", Dur(r.window)),
    };
    format!(
        "{} failures in a row, none ran {}; retried every {}; {end}",
        s.st.fails,
        Dur(r.stable_after),
        Dur(r.backoff_max)
    )
}

/// The `"schema"` of `status --json` (schema/status.schema.json): the number goes up when a
/// field changes meaning or goes away, not when one is added.
pub(super) const STATUS_SCHEMA: &str = "custos.status/1";

/// The `"schema"` of `events --json` and `why --json` (schema/events.schema.json).
pub(super) const EVENTS_SCHEMA: &str = "custos.events/1";

/// Every word `state_word` says, for the metrics.
pub(super) const STATE_WORDS: [&str; 11] = [
    "unknown",
    "running",
    "waiting",
    "starting",
    "stopping",
    "clearing",
    "given-up",
    "ambiguous",
    "held",
    "unmonitored",
    "crash-looping",
];

/// A phase in one word, for `custos status`.
pub(super) fn phase_word(p: &Phase) -> &'static str {
    match p {
        Phase::Unknown => "unknown",
        Phase::Running { .. } => "running",
        Phase::Waiting { .. } => "waiting",
        Phase::Starting { .. } => "starting",
        Phase::Stopping { .. } => "stopping",
        Phase::Clearing { .. } => "clearing",
        Phase::GivenUp => "given-up",
        Phase::Ambiguous(_) => "ambiguous",
        Phase::Held { .. } => "held",
        Phase::Unmonitored => "unmonitored",
    }
}

impl Supervisor {
    pub(super) fn status_text(&self, now: Mono) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        for s in &self.svcs {
            let _ = write!(t, "{:<20} {:<11}", s.cfg.name, state_word(s));
            if let Some(pin) = s.st.pin() {
                let _ = write!(
                    t,
                    " pid {} up {}",
                    pin.pid,
                    Dur(now.saturating_sub(pin.started))
                );
            }
            if let Phase::Waiting { until, why } = s.st.phase {
                let _ = write!(
                    t,
                    " next start in {} ({why})",
                    Dur(until.saturating_sub(now))
                );
            }
            let _ = write!(t, " restarts {}", s.st.total_restarts);
            if let Some(c) = s.st.last_death {
                let _ = write!(t, " last death: {c}");
            }
            if let Phase::Held { pin, doubt } = s.st.phase {
                let _ = write!(
                    t,
                    "\n    held: pid {} cannot be verified: {doubt}; `custos start {name}` if it is not the service, `custos adopt {name}` if it is",
                    pin.pid,
                    name = s.cfg.name
                );
            }
            t.push('\n');
            if crash_looping(s) {
                let _ = writeln!(t, "    crash-looping: {}", crash_loop_words(s));
            }
            if let Some(problem) = s.pidfile_problem() {
                let _ = writeln!(t, "    {problem}");
            }
            for (c, cfg) in s.checks.iter().zip(s.cfg.checks.iter()) {
                let state = if c.tracker.failures > 0 {
                    format!("failing ({} in a row)", c.tracker.failures)
                } else if c.tracker.passed {
                    "passing".to_string()
                } else {
                    "not passed yet".to_string()
                };
                let _ = writeln!(t, "    check {cfg}: {state}");
            }
        }
        match (&self.watchdog, &self.watchdog_cfg) {
            (Some(wd), Some(cfg)) => {
                let _ = writeln!(
                    t,
                    "watchdog {}: timeout {}, petted every {}, {} keepalives, boot status: {}",
                    wd.device.display(),
                    Dur(wd.timeout),
                    Dur(cfg.pet_every),
                    wd.pets,
                    BootStatus(wd.boot_status)
                );
            }
            (None, Some(cfg)) => {
                let _ = writeln!(
                    t,
                    "watchdog {}: NOT open (see the log)",
                    cfg.device.display()
                );
            }
            _ => t.push_str("watchdog: none configured\n"),
        }
        t.push_str(&self.guard_text());
        t.push_str(&self.gate_text(now));
        t.trim_end().to_string()
    }

    pub(super) fn status_json(&self, now: Mono) -> String {
        let mut s = String::from("{\"ok\":true,\"services\":[");
        for (n, v) in self.svcs.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            service_json(&mut s, v, now);
        }
        s.push_str("],\"watchdog\":");
        self.watchdog_json(&mut s);
        let _ = write!(
            s,
            ",\"degraded\":{},\"boot\":{{\"bad_boots\":{},\"max_resets\":{},\"clear_after\":{},\"good\":{}",
            self.degraded,
            self.guard.map_or(0, |v| v.bad),
            self.boot_cfg.max_resets,
            self.boot_cfg.clear_after,
            self.boots.current().is_some_and(|b| b.good)
        );
        s.push_str(",\"boot_id\":");
        crate::text::json_str(&mut s, self.record.boot_id());
        self.gate_json(&mut s);
        s.push_str("},\"schema\":\"");
        s.push_str(STATUS_SCHEMA);
        s.push_str("\"}\n");
        s
    }

    /// The watchdog in `status --json`: `null` when none is open.
    fn watchdog_json(&self, s: &mut String) {
        match (&self.watchdog, &self.watchdog_cfg) {
            (Some(wd), Some(_)) => {
                s.push_str("{\"device\":");
                crate::text::json_str(s, &wd.device.display().to_string());
                let _ = write!(
                    s,
                    ",\"timeout_s\":{},\"keepalives\":{},\"boot_status\":",
                    wd.timeout.as_secs(),
                    wd.pets
                );
                crate::text::json_str(s, &BootStatus(wd.boot_status).to_string());
                s.push('}');
            }
            _ => s.push_str("null"),
        }
    }

    /// The boot-health gate in `status --json`.
    fn gate_json(&self, s: &mut String) {
        s.push_str(",\"gate\":");
        match &self.gate {
            Gate::Off => s.push_str("null"),
            Gate::Pending { .. } => s.push_str("{\"verdict\":\"pending\"}"),
            Gate::Running { verdict, pid, .. } => {
                let _ = write!(
                    s,
                    "{{\"verdict\":\"{}\",\"running_pid\":{pid}}}",
                    verdict.as_str()
                );
            }
            Gate::Done { verdict, outcome } => {
                let _ = write!(s, "{{\"verdict\":\"{}\",\"outcome\":", verdict.as_str());
                crate::text::json_str(s, outcome);
                s.push('}');
            }
        }
    }
}

/// One service in `status --json`.
fn service_json(s: &mut String, v: &Svc, now: Mono) {
    s.push_str("{\"name\":");
    crate::text::json_str(s, &v.cfg.name);
    s.push_str(",\"state\":");
    crate::text::json_str(s, state_word(v));
    s.push_str(",\"phase\":");
    crate::text::json_str(s, phase_word(&v.st.phase));
    let _ = write!(
        s,
        ",\"crash_looping\":{},\"failures_in_a_row\":{}",
        crash_looping(v),
        v.st.fails
    );
    match v.st.pin() {
        Some(pin) => {
            let _ = write!(
                s,
                ",\"pid\":{},\"uptime_ms\":{}",
                pin.pid,
                now.saturating_sub(pin.started).as_millis()
            );
        }
        None => s.push_str(",\"pid\":null,\"uptime_ms\":null"),
    }
    let _ = write!(s, ",\"restarts\":{}", v.st.total_restarts);
    if let Phase::Held { pin, doubt } = v.st.phase {
        let _ = write!(s, ",\"held_pid\":{},\"held_why\":", pin.pid);
        crate::text::json_str(s, &doubt.to_string());
    }
    match v.st.phase {
        Phase::Waiting { until, .. } => {
            let _ = write!(
                s,
                ",\"next_start_ms\":{}",
                until.saturating_sub(now).as_millis()
            );
        }
        _ => s.push_str(",\"next_start_ms\":null"),
    }
    s.push_str(",\"problem\":");
    match v.pidfile_problem() {
        Some(p) => crate::text::json_str(s, &p),
        None => s.push_str("null"),
    }
    s.push_str(",\"last_death\":");
    match v.st.last_death {
        Some(c) => crate::text::json_str(s, &c.to_string()),
        None => s.push_str("null"),
    }
    s.push_str(",\"checks\":[");
    for (m, (c, cfg)) in v.checks.iter().zip(v.cfg.checks.iter()).enumerate() {
        if m > 0 {
            s.push(',');
        }
        s.push_str("{\"check\":");
        crate::text::json_str(s, &cfg.to_string());
        let _ = write!(
            s,
            ",\"failures\":{},\"passed\":{}}}",
            c.tracker.failures, c.tracker.passed
        );
    }
    s.push_str("]}");
}

//! The boot: how the previous boot ended, the boot-loop guard, and the boot-health gate
//! (`[boot] healthy_after`: one verdict per boot on the vital services, and its program).

use std::io;
use std::time::Duration;

use super::Supervisor;
use crate::boot::{Begin, End, GateVerdict};
use crate::clock::{Dur, Mono};
use crate::config;
use crate::core::{Cause, Phase};
use crate::limits::MAX_SERVICES;
use crate::record::Kind;
use crate::scripts;

/// The boot-health gate (`[boot] healthy_after`): one verdict per boot on the vital services.
pub(super) enum Gate {
    /// No gate configured.
    Off,
    /// No verdict yet. `since`: every vital service has been healthy since then, with these
    /// pinned PIDs (a new PID is an interruption).
    Pending {
        since: Option<(Mono, heapless::Vec<i32, MAX_SERVICES>)>,
    },
    /// The verdict's program runs (its own process group) and is killed at `kill_at`.
    Running {
        verdict: GateVerdict,
        pid: i32,
        kill_at: Mono,
        timed_out: bool,
    },
    /// Decided in this boot; what came of it, for `status`.
    Done {
        verdict: GateVerdict,
        outcome: String,
    },
}

impl Supervisor {
    /// Settles how the previous boot ended, adds this one to the boots in state_dir, and asks
    /// the boot-loop guard. With or without a watchdog: the guard counts boots.
    pub(super) fn begin_boot(&mut self) {
        let cardreset = self
            .watchdog
            .as_ref()
            .is_some_and(|wd| wd.boot_status & crate::watchdog::WDIOF_CARDRESET != 0);
        let id = self.record.boot_id().to_string();
        let shown = if id.is_empty() {
            "(no boot id)"
        } else {
            id.as_str()
        };
        match self.boots.begin(&id, crate::clock::wall_now(), cardreset) {
            Begin::Again => info!("boot: custos restarted within this boot ({shown})"),
            Begin::New(None) => info!("boot: this is boot {shown}; no earlier boot is known"),
            Begin::New(Some(prev)) => {
                let line = format!(
                    "boot: this is boot {shown}; the previous boot ({}) {}{}",
                    prev.id,
                    prev.end,
                    if prev.good && prev.end != End::Orderly {
                        ", after it had counted as good"
                    } else {
                        ""
                    }
                );
                if prev.bad() {
                    warn!("{line}");
                } else {
                    info!("{line}");
                }
            }
        }
        if self.boots.current().is_some_and(|b| b.good) {
            // Found good by an earlier custos in this boot.
            self.good_at = None;
        }
        if let (Some(v), Gate::Pending { .. }) =
            (self.boots.current().and_then(|b| b.gate), &self.gate)
        {
            info!(
                "boot health: {} already in this boot (an earlier custos reached the verdict): its program is not run again",
                v.as_str()
            );
            self.gate = Gate::Done {
                verdict: v,
                outcome: "reached by an earlier custos in this boot".to_string(),
            };
        }
        let v = self.boots.verdict(&self.boot_cfg);
        self.guard = Some(v);
        let cfg = &self.boot_cfg;
        if v.tripped {
            self.degraded = true;
            self.boots.set_degraded();
            error!(
                "boot-loop guard: {} recent boot(s) ended badly (a reboot custos requested, or a watchdog reset or an unexplained end within good_after {}), more than max_resets = {}: DEGRADED MODE: on_exhausted = \"reboot\" will not reboot this boot; services are still supervised; clears after {} good boot(s) in a row",
                v.bad,
                Dur(cfg.good_after),
                cfg.max_resets,
                cfg.clear_after
            );
        } else {
            info!(
                "boot-loop guard: clear: {} recent boot(s) ended badly (trips above max_resets = {})",
                v.bad, cfg.max_resets
            );
        }
        self.flush_boots(self.now());
    }

    pub(super) fn flush_boots(&mut self, now: Mono) {
        if let Some(w) = self.boots.flush(now) {
            warn!("{w}");
        }
    }

    /// The boot-health gate in one line, for `status`.
    pub(super) fn gate_text(&self, now: Mono) -> String {
        let Some(cfg) = &self.boot_cfg.gate else {
            return String::new();
        };
        match &self.gate {
            Gate::Off => String::new(),
            Gate::Pending { since } => format!(
                "boot health: pending: vital services {} for {} of healthy_after {}; unhealthy if not reached by {} after custos started ({} left)\n",
                if since.is_some() { "healthy" } else { "not all healthy" },
                Dur(since.as_ref().map_or(Duration::ZERO, |(t, _)| now.saturating_sub(*t))),
                Dur(cfg.healthy_after),
                Dur(cfg.deadline),
                Dur((self.started + cfg.deadline).saturating_sub(now))
            ),
            Gate::Running { verdict, pid, .. } => format!(
                "boot health: {}: its program runs (pid {pid})\n",
                verdict.as_str()
            ),
            Gate::Done { verdict, outcome } => {
                format!("boot health: {}: {outcome}\n", verdict.as_str())
            }
        }
    }

    /// When the gate next needs the loop: the end of healthy_after, the deadline, the
    /// program's timeout; a running program's output is drained every pass anyway.
    pub(super) fn gate_due(&self) -> Option<Mono> {
        let cfg = self.boot_cfg.gate.as_ref()?;
        match &self.gate {
            Gate::Pending { since } => {
                let d = self.started + cfg.deadline;
                Some(
                    since
                        .as_ref()
                        .map_or(d, |(t, _)| d.min(*t + cfg.healthy_after)),
                )
            }
            Gate::Running {
                kill_at, timed_out, ..
            } => (!timed_out).then_some(*kill_at),
            _ => None,
        }
    }

    /// The vital services' pinned PIDs if every one is running and none of its checks is
    /// failing (each has passed since the process was pinned).
    pub(super) fn vital_healthy(&self) -> Option<heapless::Vec<i32, MAX_SERVICES>> {
        let mut pins = heapless::Vec::new();
        for s in self.svcs.iter().filter(|s| s.cfg.vital) {
            let Phase::Running { pin } = &s.st.phase else {
                return None;
            };
            if s.checks
                .iter()
                .any(|c| c.tracker.failures > 0 || !c.tracker.passed)
            {
                return None;
            }
            let _ = pins.push(pin.pid);
        }
        Some(pins)
    }

    /// One pass of the gate: judge, run the verdict's program, bound it. Never waits.
    pub(super) fn gate_pass(&mut self, now: Mono) {
        let Some((healthy_after, deadline, timeout)) = self
            .boot_cfg
            .gate
            .as_ref()
            .map(|g| (g.healthy_after, g.deadline, g.timeout))
        else {
            return;
        };
        if let Some(o) = &mut self.gate_out {
            o.drain(now, |line| info!("boot health: | {line}"));
        }
        match &mut self.gate {
            Gate::Pending { .. } => {
                let healthy = self.vital_healthy();
                let Gate::Pending { since } = &mut self.gate else {
                    return;
                };
                let verdict = match (healthy, since.as_ref()) {
                    (None, _) => {
                        *since = None;
                        None
                    }
                    (Some(p), Some((t, q))) if p == *q => {
                        (now.saturating_sub(*t) >= healthy_after).then_some(GateVerdict::Healthy)
                    }
                    (Some(p), _) => {
                        *since = Some((now, p));
                        healthy_after.is_zero().then_some(GateVerdict::Healthy)
                    }
                };
                let verdict = verdict
                    .or_else(|| (now >= self.started + deadline).then_some(GateVerdict::Unhealthy));
                if let Some(v) = verdict {
                    // Once per run of custos: the argv are cloned here only.
                    if let Some(cfg) = self.boot_cfg.gate.clone() {
                        self.gate_verdict(v, &cfg, now);
                    }
                }
            }
            Gate::Running {
                pid,
                kill_at,
                timed_out,
                ..
            } => {
                if !*timed_out && now >= *kill_at {
                    *timed_out = true;
                    warn!(
                        "boot health: its program (pid {pid}) still runs after timeout {}: killing its process group",
                        Dur(timeout)
                    );
                    if let Err(e) = scripts::kill_group(*pid) {
                        warn!("boot health: cannot kill process group {pid}: {e}");
                    }
                }
            }
            Gate::Off | Gate::Done { .. } => {}
        }
    }

    /// The verdict: kept in the boots file first (a custos started again in this boot does
    /// not run a program twice), logged, recorded; then its program starts.
    pub(super) fn gate_verdict(&mut self, v: GateVerdict, cfg: &config::GateConfig, now: Mono) {
        self.boots.set_gate(v);
        self.flush_boots(now);
        let vital: Vec<&str> = self
            .svcs
            .iter()
            .filter(|s| s.cfg.vital)
            .map(|s| s.cfg.name.as_str())
            .collect();
        let (why, argv, key) = match v {
            GateVerdict::Healthy => (
                format!(
                    "every vital service ({}) ran and passed its checks for {} without a break",
                    vital.join(", "),
                    Dur(cfg.healthy_after)
                ),
                cfg.on_healthy.as_ref(),
                "on_healthy",
            ),
            GateVerdict::Unhealthy => (
                format!(
                    "the vital services ({}) did not run healthy for {} within the deadline {}",
                    vital.join(", "),
                    Dur(cfg.healthy_after),
                    Dur(cfg.deadline)
                ),
                cfg.on_unhealthy.as_ref(),
                "on_unhealthy",
            ),
        };
        let line = format!("boot health: {}: {why}", v.as_str());
        let event = match v {
            GateVerdict::Healthy => "boot-healthy",
            GateVerdict::Unhealthy => "boot-unhealthy",
        };
        self.hooks.raise(event, None, &why, None, now);
        match v {
            GateVerdict::Healthy => info!("{line}"),
            GateVerdict::Unhealthy => error!("{line}"),
        }
        let started = match argv {
            None => Err(format!("no {key} program is configured")),
            Some(argv) => self
                .gate_out
                .as_ref()
                .ok_or_else(|| io::Error::other("no output pipe"))
                .and_then(|out| scripts::spawn(argv, "boot-health", out))
                .map_err(|e| format!("{key} `{argv}` cannot be started: {e}")),
        };
        let text = match started {
            Ok(pid) => {
                info!(
                    "boot health: running {key} (pid {pid}): `{}`",
                    argv.map_or(String::new(), |a| a.to_string())
                );
                self.gate = Gate::Running {
                    verdict: v,
                    pid,
                    kill_at: now + cfg.timeout,
                    timed_out: false,
                };
                format!("{}; {key} started (pid {pid})", v.as_str())
            }
            Err(e) => {
                warn!("boot health: {e}");
                self.gate = Gate::Done {
                    verdict: v,
                    outcome: e.clone(),
                };
                format!("{}; {e}", v.as_str())
            }
        };
        self.note(Kind::BootHealth, "", &text);
    }

    /// The verdict's program ended (reaped): logged with its status, recorded, shown.
    pub(super) fn gate_exited(&mut self, cause: Cause, now: Mono) {
        let Gate::Running {
            verdict,
            pid,
            timed_out,
            ..
        } = std::mem::replace(&mut self.gate, Gate::Off)
        else {
            return;
        };
        if let Some(o) = &mut self.gate_out {
            o.drain(now, |line| info!("boot health: | {line}"));
        }
        let key = match verdict {
            GateVerdict::Healthy => "on_healthy",
            GateVerdict::Unhealthy => "on_unhealthy",
        };
        let outcome = if timed_out {
            format!("{key} (pid {pid}) was killed after its timeout: {cause}")
        } else {
            format!("{key} (pid {pid}) {cause}")
        };
        if cause == Cause::Exited(0) && !timed_out {
            info!("boot health: {outcome}");
        } else {
            warn!("boot health: {outcome}");
        }
        self.note(Kind::BootHealth, "", &outcome);
        self.gate = Gate::Done { verdict, outcome };
    }

    /// The boot-loop guard in one line (`status`; `why` too when it is on).
    pub(super) fn guard_text(&self) -> String {
        let bad = self.guard.map_or(0, |v| v.bad);
        let cfg = &self.boot_cfg;
        if self.degraded {
            format!(
                "DEGRADED: the boot-loop guard is on: {bad} recent boot(s) ended badly, more than max_resets = {}: no reboot escalation this boot; clears after {} good boot(s) in a row\n",
                cfg.max_resets, cfg.clear_after
            )
        } else {
            format!(
                "boot-loop guard: clear: {bad} recent boot(s) ended badly (trips above max_resets = {})\n",
                cfg.max_resets
            )
        }
    }
}

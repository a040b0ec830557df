//! Health checks of running services: starting those due, timing out those in flight, and
//! acting on a result once a check has failed often enough.

use super::Supervisor;
use crate::checks::{Failure, InFlight, Verdict};
use crate::clock::Mono;
use crate::config::CheckAction;
use crate::core::{Event, Phase, RestartWhy};
use crate::procs;
use crate::scripts;

impl Supervisor {
    /// Times out checks in flight and starts those that are due, for a running service.
    pub(super) fn run_checks(&mut self, i: usize, now: Mono) {
        for j in 0..self.svcs[i].checks.len() {
            let s = &mut self.svcs[i];
            let Some(pin) = s.st.pin() else { return };
            if !matches!(s.st.phase, Phase::Running { .. }) {
                return;
            }
            let Some(cfg) = s.cfg.checks.get(j) else {
                return;
            };
            let c = &mut s.checks[j];
            let mut killed = None;
            let result = match c.inflight {
                InFlight::Idle if now >= c.next_due => {
                    let out = &s.out;
                    let name = s.cfg.name.as_str();
                    c.begin(cfg, pin.pid, now, |argv| scripts::spawn(argv, name, out))
                }
                InFlight::Net(ref p) if now >= p.deadline => {
                    c.inflight = InFlight::Idle;
                    Some(Err(Failure::Timeout(cfg.timeout)))
                }
                InFlight::Program { pid, deadline } if now >= deadline => {
                    c.inflight = InFlight::Idle;
                    let _ = scripts::kill_group(pid);
                    killed = Some(pid);
                    Some(Err(Failure::Timeout(cfg.timeout)))
                }
                _ => None,
            };
            if let Some(pid) = killed {
                s.forget_killed(pid);
            }
            if let Some(r) = result {
                self.finish_check(i, j, r, now);
            }
        }
    }

    /// A check finished: count it, log it, and act when it has failed often enough.
    pub(super) fn finish_check(&mut self, i: usize, j: usize, r: Result<(), Failure>, now: Mono) {
        let s = &mut self.svcs[i];
        let Some(cfg) = s.cfg.checks.get(j) else {
            return;
        };
        let Some(c) = s.checks.get_mut(j) else { return };
        c.inflight = InFlight::Idle;
        if s.st.pin().is_none() {
            return; // the process went away meanwhile; a result about it is moot
        }
        let name = s.cfg.name.as_str();
        if r.is_err() {
            c.failed_total = c.failed_total.saturating_add(1);
        }
        let verdict = c.tracker.result(cfg, r, now);
        match verdict {
            Verdict::Quiet => {}
            Verdict::Recovered { after } => {
                info!("{name}: check {cfg} passed again after {after} failure(s)")
            }
            Verdict::InGrace { failure } => info!(
                "{name}: check {cfg} failed within the grace after a start (not counted yet): {failure}"
            ),
            Verdict::Counted { n, of, failure } => {
                warn!("{name}: check {cfg} failed ({n}/{of}): {failure}")
            }
            Verdict::Act { n, failure } => {
                warn!("{name}: check {cfg} failed ({n}/{}): {failure}", cfg.failures);
                if cfg.action == CheckAction::Log {
                    info!("{name}: check action is \"log\": nothing else done");
                    return;
                }
                let Some(pin) = s.st.pin() else { return };
                if let Some(tracer) = procs::tracer_pid(pin.pid).filter(|&t| t != 0) {
                    if !s.traced_said {
                        s.traced_said = true;
                        warn!(
                            "{name}: pid {} is being traced by pid {tracer} (a debugger is attached): \
                             checks will not restart or signal it while it is traced",
                            pin.pid
                        );
                    }
                    return;
                }
                s.traced_said = false;
                let why = RestartWhy::CheckFailed {
                    check: j as u8,
                    failures: n,
                };
                self.feed(i, Event::RestartRequested(why), now);
            }
        }
    }
}

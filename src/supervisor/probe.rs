//! Looking at a service's process: the pinned process by PID and start time, or its pidfile or
//! executable when nothing is pinned; and a start script an earlier custos left running.

use super::Supervisor;
use crate::checks::InFlight;
use crate::clock::{Dur, Mono};
use crate::config::Identify;
use crate::core::{Absent, Event, Observation};
use crate::limits::{MAX_CHECKS, MAX_SERVICES};
use crate::procs::{self, PinState};
use crate::sys::process;

impl Supervisor {
    /// Checks a pinned process, or looks for the service's process, and tells the core.
    pub(super) fn probe(&mut self, i: usize, now: Mono) {
        let s = &self.svcs[i];
        if let Some(pin) = s.st.pin() {
            match procs::check_pin(pin) {
                PinState::Alive => {}
                PinState::Unknown => debug!(
                    "{}: /proc/{} unreadable for now; pin kept",
                    s.cfg.name, pin.pid
                ),
                PinState::Zombie => self.pin_exited(i, pin, now),
                PinState::Gone => self.feed(
                    i,
                    Event::Observed(Observation::Absent(Absent::PinGone)),
                    now,
                ),
            }
        } else if s.st.wants_probe() {
            let obs = match &s.cfg.identify {
                Identify::Pidfile(p) => {
                    let taken = self.taken(i);
                    let ctx = procs::Context {
                        subreaper: self.facilities.subreaper,
                        trusted_since: self.trusted_since,
                        ambiguous_before: self.ambiguous_before,
                        taken: &taken,
                    };
                    let (obs, stamp) = procs::probe_pidfile(p, &s.known, &ctx, now);
                    self.svcs[i].last_read = stamp;
                    obs
                }
                Identify::Exe { exe, args } => {
                    procs::probe_exe(exe, args.as_deref(), &self.taken(i))
                }
            };
            self.svcs[i].watch_pidfile(&obs);
            if self.inherited_start_runs(i, &obs, now) {
                return;
            }
            self.feed(i, Event::Observed(obs), now);
        }
    }

    /// Whether service `i` must wait for a start script an earlier custos ran: while it runs,
    /// "not running" means "being started", and a start now would make a second copy. It ends
    /// when the script exits (the next pass looks for what it started) or when it outlives
    /// start_timeout since its spawn: its process group is then killed, as custos kills its own
    /// hung start scripts (the script is verified by PID and start time, and leads its group).
    pub(super) fn inherited_start_runs(&mut self, i: usize, obs: &Observation, now: Mono) -> bool {
        let s = &mut self.svcs[i];
        let Some(st) = s.inherited_start else {
            return false;
        };
        let name = s.cfg.name.as_str();
        if !matches!(obs, Observation::Absent(_)) {
            // Something is there: judged as usual.
            s.inherited_start = None;
            return false;
        }
        match procs::check_pin(procs::pin(st.pid, st.start_ticks)) {
            PinState::Alive | PinState::Unknown => {
                if now < st.spawned_at.saturating_add(s.cfg.start_timeout) {
                    return true;
                }
                // (Never init or custos: refused when the pins file was read, and the start
                // time checked below keeps it that same process.)
                let leads = process::getpgid(st.pid).ok() == Some(st.pid);
                if leads && procs::check_pin(procs::pin(st.pid, st.start_ticks)) == PinState::Alive
                {
                    warn!(
                        "{name}: killing the process group of the start script an earlier custos ran (pid {}): still running after {}",
                        st.pid,
                        Dur(s.cfg.start_timeout)
                    );
                    // Not custos's child (the earlier custos was its parent), so not
                    // scripts::kill_group, which signals only a group whose leader custos has
                    // not reaped and sends nothing otherwise. The leader was verified alive by
                    // PID and start time just now, and a live leader's PID cannot name another
                    // group.
                    if let Err(e) = process::kill_group(st.pid, libc::SIGKILL) {
                        warn!("{name}: kill of process group {} failed: {e}", st.pid);
                    }
                }
            }
            PinState::Zombie | PinState::Gone => {
                info!(
                    "{name}: the start script an earlier custos ran (pid {}) has ended: looking for what it started",
                    st.pid
                );
            }
        }
        s.inherited_start = None;
        self.save_pins();
        // This pass's look may predate the script's end: look again next pass.
        true
    }

    /// PIDs custos runs for something other than service `i`: the other services' pins, and
    /// every script and check program.
    pub(super) fn taken(
        &self,
        i: usize,
    ) -> heapless::Vec<i32, { MAX_SERVICES * (3 + MAX_CHECKS + 8) + 1 }> {
        let mut v = heapless::Vec::new();
        if let Some(k) = self.keeper.pid() {
            let _ = v.push(k);
        }
        for (k, s) in self.svcs.iter().enumerate() {
            if k != i {
                if let Some(p) = s.st.pin() {
                    let _ = v.push(p.pid);
                }
            }
            if let Some((p, _)) = s.script {
                let _ = v.push(p);
            }
            for p in &s.killed {
                let _ = v.push(*p);
            }
            for c in &s.checks {
                if let InFlight::Program { pid, .. } = c.inflight {
                    let _ = v.push(pid);
                }
            }
        }
        v
    }
}

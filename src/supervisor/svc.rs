//! A service slot: one supervised service's config, the core's state for it, and the kernel
//! objects that go with it (pidfd, script, output pipe, checks).

use std::io;
use std::time::Duration;

use crate::checks::{CheckRt, InFlight};
use crate::clock::Mono;
use crate::config::{self, Identify, ServiceConfig};
use crate::core::{
    Absent, Cause, Observation, PidfileNotRegular, Pin, Policy, Script, ServiceState,
};
use crate::files::Kind as FileKind;
use crate::limits::{MAX_CHECKS, MAX_LEFTOVERS};
use crate::pins;
use crate::procs;
use crate::scripts::{self, OutputPipe};
use crate::sys::pidfd::PidFd;

/// A service as something taken before an event names it (the poll set): its slot in the
/// service table and the table's generation. A reload builds a new table (services may move,
/// come and go) under a new generation, so a handle taken before it resolves to nothing
/// instead of to whatever sits in its slot now. The table is never changed otherwise while
/// the loop runs; within one call chain plain slot indexes are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Handle {
    slot: usize,
    generation: u32,
}

impl Handle {
    /// The handle of `slot` in the table of `generation`.
    pub(super) fn new(slot: usize, generation: u32) -> Handle {
        Handle { slot, generation }
    }

    /// The slot, if the table is still that of the handle and the slot exists.
    pub(super) fn resolve(self, generation: u32, len: usize) -> Option<usize> {
        (self.generation == generation && self.slot < len).then_some(self.slot)
    }
}

/// One supervised service: its config, the core's state, and the kernel objects that go with it.
pub struct Svc {
    pub cfg: ServiceConfig,
    pub(super) policy: Policy,
    pub st: ServiceState,
    pub(super) pidfd: Option<PidFd>,
    /// The script that runs now, and which one it is.
    pub(super) script: Option<(i32, Script)>,
    /// Scripts whose group was killed and that are not reaped yet: their exit is not news.
    pub(super) killed: heapless::Vec<i32, 8>,
    pub(super) out: OutputPipe,
    pub(super) checks: heapless::Vec<CheckRt, MAX_CHECKS>,
    /// Said once that a traced process is held back from check actions.
    pub(super) traced_said: bool,
    /// The pidfile is not a regular file (said once per change; shown by `custos status`).
    pub(super) pidfile_kind: Option<FileKind>,
    /// What custos knows about the service's process beyond its pidfile (identity evidence).
    pub(super) known: procs::Known,
    /// The pidfile as the last probe read it.
    pub(super) last_read: Option<procs::PidfileStamp>,
    /// The pinned process's instance (its process group and session), recorded while it lived.
    pub(super) instance: Option<procs::Instance>,
    /// While its leftovers are being stopped: those the last sweep signalled.
    pub(super) swept: heapless::Vec<Pin, MAX_LEFTOVERS>,
    /// When custos saw the main process of the instance being cleared dead (boot clock).
    pub(super) died_by: Mono,
    /// While the dead main process is a zombie another parent has yet to reap: when to look
    /// at /proc again (nothing wakes the loop when that parent reaps it).
    pub(super) reap_look: Option<Mono>,
    /// Deaths by cause, for the metrics: 0 exited, -1 cause unknown, else killed by that signal.
    pub(super) deaths: heapless::Vec<(i32, u32), MAX_DEATH_CAUSES>,
    /// When it last died, on the wall clock (for the metrics only, never for a decision).
    pub(super) last_death_at: Option<u64>,
    /// The start script this custos runs now, by identity (for the pins file).
    pub(super) start_script: Option<pins::StartScript>,
    /// A start script an earlier custos ran in this boot that still ran when this one started:
    /// nothing is started until it ends (or outlives its start_timeout and is killed), so that
    /// a custos killed during a start does not make a second copy of the service.
    pub(super) inherited_start: Option<pins::StartScript>,
}

pub(super) fn policy_of(cfg: &ServiceConfig) -> Policy {
    Policy {
        restart: cfg.restart.clone(),
        start_timeout: cfg.start_timeout,
        stop_timeout: cfg.stop_timeout,
        has_stop: cfg.stop.is_some(),
        stop_leftovers: cfg.leftovers == config::Leftovers::Stop,
    }
}

/// Causes of death counted apart per service; further signals are counted with the last one.
pub(super) const MAX_DEATH_CAUSES: usize = 8;

impl Svc {
    /// Counts a death by its cause for the metrics.
    pub(super) fn count_death(&mut self, cause: Cause) {
        let key = match cause {
            Cause::Exited(_) => 0,
            Cause::Killed { signal, .. } => signal,
            Cause::NotOurChild => -1,
        };
        self.last_death_at = Some(crate::clock::wall_now());
        if let Some(e) = self.deaths.iter_mut().find(|e| e.0 == key) {
            e.1 = e.1.saturating_add(1);
        } else if self.deaths.push((key, 1)).is_err() {
            if let Some(e) = self.deaths.last_mut() {
                e.1 = e.1.saturating_add(1);
            }
        }
    }

    pub(super) fn new(cfg: ServiceConfig) -> io::Result<Svc> {
        Ok(Svc {
            policy: policy_of(&cfg),
            cfg,
            st: ServiceState::default(),
            pidfd: None,
            script: None,
            start_script: None,
            inherited_start: None,
            killed: heapless::Vec::new(),
            out: OutputPipe::new()?,
            checks: heapless::Vec::new(),
            traced_said: false,
            pidfile_kind: None,
            known: procs::Known::default(),
            last_read: None,
            instance: None,
            swept: heapless::Vec::new(),
            died_by: Duration::ZERO,
            reap_look: None,
            deaths: heapless::Vec::new(),
            last_death_at: None,
        }
        .with_checks())
    }

    /// One run-time check per configured check (at most MAX_CHECKS, checked at load).
    pub(super) fn with_checks(mut self) -> Svc {
        self.renew_checks();
        self
    }

    /// Fresh run-time checks for the configured ones.
    pub(super) fn renew_checks(&mut self) {
        self.checks.clear();
        for _ in self.cfg.checks.iter().take(MAX_CHECKS) {
            let _ = self.checks.push(CheckRt::new());
        }
    }

    /// Remembers a killed child that is ours to reap, so its exit is not news.
    pub(super) fn forget_killed(&mut self, pid: i32) {
        if self.killed.is_full() {
            self.killed.remove(0);
        }
        let _ = self.killed.push(pid);
    }

    /// Drops the checks' work in flight (a program check's group is killed).
    pub(super) fn cancel_checks(&mut self) {
        let mut killed: heapless::Vec<i32, MAX_CHECKS> = heapless::Vec::new();
        for c in self.checks.iter_mut() {
            if let InFlight::Program { pid, .. } = c.inflight {
                if let Ok(false) = scripts::kill_group(pid) {
                    debug!(
                        "{}: check program (pid {pid}) already reaped: its process group is not signalled",
                        self.cfg.name
                    );
                }
                let _ = killed.push(pid);
            }
            c.inflight = InFlight::Idle;
        }
        for pid in killed {
            self.forget_killed(pid);
        }
    }

    /// The pidfile's problem in words ("pidfile /run/x.pid: is a FIFO, not a regular file:
    /// not read"), if it has one.
    pub(super) fn pidfile_problem(&self) -> Option<String> {
        match (&self.cfg.identify, self.pidfile_kind) {
            (Identify::Pidfile(p), Some(k)) => {
                Some(format!("pidfile {}: {}", p.display(), PidfileNotRegular(k)))
            }
            _ => None,
        }
    }

    /// Says once, when it starts, that the pidfile is not a regular file (every probe finds it
    /// again: a line per tick would flood the log).
    pub(super) fn watch_pidfile(&mut self, obs: &Observation) {
        let kind = match obs {
            Observation::Absent(Absent::PidfileNotRegular(k)) => Some(*k),
            _ => None,
        };
        if kind != self.pidfile_kind {
            self.pidfile_kind = kind;
            if let Some(problem) = self.pidfile_problem() {
                warn!("{}: {problem}", self.cfg.name);
            }
        }
    }

    /// Records the group and session the live pinned process is in now. A daemon may change
    /// them after its pidfile names it (nginx writes its pidfile as it daemonizes), so this is
    /// read again on every tick while it runs: once it is dead, /proc can no longer tell. This is
    /// the /proc read, which checks the start time in the same line; a process watched through
    /// a pidfd is read more cheaply on ticks (`Supervisor::watch_instances`).
    pub(super) fn watch_instance(&mut self, pin: Pin) {
        if let Some(x) = procs::instance_of(pin) {
            self.saw_instance(x);
        }
    }

    /// Records a reading of the live pinned process's group and session.
    pub(super) fn saw_instance(&mut self, x: procs::Instance) {
        if self.instance != Some(x) {
            debug!(
                "{}: pid {} is in process group {} and session {}",
                self.cfg.name, x.pin.pid, x.pgrp, x.session
            );
            self.instance = Some(x);
        }
    }

    pub(super) fn how(&self) -> String {
        match &self.cfg.identify {
            Identify::Pidfile(p) => format!("pidfile {}", p.display()),
            Identify::Exe { exe, args: None } => format!("exe {}", exe.display()),
            Identify::Exe { exe, args: Some(a) } => format!("exe {} {a}", exe.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Handle;

    #[test]
    fn a_handle_resolves_only_in_the_table_it_was_taken_from() {
        let h = Handle::new(2, 7);
        assert_eq!(h.resolve(7, 3), Some(2));
        // A reload made a new table: slot 2 may now hold another service.
        assert_eq!(h.resolve(8, 3), None);
        // The same table never shrinks, but a slot past the end names nothing.
        assert_eq!(Handle::new(3, 7).resolve(7, 3), None);
        // The generation wraps after 2^32 reloads and stays distinct from its neighbours.
        assert_eq!(Handle::new(0, u32::MAX).resolve(0, 1), None);
    }
}

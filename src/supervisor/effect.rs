//! The effector: gives the core one event for a service and carries out each action it
//! decides (spawn a script, signal the verified pin, watch a new pin, log and record a note).

use std::io;

use super::Supervisor;
use crate::clock::{Dur, Mono};
use crate::config::Identify;
use std::time::Duration;

use crate::core::{
    Absent, Action, Cause, Event, Note, Observation, Pin, RestartWhy, Script, SigName, SignalWhy,
    StartWhy,
};
use crate::pins;
use crate::procs::{self, PinState};
use crate::record::Kind;
use crate::scripts;
use crate::sys::pidfd::PidFd;
use crate::sys::process;

/// Events one event may lead to (a failed spawn feeds one back).
pub(super) const EVENT_QUEUE: usize = 4;

/// Signals the pinned process: through its pidfd, or without one by PID right after checking
/// its start time. Never anything else: a process custos has not positively identified is
/// never signalled.
pub(super) fn signal_pin(pidfd: Option<&PidFd>, pin: Pin, signal: i32) -> io::Result<()> {
    // Never init or custos itself, whatever was pinned (pins are refused for them already).
    if pin.pid <= 1 || pin.pid == procs::own_pid() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    match pidfd {
        Some(fd) => fd.send_signal(signal),
        None => match procs::check_pin(pin) {
            PinState::Alive => {
                // A PID just verified to be the pinned process.
                process::kill(pin.pid, signal)
            }
            _ => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        },
    }
}

impl Supervisor {
    /// Gives the core one event for service `i` and carries out what it decides.
    pub(super) fn feed(&mut self, i: usize, event: Event, now: Mono) {
        let mut queue: heapless::Deque<Event, EVENT_QUEUE> = heapless::Deque::new();
        let _ = queue.push_back(event);
        while let Some(ev) = queue.pop_front() {
            let s = &mut self.svcs[i];
            let actions = s.st.decide(&s.policy, ev, now);
            for a in actions {
                if let Some(next) = self.apply(i, a, now) {
                    let _ = queue.push_back(next);
                }
            }
        }
    }

    /// Carries out one action; may return an event to feed back (a failed spawn).
    pub(super) fn apply(&mut self, i: usize, action: Action, now: Mono) -> Option<Event> {
        match action {
            Action::Start {
                attempt,
                after,
                why,
            } => return self.start(i, attempt, after, why, now),
            Action::RunStop { pin, why: _ } => return self.run_stop(i, pin),
            Action::Signal { pin, signal, why } => self.signal(i, pin, signal, why),
            Action::KillScript(kind) => self.kill_script(i, kind),
            Action::Pinned { pin, adopted } => return self.pinned(i, pin, adopted, now),
            Action::Sweep { pin, signal } => {
                return Some(Event::Leftovers(self.sweep(i, pin, signal, now)));
            }
            Action::Reboot => {
                let name = self.svcs[i].cfg.name.clone();
                self.note(Kind::Reboot, &name, "on_exhausted = \"reboot\"");
                let _ = self.record.flush_now(now);
                self.request_reboot(&name, now);
            }
            Action::Unpin => {
                let s = &mut self.svcs[i];
                s.pidfd = None;
                s.cancel_checks();
            }
            Action::Log(note) => self.log_note(i, note, now),
        }
        None
    }

    /// Runs the start script (logged, recorded, and a hook raised when it is a restart).
    fn start(
        &mut self,
        i: usize,
        attempt: u32,
        after: Option<Duration>,
        why: StartWhy,
        now: Mono,
    ) -> Option<Event> {
        let text = match after {
            Some(d) => format!(
                "starting (attempt {attempt}, after {} backoff): {why}",
                Dur(d)
            ),
            None => format!("starting (attempt {attempt}): {why}"),
        };
        let name = self.svcs[i].cfg.name.clone();
        info!("{name}: {text}");
        self.note(Kind::Started, &name, &text);
        if matches!(
            why,
            StartWhy::Died(_) | StartWhy::Failed(_) | StartWhy::Restart(_)
        ) {
            let cause = match &why {
                StartWhy::Died(c) => Some(c.to_string()),
                _ => None,
            };
            self.hooks
                .raise("restarting", Some((i, &name)), &text, cause.as_deref(), now);
        }
        let s = &mut self.svcs[i];
        let name = s.cfg.name.as_str();
        // What the start script's process will be verified by: started after this
        // moment, named by a pidfile that changed since.
        let before = match &s.cfg.identify {
            Identify::Pidfile(p) => procs::pidfile_stamp(p),
            Identify::Exe { .. } => None,
        };
        s.known.spawned = Some(procs::Spawned {
            at: crate::clock::boottime(),
            before,
        });
        match scripts::spawn(&s.cfg.start, name, &s.out) {
            Ok(pid) => {
                debug!("{name}: `{}` runs as pid {pid}", s.cfg.start);
                s.script = Some((pid, Script::Start));
                // Kept in the pins file while it runs: a custos respawned meanwhile
                // waits for it instead of starting a second copy.
                s.start_script = procs::stat(pid).map(|st| pins::StartScript {
                    pid,
                    start_ticks: st.start_ticks,
                    spawned_at: crate::clock::boottime(),
                });
                self.save_pins();
                None
            }
            Err(e) => {
                error!("{name}: cannot run `{}`: {e}", s.cfg.start);
                Some(Event::SpawnFailed(e.raw_os_error().unwrap_or(libc::EIO)))
            }
        }
    }

    /// Runs the stop script for the pinned process (continuing it first if it is stopped).
    fn run_stop(&mut self, i: usize, pin: Pin) -> Option<Event> {
        let s = &mut self.svcs[i];
        let name = s.cfg.name.as_str();
        let failed = Some(Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Exited(127),
        });
        let Some(stop) = &s.cfg.stop else {
            return failed;
        };
        // A stopped process (SIGSTOP: the hang a check found) cannot act on the stop
        // script's SIGTERM until it is continued: wake the verified pin first, or the
        // script's wait-then-SIGKILL is all that can end it.
        if procs::stat(pin.pid).is_some_and(|st| st.state == 'T') {
            info!(
                "{name}: pid {} is stopped: sending SIGCONT so that its stop script can stop it",
                pin.pid
            );
            let _ = signal_pin(s.pidfd.as_ref(), pin, libc::SIGCONT);
        }
        info!("{name}: running stop script `{stop}` for pid {}", pin.pid);
        match scripts::spawn(stop, name, &s.out) {
            Ok(pid) => {
                s.script = Some((pid, Script::Stop));
                None
            }
            Err(e) => {
                error!("{name}: cannot run `{stop}`: {e}");
                failed
            }
        }
    }

    /// Sends a signal to the verified pin, logged with why.
    fn signal(&mut self, i: usize, pin: Pin, signal: i32, why: SignalWhy) {
        let s = &self.svcs[i];
        let name = s.cfg.name.as_str();
        info!(
            "{name}: sending {} to pid {}: {why}",
            SigName(signal),
            pin.pid
        );
        match signal_pin(s.pidfd.as_ref(), pin, signal) {
            Err(e) => warn!(
                "{name}: {} not sent to pid {}: {e} (already gone)",
                SigName(signal),
                pin.pid
            ),
            // A stopped process (SIGSTOP, or a hang a check found) acts on SIGTERM only
            // once continued: wake it so that the graceful stop can work.
            Ok(())
                if signal == libc::SIGTERM
                    && procs::stat(pin.pid).is_some_and(|st| st.state == 'T') =>
            {
                info!(
                    "{name}: pid {} is stopped: sending SIGCONT so it can act on SIGTERM",
                    pin.pid
                );
                let _ = signal_pin(s.pidfd.as_ref(), pin, libc::SIGCONT);
            }
            Ok(()) => {}
        }
    }

    /// Kills the process group of the script of this kind, if that one runs now.
    fn kill_script(&mut self, i: usize, kind: Script) {
        let s = &mut self.svcs[i];
        let name = s.cfg.name.as_str();
        let Some((pid, k)) = s.script else { return };
        if k != kind {
            return;
        }
        let (what, limit) = match kind {
            Script::Start => ("start", s.cfg.start_timeout),
            Script::Stop => ("stop", s.cfg.stop_timeout),
        };
        warn!(
            "{name}: killing the {what} script's process group (pid {pid}): still running after {}",
            Dur(limit)
        );
        match scripts::kill_group(pid) {
            Ok(true) => {}
            Ok(false) => debug!("{name}: {what} script (pid {pid}) already reaped: its process group is not signalled"),
            Err(e) => warn!("{name}: kill of process group {pid} failed: {e}"),
        }
        s.script = None;
        s.forget_killed(pid);
    }

    /// A process was identified: watch it through a pidfd (checked again after opening),
    /// reset its checks, remember it for the pins file, and log it.
    fn pinned(&mut self, i: usize, pin: Pin, adopted: bool, now: Mono) -> Option<Event> {
        let pidfd_ok = self.facilities.pidfd;
        let s = &mut self.svcs[i];
        let name = s.cfg.name.as_str();
        if pidfd_ok {
            s.pidfd = None;
            match PidFd::open(pin.pid) {
                // Re-check after opening: the pidfd must name the pinned process.
                Ok(fd) => {
                    match procs::check_pin(pin) {
                        PinState::Alive => s.pidfd = Some(fd),
                        PinState::Unknown => {
                            warn!("{name}: cannot verify pid {} after pidfd_open; watching it by polling", pin.pid)
                        }
                        PinState::Zombie | PinState::Gone => {
                            return Some(Event::Observed(Observation::Absent(Absent::PinGone)))
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    return Some(Event::Observed(Observation::Absent(Absent::PinGone)))
                }
                // Out of fds, or the like: polling /proc still watches it.
                Err(e) => warn!(
                    "{name}: pidfd_open({}) failed: {e}; watching it by polling",
                    pin.pid
                ),
            }
        }
        for (c, cfg) in s.checks.iter_mut().zip(s.cfg.checks.iter()) {
            c.reset(cfg, now);
        }
        s.traced_said = false;
        s.pidfile_kind = None;
        s.known.last = Some(procs::LastPin {
            pid: pin.pid,
            start_ticks: pin.start_ticks,
            stamp: s.last_read.filter(|st| st.pid == pin.pid),
        });
        s.known.earlier_boot = None;
        let how = s.how();
        if adopted {
            info!(
                "{name}: found running as pid {} ({how}); watching it",
                pin.pid
            );
        } else {
            info!("{name}: running as pid {} ({how})", pin.pid);
        }
        // Its group and session, for its leftovers once it is gone.
        s.instance = None;
        s.watch_instance(pin);
        self.save_pins();
        None
    }

    /// A note of the core: logged at its level, recorded when it is an event, passed to the
    /// hooks when one is raised for it, and counted when it is a death.
    fn log_note(&mut self, i: usize, note: Note, now: Mono) {
        let name = self.svcs[i].cfg.name.clone();
        match note {
            Note::Died { .. }
            | Note::StartFailed(_)
            | Note::SurvivesKill { .. }
            | Note::StopDropped
            | Note::LeftoversSurvive { .. }
            | Note::NotReaped { .. }
            | Note::LeftAlone(_)
            | Note::Held { .. }
            | Note::CrashLooping { .. } => {
                warn!("{name}: {note}")
            }
            Note::GivenUp { .. } | Note::Ambiguous(_) => error!("{name}: {note}"),
            _ => info!("{name}: {note}"),
        }
        if let Some(kind) = record_kind(&note) {
            self.note(kind, &name, &note.to_string());
        }
        let (event, cause) = hook_event(&note);
        if let Some(event) = event {
            self.hooks.raise(
                event,
                Some((i, &name)),
                &note.to_string(),
                cause.as_deref(),
                now,
            );
        }
        if let Note::Died { cause, .. } | Note::StoppedAsAsked { cause, .. } = note {
            self.svcs[i].count_death(cause);
        }
    }
}

/// The kind a note is recorded as, if it is recorded at all.
fn record_kind(note: &Note) -> Option<Kind> {
    match note {
        // A stop that ended as asked is still a death, with its cause, in the record.
        Note::Died { .. } | Note::StoppedAsAsked { .. } => Some(Kind::Died),
        Note::StartFailed(_) => Some(Kind::StartFailed),
        Note::GivenUp { .. } => Some(Kind::GaveUp),
        Note::Held { .. } => Some(Kind::Held),
        Note::Restarting(RestartWhy::OperatorStop) | Note::Stopped | Note::Unmonitored => {
            Some(Kind::Stopped)
        }
        Note::Restarting(_) => Some(Kind::Restarted),
        _ => None,
    }
}

/// The hook event a note raises, if any, and the cause it passes.
fn hook_event(note: &Note) -> (Option<&'static str>, Option<String>) {
    match note {
        Note::Died { cause, .. } => (Some("died"), Some(cause.to_string())),
        Note::StartFailed(_) => (Some("start-failed"), None),
        Note::GivenUp { .. } => (Some("given-up"), None),
        Note::Held { .. } => (Some("held"), None),
        Note::CrashLooping { .. } => (Some("crash-looping"), None),
        Note::Restarting(why @ RestartWhy::CheckFailed { .. }) => {
            (Some("check-failed"), Some(why.to_string()))
        }
        Note::Restarting(RestartWhy::OperatorStop) | Note::Stopped => (Some("stopped"), None),
        _ => (None, None),
    }
}

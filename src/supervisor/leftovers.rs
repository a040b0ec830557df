//! Leftovers of a dead instance: processes of its process group started after it, found,
//! signalled by verified identity (SIGTERM, then SIGKILL) and waited for.

use std::io;

use super::effect::signal_pin;
use super::Supervisor;
use crate::clock::{Dur, Mono};
use crate::core::{Event, Phase, Pin, SigName};
use crate::limits::{MAX_LEFTOVERS, MAX_SERVICES};
use crate::procs::{self, PinState};
use crate::record::Kind;
use crate::sys::pidfd::PidFd;

/// How often /proc is looked at while a dead main process waits for its parent to reap it (at
/// most `core::REAP_WAIT`, 2 s: 40 looks).
const REAP_LOOK: std::time::Duration = std::time::Duration::from_millis(50);

/// Signals a leftover of a dead instance, identified by PID and start time: through a pidfd
/// opened and then checked against the start time (a PID reused since cannot be reached), or
/// without pidfds by PID right after the check. `Ok(false)`: it is gone.
pub(super) fn signal_leftover(p: Pin, signal: i32, pidfd_ok: bool) -> io::Result<bool> {
    if p.pid <= 1 || p.pid == procs::own_pid() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    if pidfd_ok {
        let fd = match PidFd::open(p.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
            Err(e) => return Err(e),
        };
        return match procs::check_pin(p) {
            PinState::Alive => fd.send_signal(signal).map(|()| true),
            PinState::Unknown => Err(io::Error::from_raw_os_error(libc::EIO)),
            PinState::Zombie | PinState::Gone => Ok(false),
        };
    }
    match signal_pin(None, p, signal) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// PIDs in words: "812 813 (and 3 more)".
pub(super) struct Pids<'a>(&'a [Pin], usize);

impl std::fmt::Display for Pids<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, p) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", p.pid)?;
        }
        if self.1 > self.0.len() {
            write!(f, " (and {} more)", self.1 - self.0.len())?;
        }
        Ok(())
    }
}

/// Sends `signal` to each leftover (by verified identity); those still there come back.
fn signal_each(
    name: &str,
    swept: &[Pin],
    signal: i32,
    pidfd_ok: bool,
) -> heapless::Vec<Pin, MAX_LEFTOVERS> {
    let mut left: heapless::Vec<Pin, MAX_LEFTOVERS> = heapless::Vec::new();
    for p in swept.iter() {
        match signal_leftover(*p, signal, pidfd_ok) {
            Ok(true) => {
                let _ = left.push(*p);
            }
            Ok(false) => {}
            Err(e) => {
                warn!(
                    "{name}: {} not sent to leftover pid {}: {e}",
                    SigName(signal),
                    p.pid
                );
                let _ = left.push(*p);
            }
        }
    }
    left
}

impl Supervisor {
    /// The process groups and sessions of the other services' live instances: never swept.
    fn guarded(&self, i: usize) -> heapless::Vec<procs::Instance, MAX_SERVICES> {
        self.svcs
            .iter()
            .enumerate()
            .filter(|&(k, s)| k != i && s.st.pin().is_some())
            .filter_map(|(_, s)| s.instance)
            .collect()
    }

    /// Finds the leftovers of service `i`'s dead instance whose main process was `pin`, and
    /// sends each `signal`, logging why and how many. Returns how many were signalled and are
    /// still there (0: nothing to wait for).
    pub(super) fn sweep(&mut self, i: usize, pin: Pin, signal: i32, now: Mono) -> u16 {
        let pidfd_ok = self.facilities.pidfd;
        let taken = self.taken(i);
        let guarded = self.guarded(i);
        let s = &mut self.svcs[i];
        let name = s.cfg.name.clone();
        let Some(inst) = s.instance.filter(|x| x.pin == pin) else {
            s.swept.clear();
            debug!(
                "{name}: no process group recorded for pid {}: no leftovers looked for",
                pin.pid
            );
            return 0;
        };
        if signal == libc::SIGTERM {
            // The first sweep comes in the pass that saw the death: nothing started after now
            // belongs to the dead instance.
            s.died_by = now;
        }
        let found = match procs::find_leftovers(&inst, s.died_by, &taken, &guarded, &mut s.swept) {
            Ok(n) => n,
            Err(why) => {
                s.swept.clear();
                if signal == libc::SIGTERM {
                    info!(
                        "{name}: leftovers of pid {} are not looked for: {why}",
                        pin.pid
                    );
                }
                return 0;
            }
        };
        if found == 0 {
            if signal == libc::SIGTERM {
                debug!(
                    "{name}: pid {} left no processes in its process group {}",
                    pin.pid, inst.pgrp
                );
            } else {
                info!("{name}: leftovers of pid {} gone", pin.pid);
            }
            return 0;
        }
        let text = if signal == libc::SIGTERM {
            format!(
                "stopping {found} leftover process(es) of pid {} (same process group {}, started after it, custos's descendants): sending SIGTERM to pid {}",
                pin.pid,
                inst.pgrp,
                Pids(&s.swept, found)
            )
        } else {
            format!(
                "{found} leftover process(es) of pid {} still running {} after SIGTERM: sending SIGKILL to pid {}",
                pin.pid,
                Dur(s.policy.stop_timeout.min(crate::core::LEFTOVERS_GRACE)),
                Pids(&s.swept, found)
            )
        };
        warn!("{name}: {text}");
        let left = signal_each(&name, &s.swept, signal, pidfd_ok);
        // Found but not held (over MAX_LEFTOVERS): the SIGKILL sweep finds them again.
        let more = found.saturating_sub(s.swept.len());
        let still = left.len() + more;
        s.swept = left;
        self.note(Kind::Stopped, &name, &text);
        u16::try_from(still).unwrap_or(u16::MAX)
    }

    /// A service clearing its dead instance's leftovers: tells the core once all that were
    /// signalled are gone (each is checked by PID and start time; a zombie has gone).
    pub(super) fn leftovers_gone(&mut self, i: usize, now: Mono) {
        let s = &mut self.svcs[i];
        if !matches!(s.st.phase, Phase::Clearing { .. }) {
            s.swept.clear();
            s.reap_look = None;
            return;
        }
        // Said once: when the last signalled leftover goes, or at once when none were and no
        // reap is awaited (while one is, this runs every REAP_LOOK).
        let say_gone = !s.swept.is_empty() || !s.st.unreaped;
        s.swept
            .retain(|p| matches!(procs::check_pin(*p), PinState::Alive | PinState::Unknown));
        if s.swept.is_empty() {
            if let (true, Phase::Clearing { pin, .. }) = (say_gone, s.st.phase) {
                info!("{}: leftovers of pid {} gone", s.cfg.name, pin.pid);
            }
            self.feed(i, Event::Leftovers(0), now);
        }
        self.reap_awaited(i, now);
    }

    /// A service clearing a dead main process that another parent has not reaped yet: tells
    /// the core once it is gone from /proc, and until then looks again every REAP_LOOK.
    fn reap_awaited(&mut self, i: usize, now: Mono) {
        let s = &mut self.svcs[i];
        let Phase::Clearing { pin, .. } = s.st.phase else {
            s.reap_look = None;
            return;
        };
        if !s.st.unreaped {
            s.reap_look = None;
        } else if procs::check_pin(pin) == PinState::Zombie {
            s.reap_look = Some(now + REAP_LOOK);
        } else {
            s.reap_look = None;
            info!(
                "{}: pid {} reaped by its parent after {}",
                s.cfg.name,
                pin.pid,
                Dur(now.saturating_sub(s.died_by))
            );
            self.feed(i, Event::Reaped, now);
        }
    }
}

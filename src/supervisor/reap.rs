//! Deaths: reaping exited children (pinned services, scripts, check programs, orphans) and
//! telling the core how each died.

use std::io;

use super::gate::Gate;
use super::Supervisor;
use crate::checks::{Failure, InFlight};
use crate::clock::Mono;
use crate::core::{Cause, Event, Phase, Pin, Script};
use crate::procs::{self, PinState};
use crate::sys::process;

/// Children reaped per batch (deaths are handled before script exits within a batch).
pub(super) const REAP_BATCH: usize = 32;

pub(super) fn cause_of(status: i32) -> Cause {
    if libc::WIFSIGNALED(status) {
        Cause::Killed {
            signal: libc::WTERMSIG(status),
            core: libc::WCOREDUMP(status),
        }
    } else {
        Cause::Exited(libc::WEXITSTATUS(status))
    }
}

impl Supervisor {
    /// The pinned process's pidfd is readable: it exited.
    pub(super) fn pidfd_ready(&mut self, i: usize, now: Mono) {
        let Some(pin) = self.svcs[i].st.pin() else {
            self.svcs[i].pidfd = None;
            return;
        };
        self.pin_exited(i, pin, now);
        // A pidfd stays readable once its process has exited. If the pin survived (no exit
        // could be confirmed), polling that pidfd again would return at once, every pass: the
        // loop would spin. Watch the pin through /proc on every tick instead.
        let s = &mut self.svcs[i];
        if s.pidfd.is_some() && s.st.pin() == Some(pin) {
            s.pidfd = None;
            warn!(
                "{}: pid {}'s pidfd says it exited, but no exit can be confirmed: watching it through /proc",
                s.cfg.name, pin.pid
            );
        }
    }

    /// The pinned process seems to have exited: reap it, and tell the core how it died.
    pub(super) fn pin_exited(&mut self, i: usize, pin: Pin, now: Mono) {
        if let Some(cause) = self.reap_pin(i, pin) {
            // Not custos's child: its parent may not have reaped it yet.
            let reaped = procs::check_pin(pin) != PinState::Zombie;
            if !reaped {
                self.svcs[i].died_by = now;
            }
            self.feed(
                i,
                Event::Died {
                    pid: pin.pid,
                    cause,
                    reaped,
                },
                now,
            );
        }
    }

    /// Reaps the pinned process if it has exited: its cause when it was our child, "not our
    /// child" when another parent got it. `None` when it has not exited after all (a spurious
    /// wake-up): a live process is never reported dead.
    pub(super) fn reap_pin(&mut self, i: usize, pin: Pin) -> Option<Cause> {
        if let Some(fd) = &self.svcs[i].pidfd {
            // waitid(P_PIDFD) names exactly this process, never a reuser of its PID.
            match fd.try_wait() {
                Ok(Some(x)) if x.pid == pin.pid => {
                    return Some(match x.code {
                        libc::CLD_EXITED => Cause::Exited(x.status),
                        libc::CLD_DUMPED => Cause::Killed {
                            signal: x.status,
                            core: true,
                        },
                        _ => Cause::Killed {
                            signal: x.status,
                            core: false,
                        },
                    });
                }
                // Our child, and waitid has no exit for it: alive (a spurious wake-up), or a
                // zombie it cannot see because a tracer holds it.
                Ok(_) => return self.held_by_tracer(i, pin),
                // ECHILD: not our child. EINVAL: Linux 5.3 has pidfd_open but not P_PIDFD.
                Err(_) => {}
            }
        }
        // By PID, which is safe only while the process is still there (alive or a zombie: its
        // PID cannot be reused until it is reaped).
        match procs::check_pin(pin) {
            PinState::Alive | PinState::Unknown => None,
            PinState::Gone => Some(Cause::NotOurChild),
            PinState::Zombie => {
                // A zombie we verified: its PID is not reused until it is reaped.
                match process::wait_nohang(pin.pid) {
                    Ok(Some((p, status))) if p == pin.pid => Some(cause_of(status)),
                    // Our child, a zombie, and not collectable: a tracer holds it.
                    Ok(None) => self.held_by_tracer(i, pin),
                    _ => Some(Cause::NotOurChild),
                }
            }
        }
    }

    /// The pinned process is our child but wait says it has not exited. A traced process's
    /// zombie is visible only to its tracer until that one collects it or detaches, which a
    /// stopped or careless tracer may never do: the process is dead all the same, so its death
    /// is reported now, with the exit status read from /proc/PID/stat (the tracer reaps it, or
    /// custos does later as an orphan). `None` when it is not a traced zombie: a live process
    /// (a thread-group leader that exited while its other threads run on shows as a zombie
    /// too) is never reported dead.
    pub(super) fn held_by_tracer(&self, i: usize, pin: Pin) -> Option<Cause> {
        if procs::check_pin(pin) != PinState::Zombie {
            return None;
        }
        let tracer = procs::tracer_pid(pin.pid).filter(|&t| t != 0)?;
        let status = procs::exit_status(pin.pid);
        info!(
            "{}: pid {} has exited, but its tracer (pid {tracer}) has not collected it{}",
            self.svcs[i].cfg.name,
            pin.pid,
            if status.is_some() {
                ": exit status read from /proc"
            } else {
                ""
            }
        );
        Some(status.map_or(Cause::NotOurChild, cause_of))
    }

    /// Reaps every exited child: pinned services, scripts, and orphans adopted as subreaper.
    pub(super) fn reap(&mut self, now: Mono) {
        loop {
            let mut batch: heapless::Vec<(i32, Cause), REAP_BATCH> = heapless::Vec::new();
            while !batch.is_full() {
                match process::wait_nohang(-1) {
                    Ok(Some((pid, status))) => {
                        let _ = batch.push((pid, cause_of(status)));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // None exited yet, or ECHILD: no children.
                    _ => break,
                }
            }
            let full = batch.is_full();
            // Deaths of pinned processes first, so a stop script's exit finds them settled.
            let mut others: heapless::Vec<(i32, Cause), REAP_BATCH> = heapless::Vec::new();
            for &(pid, cause) in &batch {
                match self.keeper.reaped(pid) {
                    Some(true) => {
                        warn!("output keeper (pid {pid}) {cause}: starting another");
                        continue;
                    }
                    Some(false) => {
                        debug!("replaced output keeper (pid {pid}) reaped: {cause}");
                        continue;
                    }
                    None => {}
                }
                if matches!(self.gate, Gate::Running { pid: p, .. } if p == pid) {
                    self.gate_exited(cause, now);
                    continue;
                }
                if self.hooks.reaped(pid, cause, now) {
                    continue;
                }
                // A child custos spawned (script, check program, killed script) owns its PID:
                // a pinned non-child that died may have had the same PID before it was reused.
                let ours = self.svcs.iter().any(|s| {
                    s.script.is_some_and(|(p, _)| p == pid)
                        || s.killed.contains(&pid)
                        || s.checks.iter().any(
                            |c| matches!(c.inflight, InFlight::Program { pid: p, .. } if p == pid),
                        )
                });
                let pinned = if ours {
                    None
                } else {
                    self.svcs
                        .iter()
                        .position(|s| s.st.pin().is_some_and(|p| p.pid == pid))
                };
                match pinned {
                    Some(i) => {
                        let reaped = true;
                        self.feed(i, Event::Died { pid, cause, reaped }, now)
                    }
                    None => {
                        let _ = others.push((pid, cause));
                    }
                }
            }
            for &(pid, cause) in &others {
                self.script_exited(pid, cause, now);
            }
            if !full {
                break;
            }
        }
    }

    pub(super) fn script_exited(&mut self, pid: i32, cause: Cause, now: Mono) {
        for i in 0..self.svcs.len() {
            let s = &mut self.svcs[i];
            if let Some((spid, kind)) = s.script {
                if spid == pid {
                    s.script = None;
                    let name = &s.cfg.name;
                    s.out.end_of_script(now, |line| info!("{name}: | {line}"));
                    let what = if kind == Script::Start {
                        "start"
                    } else {
                        "stop"
                    };
                    if cause == Cause::Exited(0) {
                        debug!("{name}: {what} script (pid {pid}) exited with status 0");
                    } else {
                        warn!("{name}: {what} script (pid {pid}) {cause}");
                    }
                    self.feed(
                        i,
                        Event::ScriptExited {
                            script: kind,
                            cause,
                        },
                        now,
                    );
                    return;
                }
            }
            let program = s
                .checks
                .iter()
                .position(|c| matches!(c.inflight, InFlight::Program { pid: p, .. } if p == pid));
            if let Some(j) = program {
                let r = if cause == Cause::Exited(0) {
                    Ok(())
                } else {
                    Err(Failure::Program(cause))
                };
                self.finish_check(i, j, r, now);
                return;
            }
            if let Some(k) = s.killed.iter().position(|&p| p == pid) {
                s.killed.swap_remove(k);
                debug!("{}: killed script (pid {pid}) reaped: {cause}", s.cfg.name);
                return;
            }
            if matches!(s.st.phase, Phase::Clearing { .. }) && s.swept.iter().any(|p| p.pid == pid)
            {
                info!("{}: leftover pid {pid} {cause}", s.cfg.name);
                return;
            }
        }
        debug!("reaped orphan pid {pid}: {cause}");
    }
}

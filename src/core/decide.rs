//! The state machine: one event, in the phase the service is in, gives the next phase and the
//! actions. `decide` sorts the event by its family; each family's function reads as its
//! transitions, phase by phase. What an event does not name for a phase changes nothing.

use super::*;

impl ServiceState {
    /// Decides what to do about one event. Never signals anything but the pinned process,
    /// never stops what is not running.
    pub fn decide(&mut self, policy: &Policy, event: Event, now: Mono) -> Actions {
        let mut out = Actions::new();
        // Polling found the pinned process gone without a death event: it died, and the kernel
        // gave its status to another parent.
        let event = match (self.pin(), event) {
            (Some(pin), Event::Observed(Observation::Absent(_))) => Event::Died {
                pid: pin.pid,
                cause: Cause::NotOurChild,
                reaped: true,
            },
            (_, e) => e,
        };
        let out_ = &mut out;
        match event {
            Event::Observed(o) => self.observed(policy, o, now, out_),
            Event::Died { pid, cause, reaped } => {
                if self.pin().is_some_and(|p| p.pid == pid) {
                    self.unreaped = !reaped;
                }
                self.process_died(policy, pid, cause, now, out_)
            }
            Event::Deadline => self.deadline_passed(policy, now, out_),
            Event::ScriptExited { script, cause } => {
                self.script_exited(policy, script, cause, now, out_)
            }
            Event::SpawnFailed(errno) => {
                if let Phase::Starting { script: true, .. } = self.phase {
                    self.start_failed(policy, StartFailure::Spawn(errno), now, out_);
                }
            }
            Event::RestartRequested(why) => self.restart_requested(policy, why, now, out_),
            Event::Operator(op) => self.operator(policy, op, now, out_),
            Event::Leftovers(n) => self.leftovers_counted(policy, n, now, out_),
            Event::Reaped => self.reaped(policy, now, out_),
        }
        // A stop asked during a start belongs to that start: whichever way the start ended,
        // it must never stop a later one.
        if !matches!(self.phase, Phase::Starting { .. }) {
            self.stop_pending = false;
        }
        out
    }

    /// A probe of the service's identity found `o`.
    fn observed(&mut self, policy: &Policy, o: Observation, now: Mono, out: &mut Actions) {
        match (self.phase, o) {
            // Identity found: adopted, or the process a start brought up.
            (
                Phase::Unknown
                | Phase::Waiting { .. }
                | Phase::GivenUp
                | Phase::Ambiguous(_)
                | Phase::Held { .. },
                Observation::Alive(pin),
            ) => self.pinned(policy, pin, true, out),
            (Phase::Starting { script: false, .. }, Observation::Alive(pin)) => {
                self.pinned(policy, pin, false, out);
                if std::mem::take(&mut self.stop_pending) {
                    self.restart_requested(policy, RestartWhy::OperatorStop, now, out);
                }
            }
            // A start looks for its process: remember why it is not there yet.
            (
                Phase::Starting { script: false, .. } | Phase::Waiting { .. },
                Observation::Absent(_) | Observation::Unverified(..),
            ) if !matches!(
                (self.phase, o),
                (Phase::Waiting { .. }, Observation::Unverified(..))
            ) =>
            {
                if let Observation::Absent(a) = o {
                    if a.leaves_a_process_alone() && self.seen != Some(o) {
                        push(out, Action::Log(Note::LeftAlone(a)));
                    }
                }
                self.seen = Some(o);
            }
            // A live process that can be neither verified nor ruled out: hold.
            (
                Phase::Unknown | Phase::Waiting { .. } | Phase::Ambiguous(_) | Phase::Held { .. },
                Observation::Unverified(pin, doubt),
            ) => {
                if self.phase != (Phase::Held { pin, doubt }) {
                    push(out, Action::Log(Note::Held { pin, doubt }));
                }
                self.phase = Phase::Held { pin, doubt };
            }
            // Nothing there: only start, never stop first.
            (
                Phase::Unknown | Phase::Ambiguous(_) | Phase::Held { .. },
                Observation::Absent(why),
            ) => self.start(policy, StartWhy::NotRunning(why), now, out),
            (
                Phase::Unknown
                | Phase::Ambiguous(_)
                | Phase::Held { .. }
                | Phase::Waiting { .. }
                | Phase::Starting { script: false, .. },
                Observation::Ambiguous(n),
            ) => self.ambiguous(n, out),
            // While a script runs, or a process is pinned: the probe is not asked for.
            _ => {}
        }
    }

    /// A process identified as the service's: watch it from now on.
    fn pinned(&mut self, policy: &Policy, pin: Pin, adopted: bool, out: &mut Actions) {
        self.phase = Phase::Running { pin };
        self.stable_at = (self.fails > 0).then(|| pin.started + policy.restart.stable_after);
        push(out, Action::Pinned { pin, adopted });
    }

    /// Several processes match: ambiguous, whatever was under way, since a start now could
    /// only add another look-alike.
    fn ambiguous(&mut self, n: u16, out: &mut Actions) {
        if !matches!(self.phase, Phase::Ambiguous(m) if m == n) {
            push(out, Action::Log(Note::Ambiguous(n)));
        }
        if std::mem::take(&mut self.stop_pending) {
            push(out, Action::Log(Note::StopDropped));
        }
        self.phase = Phase::Ambiguous(n);
    }

    /// The process with this PID died; only the pinned one's death matters.
    fn process_died(
        &mut self,
        policy: &Policy,
        pid: i32,
        cause: Cause,
        now: Mono,
        out: &mut Actions,
    ) {
        match self.phase {
            Phase::Running { pin } if pid == pin.pid => {
                let uptime = now.saturating_sub(pin.started);
                self.died(policy, pin, cause, uptime, now, out);
            }
            Phase::Stopping {
                pin,
                step,
                deadline,
                script,
                dead: false,
                why,
            } if pid == pin.pid => {
                self.last_death = Some(cause);
                let uptime = now.saturating_sub(pin.started);
                let by_script = matches!(step, StopStep::Script | StopStep::Settle);
                // Exit status 0 or SIGTERM, after a stop script ran or custos sent SIGTERM: the
                // stop it was asked for, not a death to warn about.
                let as_asked =
                    matches!(
                        cause,
                        Cause::Exited(0)
                            | Cause::Killed {
                                signal: libc::SIGTERM,
                                ..
                            }
                    ) && matches!(step, StopStep::Script | StopStep::Settle | StopStep::Term);
                let note = if as_asked {
                    Note::StoppedAsAsked {
                        pin,
                        cause,
                        uptime,
                        by_script,
                    }
                } else {
                    Note::Died {
                        pin,
                        cause,
                        uptime,
                        during_stop: by_script,
                    }
                };
                push(out, Action::Log(note));
                push(out, Action::Unpin);
                if script {
                    // The stop script still runs: the stop goes on once it exits.
                    self.phase = Phase::Stopping {
                        pin,
                        step,
                        deadline,
                        script,
                        dead: true,
                        why,
                    };
                } else {
                    self.clear_then(policy, pin, Then::Restart(why), now, out);
                }
            }
            _ => {}
        }
    }

    /// A deadline of the current phase has passed.
    fn deadline_passed(&mut self, policy: &Policy, now: Mono, out: &mut Actions) {
        match self.phase {
            // A run after failures has lasted stable_after.
            Phase::Running { .. } if self.stable_at.is_some_and(|t| now >= t) => {
                if self.crash_looping(&policy.restart) {
                    push(
                        out,
                        Action::Log(Note::Recovered {
                            fails: self.fails,
                            stable_after: policy.restart.stable_after,
                        }),
                    );
                }
                self.clear_fails();
            }
            // Backoff over.
            Phase::Waiting { why, .. } => self.start(policy, why, now, out),
            Phase::Starting { script, .. } => self.start_timed_out(policy, script, now, out),
            Phase::Stopping {
                pin,
                step,
                script,
                dead,
                why,
                ..
            } => {
                if script {
                    push(out, Action::KillScript(Script::Stop));
                }
                if dead {
                    self.clear_then(policy, pin, Then::Restart(why), now, out);
                } else {
                    self.next_stop_step(policy, pin, step, why, now, out);
                }
            }
            Phase::Clearing {
                pin, step, then, ..
            } => self.clearing_deadline(policy, pin, step, then, now, out),
            _ => {}
        }
    }

    /// The start script ran too long (`script`), or no process appeared after it.
    fn start_timed_out(&mut self, policy: &Policy, script: bool, now: Mono, out: &mut Actions) {
        let failure = if script {
            push(out, Action::KillScript(Script::Start));
            StartFailure::ScriptTimeout(policy.start_timeout)
        } else {
            match self.seen.take() {
                Some(Observation::Unverified(pin, doubt)) => {
                    // Never a second copy on doubt: hold, and say why.
                    self.phase = Phase::Held { pin, doubt };
                    push(out, Action::Log(Note::Held { pin, doubt }));
                    if std::mem::take(&mut self.stop_pending) {
                        push(out, Action::Log(Note::StopDropped));
                    }
                    return;
                }
                Some(Observation::Absent(a)) => {
                    StartFailure::NoProcess(policy.start_timeout, Some(a))
                }
                _ => StartFailure::NoProcess(policy.start_timeout, None),
            }
        };
        self.start_failed(policy, failure, now, out);
    }

    /// The pinned process outlived a step of its stop: the next, harder one (stop script,
    /// then SIGTERM, then SIGKILL, then waiting and saying so).
    fn next_stop_step(
        &mut self,
        policy: &Policy,
        pin: Pin,
        step: StopStep,
        why: RestartWhy,
        now: Mono,
        out: &mut Actions,
    ) {
        let (next, action) = match step {
            StopStep::Script | StopStep::Settle => (
                StopStep::Term,
                Action::Signal {
                    pin,
                    signal: libc::SIGTERM,
                    why: SignalWhy::StopScriptLeftIt,
                },
            ),
            StopStep::Term => (
                StopStep::Kill,
                Action::Signal {
                    pin,
                    signal: libc::SIGKILL,
                    why: SignalWhy::TermTimeout(policy.stop_timeout),
                },
            ),
            StopStep::Kill => (
                StopStep::Kill,
                Action::Log(Note::SurvivesKill {
                    pin,
                    waited: policy.stop_timeout,
                }),
            ),
        };
        self.phase = Phase::Stopping {
            pin,
            step: next,
            deadline: now + policy.stop_timeout,
            script: false,
            dead: false,
            why,
        };
        push(out, action);
    }

    /// A start or stop script exited with `cause`.
    fn script_exited(
        &mut self,
        policy: &Policy,
        script: Script,
        cause: Cause,
        now: Mono,
        out: &mut Actions,
    ) {
        match (self.phase, script) {
            (
                Phase::Starting {
                    deadline,
                    script: true,
                },
                Script::Start,
            ) => {
                if cause == Cause::Exited(0) {
                    // Now look for the process it started, until the same deadline.
                    self.phase = Phase::Starting {
                        deadline,
                        script: false,
                    };
                } else {
                    self.start_failed(policy, StartFailure::ScriptStatus(cause), now, out);
                }
            }
            (Phase::Stopping { pin, dead, why, .. }, Script::Stop) => {
                push(out, Action::Log(Note::StopScriptExited(cause)));
                if dead {
                    self.clear_then(policy, pin, Then::Restart(why), now, out);
                } else {
                    self.phase = Phase::Stopping {
                        pin,
                        step: StopStep::Settle,
                        deadline: now + policy.stop_timeout.min(SETTLE),
                        script: false,
                        dead,
                        why,
                    };
                }
            }
            // A stray exit: a script of a phase that is over.
            _ => {}
        }
    }

    /// A restart of a running service (its stop half starts here); asked for a service that is
    /// not running, it changes nothing: that one is started by its own path.
    fn restart_requested(
        &mut self,
        policy: &Policy,
        why: RestartWhy,
        now: Mono,
        out: &mut Actions,
    ) {
        let Phase::Running { pin } = self.phase else {
            return;
        };
        if self.ending {
            push(out, Action::Log(Note::NotRestarting(why)));
            return;
        }
        push(out, Action::Log(Note::Restarting(why)));
        let deadline = now + policy.stop_timeout;
        let (step, script) = if policy.has_stop {
            (StopStep::Script, true)
        } else {
            (StopStep::Term, false)
        };
        self.phase = Phase::Stopping {
            pin,
            step,
            deadline,
            script,
            dead: false,
            why,
        };
        let action = if script {
            Action::RunStop { pin, why }
        } else {
            Action::Signal {
                pin,
                signal: libc::SIGTERM,
                why: SignalWhy::NoStopScript,
            }
        };
        push(out, action);
    }

    /// While clearing: the leftovers the last sweep found still there.
    fn leftovers_counted(&mut self, policy: &Policy, n: u16, now: Mono, out: &mut Actions) {
        match self.phase {
            Phase::Clearing { then, .. } if n == 0 && !self.unreaped => {
                self.then(policy, then, now, out)
            }
            Phase::Clearing { .. } => self.leftovers = n,
            _ => {}
        }
    }

    /// The dead main process has been reaped by its parent.
    fn reaped(&mut self, policy: &Policy, now: Mono, out: &mut Actions) {
        self.unreaped = false;
        if let Phase::Clearing { then, .. } = self.phase {
            if self.leftovers == 0 {
                self.then(policy, then, now, out);
            }
        }
    }

    /// A command from the operator.
    fn operator(&mut self, policy: &Policy, op: Op, now: Mono, out: &mut Actions) {
        match op {
            Op::Stop => self.operator_stop(policy, now, out),
            Op::Unmonitor => {
                if self.phase != Phase::Unmonitored {
                    self.unmonitor(Note::Unmonitored, out);
                }
            }
            Op::Adopt => {
                if let Phase::Held { pin, .. } = self.phase {
                    // The operator says the held process is the service.
                    self.fails = 0;
                    self.restarts.clear();
                    self.phase = Phase::Running { pin };
                    push(out, Action::Pinned { pin, adopted: true });
                }
            }
            Op::Start | Op::Monitor | Op::Restart => self.operator_start(policy, op, now, out),
        }
    }

    /// `custos stop`: a graceful stop of what runs, and no monitoring until `start`.
    fn operator_stop(&mut self, policy: &Policy, now: Mono, out: &mut Actions) {
        match self.phase {
            Phase::Clearing {
                pin,
                step,
                deadline,
                ..
            } => {
                // What was to follow becomes a stop: the leftovers are still stopped first.
                let then = Then::Restart(RestartWhy::OperatorStop);
                self.phase = Phase::Clearing {
                    pin,
                    step,
                    deadline,
                    then,
                };
            }
            Phase::Running { .. } => {
                self.restart_requested(policy, RestartWhy::OperatorStop, now, out)
            }
            Phase::Stopping { ref mut why, .. } => {
                // A restart under way becomes a stop.
                *why = RestartWhy::OperatorStop;
            }
            Phase::Unmonitored => {}
            Phase::Starting { .. } => {
                // The start script may already have forked the daemon: let the start finish,
                // then stop what it started, gracefully.
                self.stop_pending = true;
                push(out, Action::Log(Note::StopPending));
            }
            _ => self.unmonitor(Note::Stopped, out),
        }
    }

    /// Not watched any more; what runs is left as it is (a script under way is killed).
    fn unmonitor(&mut self, note: Note, out: &mut Actions) {
        if let Phase::Starting { script: true, .. } = self.phase {
            push(out, Action::KillScript(Script::Start));
        }
        if self.pin().is_some() {
            push(out, Action::Unpin);
        }
        self.phase = Phase::Unmonitored;
        push(out, Action::Log(note));
    }

    /// `custos start`, `monitor` or `restart`.
    fn operator_start(&mut self, policy: &Policy, op: Op, now: Mono, out: &mut Actions) {
        match (self.phase, op) {
            // Under way already: what was asked for happens when it is over.
            (Phase::Clearing { .. } | Phase::Stopping { .. }, _)
            | (Phase::Running { .. }, Op::Start | Op::Monitor) => {}
            (Phase::Running { .. }, _) => {
                self.restart_requested(policy, RestartWhy::Operator, now, out)
            }
            (Phase::Held { pin, .. }, Op::Start) => {
                // The operator says the held process is not the service: start it, and leave
                // that process alone.
                self.fails = 0;
                self.restarts.clear();
                self.start(policy, StartWhy::OverHeld(pin.pid), now, out);
            }
            (Phase::Starting { .. }, _) => {
                // The start under way is what was asked for.
                self.stop_pending = false;
            }
            _ => {
                // Unknown, Waiting, GivenUp, Ambiguous, Held, Unmonitored: look again with a clean
                // slate; the next probe adopts a running process or starts a missing one.
                self.clear_fails();
                self.restarts.clear();
                self.phase = Phase::Unknown;
                push(out, Action::Log(Note::Monitored));
            }
        }
    }
}

//! The state machine: one event, in the phase the service is in, gives the next phase and the
//! actions. `decide` sorts the event by its family; each family reads as its transitions.

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
            },
            (_, e) => e,
        };
        match (self.phase, event) {
            // ---- identity found
            (
                Phase::Unknown
                | Phase::Waiting { .. }
                | Phase::GivenUp
                | Phase::Held(_)
                | Phase::Unverified { .. },
                Event::Observed(Observation::Alive(pin)),
            ) => {
                self.phase = Phase::Running { pin };
                self.stable_at =
                    (self.fails > 0).then(|| pin.started + policy.restart.stable_after);
                push(&mut out, Action::Pinned { pin, adopted: true });
            }
            (Phase::Starting { script: false, .. }, Event::Observed(Observation::Alive(pin))) => {
                self.phase = Phase::Running { pin };
                self.stable_at =
                    (self.fails > 0).then(|| pin.started + policy.restart.stable_after);
                push(
                    &mut out,
                    Action::Pinned {
                        pin,
                        adopted: false,
                    },
                );
                if std::mem::take(&mut self.stop_pending) {
                    let more = self.decide(
                        policy,
                        Event::RestartRequested(RestartWhy::OperatorStop),
                        now,
                    );
                    for a in more {
                        push(&mut out, a);
                    }
                }
            }
            // ---- a start looks for its process: remember why it is not there yet
            (
                Phase::Starting { script: false, .. } | Phase::Waiting { .. },
                Event::Observed(o @ (Observation::Absent(_) | Observation::Unverified(..))),
            ) if !matches!(
                (self.phase, o),
                (Phase::Waiting { .. }, Observation::Unverified(..))
            ) =>
            {
                if let Observation::Absent(a) = o {
                    if a.leaves_a_process_alone() && self.seen != Some(o) {
                        push(&mut out, Action::Log(Note::LeftAlone(a)));
                    }
                }
                self.seen = Some(o);
            }
            // ---- a live process that can be neither verified nor ruled out: hold
            (
                Phase::Unknown | Phase::Waiting { .. } | Phase::Held(_) | Phase::Unverified { .. },
                Event::Observed(Observation::Unverified(pin, doubt)),
            ) => {
                if self.phase != (Phase::Unverified { pin, doubt }) {
                    push(&mut out, Action::Log(Note::Held { pin, doubt }));
                }
                self.phase = Phase::Unverified { pin, doubt };
            }
            // ---- nothing there at start-up: only start, never stop first
            (
                Phase::Unknown | Phase::Held(_) | Phase::Unverified { .. },
                Event::Observed(Observation::Absent(why)),
            ) => {
                self.start(policy, StartWhy::NotRunning(why), now, &mut out);
            }
            (
                Phase::Unknown
                | Phase::Held(_)
                | Phase::Unverified { .. }
                | Phase::Waiting { .. }
                | Phase::Starting { script: false, .. },
                Event::Observed(Observation::Ambiguous(n)),
            ) => {
                if !matches!(self.phase, Phase::Held(m) if m == n) {
                    push(&mut out, Action::Log(Note::Ambiguous(n)));
                }
                if std::mem::take(&mut self.stop_pending) {
                    push(&mut out, Action::Log(Note::StopDropped));
                }
                // Held, whatever was under way: a start now could only add another look-alike.
                self.phase = Phase::Held(n);
            }
            // ---- the pinned process died
            (Phase::Running { pin }, Event::Died { pid, cause }) if pid == pin.pid => {
                self.died(
                    policy,
                    pin,
                    cause,
                    now.saturating_sub(pin.started),
                    now,
                    &mut out,
                );
            }
            // ---- a run after failures has lasted stable_after
            (Phase::Running { .. }, Event::Deadline)
                if self.stable_at.is_some_and(|t| now >= t) =>
            {
                if self.crash_looping(&policy.restart) {
                    push(
                        &mut out,
                        Action::Log(Note::Recovered {
                            fails: self.fails,
                            stable_after: policy.restart.stable_after,
                        }),
                    );
                }
                self.clear_fails();
            }
            // ---- backoff over
            (Phase::Waiting { why, .. }, Event::Deadline) => {
                self.start(policy, why, now, &mut out);
            }
            // ---- start script outcome
            (
                Phase::Starting {
                    deadline,
                    script: true,
                },
                Event::ScriptExited {
                    script: Script::Start,
                    cause,
                },
            ) => {
                if cause == Cause::Exited(0) {
                    self.phase = Phase::Starting {
                        deadline,
                        script: false,
                    };
                } else {
                    self.start_failed(policy, StartFailure::ScriptStatus(cause), now, &mut out);
                }
            }
            (Phase::Starting { script: true, .. }, Event::SpawnFailed(errno)) => {
                self.start_failed(policy, StartFailure::Spawn(errno), now, &mut out);
            }
            (Phase::Starting { script, .. }, Event::Deadline) => {
                let failure = if script {
                    push(&mut out, Action::KillScript(Script::Start));
                    StartFailure::ScriptTimeout(policy.start_timeout)
                } else {
                    match self.seen.take() {
                        Some(Observation::Unverified(pin, doubt)) => {
                            // Never a second copy on doubt: hold, and say why.
                            self.phase = Phase::Unverified { pin, doubt };
                            push(&mut out, Action::Log(Note::Held { pin, doubt }));
                            if std::mem::take(&mut self.stop_pending) {
                                push(&mut out, Action::Log(Note::StopDropped));
                            }
                            return out;
                        }
                        Some(Observation::Absent(a)) => {
                            StartFailure::NoProcess(policy.start_timeout, Some(a))
                        }
                        _ => StartFailure::NoProcess(policy.start_timeout, None),
                    }
                };
                self.start_failed(policy, failure, now, &mut out);
            }
            // ---- a restart of a running service
            (Phase::Running { .. }, Event::RestartRequested(why)) if self.ending => {
                push(&mut out, Action::Log(Note::NotRestarting(why)));
            }
            (Phase::Running { pin, .. }, Event::RestartRequested(why)) => {
                push(&mut out, Action::Log(Note::Restarting(why)));
                let deadline = now + policy.stop_timeout;
                if policy.has_stop {
                    self.phase = Phase::Stopping {
                        pin,
                        step: StopStep::Script,
                        deadline,
                        script: true,
                        dead: false,
                        why,
                    };
                    push(&mut out, Action::RunStop { pin, why });
                } else {
                    self.phase = Phase::Stopping {
                        pin,
                        step: StopStep::Term,
                        deadline,
                        script: false,
                        dead: false,
                        why,
                    };
                    push(
                        &mut out,
                        Action::Signal {
                            pin,
                            signal: libc::SIGTERM,
                            why: SignalWhy::NoStopScript,
                        },
                    );
                }
            }
            (
                Phase::Stopping {
                    pin,
                    step,
                    deadline,
                    script,
                    dead: false,
                    why,
                },
                Event::Died { pid, cause },
            ) if pid == pin.pid => {
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
                push(&mut out, Action::Log(note));
                push(&mut out, Action::Unpin);
                if script {
                    self.phase = Phase::Stopping {
                        pin,
                        step,
                        deadline,
                        script,
                        dead: true,
                        why,
                    };
                } else {
                    self.clear_then(policy, pin, Then::Restart(why), now, &mut out);
                }
            }
            (
                Phase::Stopping { pin, dead, why, .. },
                Event::ScriptExited {
                    script: Script::Stop,
                    cause,
                },
            ) => {
                push(&mut out, Action::Log(Note::StopScriptExited(cause)));
                if dead {
                    self.clear_then(policy, pin, Then::Restart(why), now, &mut out);
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
            (
                Phase::Stopping {
                    pin,
                    step,
                    script,
                    dead,
                    why,
                    ..
                },
                Event::Deadline,
            ) => {
                let deadline = now + policy.stop_timeout;
                if script {
                    push(&mut out, Action::KillScript(Script::Stop));
                }
                if dead {
                    self.clear_then(policy, pin, Then::Restart(why), now, &mut out);
                } else {
                    match step {
                        StopStep::Script | StopStep::Settle => {
                            self.phase = Phase::Stopping {
                                pin,
                                step: StopStep::Term,
                                deadline,
                                script: false,
                                dead,
                                why,
                            };
                            push(
                                &mut out,
                                Action::Signal {
                                    pin,
                                    signal: libc::SIGTERM,
                                    why: SignalWhy::StopScriptLeftIt,
                                },
                            );
                        }
                        StopStep::Term => {
                            self.phase = Phase::Stopping {
                                pin,
                                step: StopStep::Kill,
                                deadline,
                                script: false,
                                dead,
                                why,
                            };
                            push(
                                &mut out,
                                Action::Signal {
                                    pin,
                                    signal: libc::SIGKILL,
                                    why: SignalWhy::TermTimeout(policy.stop_timeout),
                                },
                            );
                        }
                        StopStep::Kill => {
                            self.phase = Phase::Stopping {
                                pin,
                                step,
                                deadline,
                                script: false,
                                dead,
                                why,
                            };
                            push(
                                &mut out,
                                Action::Log(Note::SurvivesKill {
                                    pin,
                                    waited: policy.stop_timeout,
                                }),
                            );
                        }
                    }
                }
            }
            // ---- a dead instance's leftovers are being stopped
            (Phase::Clearing { then, .. }, Event::Leftovers(0)) => {
                self.then(policy, then, now, &mut out);
            }
            (
                Phase::Clearing {
                    pin,
                    step: ClearStep::Term,
                    then,
                    ..
                },
                Event::Deadline,
            ) => {
                self.phase = Phase::Clearing {
                    pin,
                    step: ClearStep::Kill,
                    deadline: now + LEFTOVERS_KILL_WAIT,
                    then,
                };
                push(
                    &mut out,
                    Action::Sweep {
                        pin,
                        signal: libc::SIGKILL,
                    },
                );
            }
            (
                Phase::Clearing {
                    pin,
                    step: ClearStep::Kill,
                    then,
                    ..
                },
                Event::Deadline,
            ) => {
                push(
                    &mut out,
                    Action::Log(Note::LeftoversSurvive {
                        pin,
                        count: self.leftovers,
                        waited: LEFTOVERS_KILL_WAIT,
                    }),
                );
                self.then(policy, then, now, &mut out);
            }
            (Phase::Clearing { .. }, Event::Leftovers(n)) => self.leftovers = n,
            (
                Phase::Clearing {
                    pin,
                    step,
                    deadline,
                    ..
                },
                Event::Operator(Op::Stop),
            ) => {
                // What was to follow becomes a stop: the leftovers are still stopped first.
                self.phase = Phase::Clearing {
                    pin,
                    step,
                    deadline,
                    then: Then::Restart(RestartWhy::OperatorStop),
                };
            }
            (Phase::Clearing { .. }, Event::Operator(Op::Start | Op::Monitor | Op::Restart)) => {}
            // ---- operator commands
            (Phase::Running { .. }, Event::Operator(Op::Stop)) => {
                return self.decide(
                    policy,
                    Event::RestartRequested(RestartWhy::OperatorStop),
                    now,
                );
            }
            (Phase::Running { .. }, Event::Operator(Op::Restart)) => {
                return self.decide(policy, Event::RestartRequested(RestartWhy::Operator), now);
            }
            (
                Phase::Running { .. } | Phase::Stopping { .. },
                Event::Operator(Op::Start | Op::Monitor),
            ) => {}
            (
                Phase::Stopping {
                    pin,
                    step,
                    deadline,
                    script,
                    dead,
                    ..
                },
                Event::Operator(Op::Stop),
            ) => {
                // A restart under way becomes a stop.
                self.phase = Phase::Stopping {
                    pin,
                    step,
                    deadline,
                    script,
                    dead,
                    why: RestartWhy::OperatorStop,
                };
            }
            (Phase::Stopping { .. }, Event::Operator(Op::Restart)) => {}
            (Phase::Unverified { pin, .. }, Event::Operator(Op::Adopt)) => {
                // The operator says the held process is the service.
                self.fails = 0;
                self.restarts.clear();
                self.phase = Phase::Running { pin };
                push(&mut out, Action::Pinned { pin, adopted: true });
            }
            (_, Event::Operator(Op::Adopt)) => {}
            (Phase::Unverified { pin, .. }, Event::Operator(Op::Start)) => {
                // The operator says the held process is not the service: start it, and leave
                // that process alone.
                self.fails = 0;
                self.restarts.clear();
                self.start(policy, StartWhy::OverHeld(pin.pid), now, &mut out);
            }
            (Phase::Unmonitored, Event::Operator(Op::Stop | Op::Unmonitor)) => {}
            (Phase::Starting { .. }, Event::Operator(Op::Stop)) => {
                // The start script may already have forked the daemon: let the start finish,
                // then stop what it started, gracefully.
                self.stop_pending = true;
                push(&mut out, Action::Log(Note::StopPending));
            }
            (_, Event::Operator(Op::Stop | Op::Unmonitor)) => {
                if let Phase::Starting { script: true, .. } = self.phase {
                    push(&mut out, Action::KillScript(Script::Start));
                }
                if self.pin().is_some() {
                    push(&mut out, Action::Unpin);
                }
                self.phase = Phase::Unmonitored;
                let note = if event == Event::Operator(Op::Stop) {
                    Note::Stopped
                } else {
                    Note::Unmonitored
                };
                push(&mut out, Action::Log(note));
            }
            (Phase::Starting { .. }, Event::Operator(_)) => {
                // Start, monitor, restart: the start under way is what was asked for.
                self.stop_pending = false;
            }
            (_, Event::Operator(Op::Start | Op::Monitor | Op::Restart)) => {
                // Unknown, Waiting, GivenUp, Held, Unmonitored: look again with a clean slate;
                // the next probe adopts a running process or starts a missing one.
                self.clear_fails();
                self.restarts.clear();
                self.phase = Phase::Unknown;
                push(&mut out, Action::Log(Note::Monitored));
            }
            // Everything else changes nothing: a death of a PID that is not pinned, a restart
            // asked for a service that is not running (it will be started by its own path),
            // a stray script exit, an observation while a script runs.
            _ => {}
        }
        // A stop asked during a start belongs to that start: whichever way the start ended,
        // it must never stop a later one.
        if !matches!(self.phase, Phase::Starting { .. }) {
            self.stop_pending = false;
        }
        out
    }
}

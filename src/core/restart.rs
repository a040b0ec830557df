//! What follows a death, a failed start or a finished stop: leftovers, backoff, the restart
//! window, giving up, and the start itself.

use super::*;

impl ServiceState {
    pub(super) fn died(
        &mut self,
        policy: &Policy,
        pin: Pin,
        cause: Cause,
        uptime: Duration,
        now: Mono,
        out: &mut Actions,
    ) {
        self.last_death = Some(cause);
        push(
            out,
            Action::Log(Note::Died {
                pin,
                cause,
                uptime,
                during_stop: false,
            }),
        );
        push(out, Action::Unpin);
        self.stable_at = None;
        self.clear_then(policy, pin, Then::Died { cause, uptime }, now, out);
    }

    /// The main process `pin` is gone: stop its instance's leftovers first when the policy
    /// says so (`then` follows once they are gone), or go on with `then` at once. Either way,
    /// when `pin` is a zombie another parent has yet to reap, `then` waits (at most
    /// REAP_WAIT) until it is gone: a start script's `kill -0 $(cat pidfile)` would take it for
    /// the daemon and start nothing.
    pub(super) fn clear_then(
        &mut self,
        policy: &Policy,
        pin: Pin,
        then: Then,
        now: Mono,
        out: &mut Actions,
    ) {
        self.leftovers = 0;
        if !policy.stop_leftovers {
            if !self.unreaped {
                self.then(policy, then, now, out);
                return;
            }
            self.phase = Phase::Clearing {
                pin,
                step: ClearStep::Reap,
                deadline: now + REAP_WAIT,
                then,
            };
            push(out, Action::Log(Note::AwaitingReap { pin }));
            return;
        }
        if self.unreaped {
            push(out, Action::Log(Note::AwaitingReap { pin }));
        }
        self.phase = Phase::Clearing {
            pin,
            step: ClearStep::Term,
            deadline: now + policy.stop_timeout.min(LEFTOVERS_GRACE),
            then,
        };
        push(
            out,
            Action::Sweep {
                pin,
                signal: libc::SIGTERM,
            },
        );
    }

    /// A deadline of clearing a dead instance: SIGKILL for leftovers still there after
    /// SIGTERM; after SIGKILL, or while only the reap of the dead main process was awaited,
    /// what follows goes on, saying what is still there.
    pub(super) fn clearing_deadline(
        &mut self,
        policy: &Policy,
        pin: Pin,
        step: ClearStep,
        then: Then,
        now: Mono,
        out: &mut Actions,
    ) {
        match step {
            // Nothing left to kill: only the dead main process is not reaped yet.
            // Nothing left to kill: only the dead main process is not reaped yet; the wait for
            // it comes to REAP_WAIT in all.
            ClearStep::Term if self.leftovers == 0 => {
                let grace = policy.stop_timeout.min(LEFTOVERS_GRACE);
                self.phase = Phase::Clearing {
                    pin,
                    step: ClearStep::Reap,
                    deadline: now + REAP_WAIT.saturating_sub(grace),
                    then,
                };
            }
            ClearStep::Term => {
                self.phase = Phase::Clearing {
                    pin,
                    step: ClearStep::Kill,
                    deadline: now + LEFTOVERS_KILL_WAIT,
                    then,
                };
                let signal = libc::SIGKILL;
                push(out, Action::Sweep { pin, signal });
            }
            // After SIGKILL none left, or no leftovers at all: only the reap was awaited.
            ClearStep::Reap if self.leftovers == 0 => {
                let waited = REAP_WAIT;
                push(out, Action::Log(Note::NotReaped { pin, waited }));
                self.then(policy, then, now, out);
            }
            ClearStep::Kill if self.leftovers == 0 => {
                let waited = policy.stop_timeout.min(LEFTOVERS_GRACE) + LEFTOVERS_KILL_WAIT;
                push(out, Action::Log(Note::NotReaped { pin, waited }));
                self.then(policy, then, now, out);
            }
            ClearStep::Reap | ClearStep::Kill => {
                let count = self.leftovers;
                let waited = LEFTOVERS_KILL_WAIT;
                push(
                    out,
                    Action::Log(Note::LeftoversSurvive { pin, count, waited }),
                );
                self.then(policy, then, now, out);
            }
        }
    }

    /// What follows a dead instance (its leftovers gone, or not to be stopped).
    pub(super) fn then(&mut self, policy: &Policy, then: Then, now: Mono, out: &mut Actions) {
        self.leftovers = 0;
        self.unreaped = false;
        match then {
            Then::Died { cause, uptime } => self.after_death(policy, cause, uptime, now, out),
            Then::Restart(why) => self.restart_start(policy, why, now, out),
        }
    }

    /// After a death by itself: a stable run is started again at once, a failure in a row
    /// waits out its backoff.
    pub(super) fn after_death(
        &mut self,
        policy: &Policy,
        cause: Cause,
        uptime: Duration,
        now: Mono,
        out: &mut Actions,
    ) {
        if self.ending {
            self.not_starting(StartWhy::Died(cause), out);
            return;
        }
        if uptime >= policy.restart.stable_after {
            // A death after a stable run: started again at once, no backoff. Only failures in a
            // row (runs shorter than stable_after, failed starts) wait.
            self.clear_fails();
            if self.window_full(&policy.restart, now) {
                self.give_up(policy, out);
            } else {
                self.start(policy, StartWhy::Died(cause), now, out);
            }
            return;
        }
        self.fails = self.fails.saturating_add(1);
        self.schedule(policy, StartWhy::Died(cause), now, out);
    }

    pub(super) fn start_failed(
        &mut self,
        policy: &Policy,
        failure: StartFailure,
        now: Mono,
        out: &mut Actions,
    ) {
        push(out, Action::Log(Note::StartFailed(failure)));
        if std::mem::take(&mut self.stop_pending) {
            self.phase = Phase::Unmonitored;
            push(out, Action::Log(Note::Stopped));
            return;
        }
        self.fails = self.fails.saturating_add(1);
        self.schedule(policy, StartWhy::Failed(failure), now, out);
    }

    /// After a failure: wait out the backoff, or give up when the window is full.
    pub(super) fn schedule(
        &mut self,
        policy: &Policy,
        why: StartWhy,
        now: Mono,
        out: &mut Actions,
    ) {
        if self.ending {
            self.not_starting(why, out);
            return;
        }
        let r = &policy.restart;
        if self.window_full(r, now) {
            self.give_up(policy, out);
            return;
        }
        let delay = backoff(r, self.fails);
        self.phase = Phase::Waiting {
            until: now + delay,
            why,
        };
        if !self.crash_looping(r) {
            push(out, Action::Log(Note::Backoff { delay, why }));
            return;
        }
        // Crash-looping: each attempt still logs its death and its start with the cause; the
        // loop itself is said when it begins and each time the failures in a row double.
        if self.loop_note == 0 || self.fails >= self.loop_note {
            self.loop_note = self.fails.saturating_mul(2);
            push(
                out,
                Action::Log(Note::CrashLooping {
                    fails: self.fails,
                    every: delay,
                    stable_after: r.stable_after,
                    limit: r.max_restarts.map(|n| (n, r.window)),
                }),
            );
        }
    }

    /// Whether `max_restarts` restarts happened within `window`; never without a limit.
    pub(super) fn window_full(&mut self, r: &RestartPolicy, now: Mono) -> bool {
        let Some(max) = r.max_restarts else {
            return false;
        };
        while let Some(&first) = self.restarts.first() {
            if now.saturating_sub(first) >= r.window {
                self.restarts.remove(0);
            } else {
                break;
            }
        }
        self.restarts.len() >= max as usize
    }

    /// The start half of a requested restart: counts against max_restarts, no backoff.
    pub(super) fn restart_start(
        &mut self,
        policy: &Policy,
        why: RestartWhy,
        now: Mono,
        out: &mut Actions,
    ) {
        if why == RestartWhy::OperatorStop {
            self.phase = Phase::Unmonitored;
            push(out, Action::Log(Note::Stopped));
            return;
        }
        if self.window_full(&policy.restart, now) {
            self.give_up(policy, out);
            return;
        }
        self.start(policy, StartWhy::Restart(why), now, out);
    }

    /// Too many restarts within the window: stop trying, and reboot the board when configured.
    pub(super) fn give_up(&mut self, policy: &Policy, out: &mut Actions) {
        let r = &policy.restart;
        self.phase = Phase::GivenUp;
        push(
            out,
            Action::Log(Note::GivenUp {
                restarts: r.max_restarts.unwrap_or(0),
                window: r.window,
            }),
        );
        if r.on_exhausted == OnExhausted::Reboot && !self.ending {
            push(out, Action::Reboot);
        }
    }

    /// While the system shuts down: what would have been started stays as it is, unmonitored.
    pub(super) fn not_starting(&mut self, why: StartWhy, out: &mut Actions) {
        self.phase = Phase::Unmonitored;
        push(out, Action::Log(Note::NotStarting(why)));
    }

    pub(super) fn start(&mut self, policy: &Policy, why: StartWhy, now: Mono, out: &mut Actions) {
        if self.ending {
            self.not_starting(why, out);
            return;
        }
        let is_restart = !matches!(why, StartWhy::NotRunning(_) | StartWhy::OverHeld(_));
        if is_restart {
            if self.restarts.is_full() {
                self.restarts.remove(0);
            }
            let _ = self.restarts.push(now);
            self.total_restarts = self.total_restarts.saturating_add(1);
        }
        // Only a start that waited out a backoff says so; a requested restart starts at once.
        let after = match why {
            StartWhy::Died(_) | StartWhy::Failed(_) if self.fails > 0 => {
                Some(backoff(&policy.restart, self.fails))
            }
            _ => None,
        };
        self.phase = Phase::Starting {
            deadline: now + policy.start_timeout,
            script: true,
        };
        self.seen = None;
        push(
            out,
            Action::Start {
                attempt: self.fails.saturating_add(1),
                after,
                why,
            },
        );
    }
}

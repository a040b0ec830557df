use super::*;

const PIN: Pin = Pin {
    pid: 4242,
    start_ticks: 777,
    started: Duration::ZERO,
};
const OTHER: Pin = Pin {
    pid: 4243,
    start_ticks: 9,
    started: Duration::ZERO,
};

fn policy(has_stop: bool) -> Policy {
    Policy {
        restart: RestartPolicy {
            backoff: Duration::from_millis(500),
            backoff_max: Duration::from_secs(4),
            stable_after: Duration::from_secs(60),
            max_restarts: Some(3),
            window: Duration::from_secs(600),
            ..RestartPolicy::default()
        },
        start_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(5),
        has_stop,
        stop_leftovers: false,
    }
}

fn s(n: u64) -> Mono {
    Duration::from_secs(n)
}

/// A service whose process PIN is pinned and running.
fn running() -> ServiceState {
    ServiceState {
        phase: Phase::Running { pin: PIN },
        ..Default::default()
    }
}

fn all_phases() -> Vec<Phase> {
    let why = RestartWhy::Operator;
    let mut v = vec![
        Phase::Unknown,
        Phase::Running { pin: PIN },
        Phase::Waiting {
            until: s(2),
            why: StartWhy::Died(Cause::Exited(1)),
        },
        Phase::Starting {
            deadline: s(3),
            script: true,
        },
        Phase::Starting {
            deadline: s(3),
            script: false,
        },
        Phase::GivenUp,
        Phase::Ambiguous(2),
        Phase::Held {
            pin: OTHER,
            doubt: Doubt::Older,
        },
        Phase::Unmonitored,
    ];
    for step in [ClearStep::Term, ClearStep::Kill, ClearStep::Reap] {
        for then in [
            Then::Died {
                cause: Cause::Exited(1),
                uptime: s(1),
            },
            Then::Restart(why),
            Then::Restart(RestartWhy::OperatorStop),
        ] {
            v.push(Phase::Clearing {
                pin: PIN,
                step,
                deadline: s(4),
                then,
            });
        }
    }
    for step in [StopStep::Script, StopStep::Term, StopStep::Kill] {
        for script in [true, false] {
            for dead in [true, false] {
                v.push(Phase::Stopping {
                    pin: PIN,
                    step,
                    deadline: s(4),
                    script,
                    dead,
                    why,
                });
            }
        }
    }
    v
}

fn all_events() -> Vec<Event> {
    vec![
        Event::Observed(Observation::Alive(PIN)),
        Event::Observed(Observation::Alive(OTHER)),
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        Event::Observed(Observation::Absent(Absent::StalePidfile(OTHER.pid))),
        Event::Observed(Observation::Absent(Absent::PinGone)),
        Event::Observed(Observation::Ambiguous(2)),
        Event::Observed(Observation::Ambiguous(3)),
        Event::Observed(Observation::Unverified(OTHER, Doubt::Future)),
        Event::Observed(Observation::Unverified(PIN, Doubt::Older)),
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: Cause::Killed {
                signal: 9,
                core: false,
            },
        },
        Event::Died {
            pid: OTHER.pid,
            reaped: true,
            cause: Cause::Exited(3),
        },
        Event::Reaped,
        // Dead, and a zombie another parent has not reaped yet.
        Event::Died {
            pid: PIN.pid,
            cause: Cause::Exited(0),
            reaped: false,
        },
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(1),
        },
        Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Exited(0),
        },
        Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Killed {
                signal: 9,
                core: false,
            },
        },
        Event::SpawnFailed(libc::ENOENT),
        Event::Deadline,
        Event::RestartRequested(RestartWhy::Operator),
        Event::RestartRequested(RestartWhy::CheckFailed {
            check: 0,
            failures: 3,
        }),
        Event::Operator(Op::Start),
        Event::Operator(Op::Stop),
        Event::Operator(Op::Restart),
        Event::Operator(Op::Monitor),
        Event::Operator(Op::Unmonitor),
        Event::Operator(Op::Adopt),
        Event::Leftovers(0),
        Event::Leftovers(2),
    ]
}

/// Signal only what is identified, never stop what is not running, over every state × event:
/// a signal only ever goes to the process that is pinned and believed alive in the state
/// before the event; a stop script only runs for a running service; nothing is started while
/// a pinned process is believed alive.
#[test]
fn every_state_and_event_keeps_the_rules() {
    for (has_stop, stop_leftovers) in [(true, false), (false, false), (true, true), (false, true)] {
        let pol = Policy {
            stop_leftovers,
            ..policy(has_stop)
        };
        for phase in all_phases() {
            for event in all_events() {
                let mut st = ServiceState {
                    phase,
                    ..ServiceState::default()
                };
                let before = st.pin();
                let actions = st.decide(&pol, event, s(100));
                let ctx = format!("{phase:?} + {event:?} -> {actions:?}");
                assert!(actions.len() < MAX_ACTIONS, "action list near full: {ctx}");
                for a in &actions {
                    match *a {
                        Action::Signal { pin, .. } => {
                            assert_eq!(Some(pin), before, "signal to an unpinned process: {ctx}");
                        }
                        Action::RunStop { pin, .. } => {
                            assert!(
                                matches!(phase, Phase::Running { pin: p, .. } if p == pin),
                                "stop of a service not running: {ctx}"
                            );
                            assert!(has_stop, "{ctx}");
                        }
                        Action::Sweep { pin, .. } => {
                            // Only for the main process of this instance, once it is dead,
                            // and only when leftovers are to be stopped.
                            let dead_main = match phase {
                                Phase::Running { pin: p }
                                | Phase::Stopping { pin: p, .. }
                                | Phase::Clearing { pin: p, .. } => p == pin,
                                _ => false,
                            };
                            assert!(dead_main && st.pin().is_none(), "sweep while alive: {ctx}");
                            // (A reload may set "keep" while a clearing runs: it finishes.)
                            assert!(
                                stop_leftovers || matches!(phase, Phase::Clearing { .. }),
                                "sweep with leftovers = keep: {ctx}"
                            );
                            assert!(
                                !actions.iter().any(|a| matches!(a, Action::Start { .. })),
                                "start before the leftovers are gone: {ctx}"
                            );
                        }
                        Action::Start { .. } => {
                            assert!(
                                !matches!(event, Event::Died { pid, reaped: false, .. } if before.is_some_and(|p| p.pid == pid)),
                                "start while the dead process is not reaped: {ctx}"
                            );
                            let died_now = actions.iter().any(|a| matches!(a, Action::Unpin));
                            assert!(
                                before.is_none() || died_now,
                                "start while pinned process alive: {ctx}"
                            );
                        }
                        _ => {}
                    }
                }
                if let Event::Observed(Observation::Unverified(..)) = event {
                    assert!(
                        !actions
                            .iter()
                            .any(|a| matches!(a, Action::Start { .. } | Action::Pinned { .. })),
                        "started or pinned on doubt: {ctx}"
                    );
                }
                if let Event::Observed(Observation::Ambiguous(_)) = event {
                    assert!(
                        !actions.iter().any(|a| matches!(a, Action::Start { .. })),
                        "started while identity is ambiguous: {ctx}"
                    );
                    if !matches!(
                        phase,
                        Phase::Running { .. }
                            | Phase::Stopping { .. }
                            | Phase::Clearing { .. }
                            | Phase::GivenUp
                            | Phase::Unmonitored
                            | Phase::Starting { script: true, .. }
                    ) {
                        assert!(matches!(st.phase, Phase::Ambiguous(_)), "{ctx}");
                    }
                }
                // A death of another PID never changes anything.
                if let Event::Died { pid, .. } = event {
                    if pid != PIN.pid {
                        assert!(actions.is_empty(), "{ctx}");
                        assert_eq!(st.phase, phase, "{ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn found_running_at_startup_is_adopted_not_restarted() {
    let mut st = ServiceState::default();
    let a = st.decide(
        &policy(true),
        Event::Observed(Observation::Alive(PIN)),
        s(0),
    );
    assert_eq!(
        a.as_slice(),
        &[Action::Pinned {
            pin: PIN,
            adopted: true
        }]
    );
    assert_eq!(st.phase, Phase::Running { pin: PIN });
}

#[test]
fn not_running_at_startup_is_only_started() {
    let mut st = ServiceState::default();
    let why = StartWhy::NotRunning(Absent::StalePidfile(99));
    let a = st.decide(
        &policy(true),
        Event::Observed(Observation::Absent(Absent::StalePidfile(99))),
        s(0),
    );
    assert_eq!(
        a.as_slice(),
        &[Action::Start {
            attempt: 1,
            after: None,
            why
        }]
    );
    assert_eq!(st.total_restarts, 0);
}

#[test]
fn a_death_waits_out_the_backoff_then_starts_with_its_cause() {
    let p = policy(true);
    let mut st = running();
    let cause = Cause::Killed {
        signal: 9,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(5),
    );
    assert_eq!(
        a[0],
        Action::Log(Note::Died {
            pin: PIN,
            cause,
            uptime: s(5),
            during_stop: false
        })
    );
    assert_eq!(a[1], Action::Unpin);
    assert_eq!(
        st.phase,
        Phase::Waiting {
            until: s(5) + Duration::from_millis(500),
            why: StartWhy::Died(cause)
        }
    );
    assert_eq!(st.deadline(), Some(s(5) + Duration::from_millis(500)));
    let a = st.decide(&p, Event::Deadline, s(6));
    assert_eq!(
        a.as_slice(),
        &[Action::Start {
            attempt: 2,
            after: Some(Duration::from_millis(500)),
            why: StartWhy::Died(cause)
        }]
    );
    assert_eq!(
        Note::Died {
            pin: PIN,
            cause,
            uptime: s(5),
            during_stop: false
        }
        .to_string(),
        "died: killed by SIGKILL (pid 4242, up 5s)"
    );
}

#[test]
fn crash_loop_backs_off_doubling_then_gives_up() {
    let p = policy(true);
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    let mut delays = Vec::new();
    let mut t = s(0);
    for _ in 0..4 {
        st.decide(
            &p,
            Event::ScriptExited {
                script: Script::Start,
                cause: Cause::Exited(0),
            },
            t,
        );
        st.decide(&p, Event::Observed(Observation::Alive(PIN)), t);
        t += s(1);
        let a = st.decide(
            &p,
            Event::Died {
                pid: PIN.pid,
                reaped: true,
                cause: Cause::Exited(3),
            },
            t,
        );
        match st.phase {
            Phase::Waiting { until, .. } => {
                delays.push(until - t);
                t = until;
                st.decide(&p, Event::Deadline, t);
            }
            Phase::GivenUp => {
                assert!(a.contains(&Action::Log(Note::GivenUp {
                    restarts: 3,
                    window: s(600)
                })));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, vec![Duration::from_millis(500), s(1), s(2)]);
    assert_eq!(st.phase, Phase::GivenUp);
    // Given up: a death elsewhere, a deadline, a restart request change nothing.
    for e in [
        Event::Deadline,
        Event::RestartRequested(RestartWhy::Operator),
    ] {
        assert!(st.decide(&p, e, t).is_empty());
    }
}

#[test]
fn on_exhausted_reboot_asks_for_a_reboot_when_giving_up() {
    let mut p = policy(true);
    p.restart.on_exhausted = OnExhausted::Reboot;
    p.restart.max_restarts = Some(1);
    let mut st = running();
    let cause = Cause::Exited(1);
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(1),
    );
    st.decide(&p, Event::Deadline, s(2));
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(2),
    );
    st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(2));
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(3),
    );
    assert_eq!(a.last(), Some(&Action::Reboot), "{a:?}");
    assert_eq!(st.phase, Phase::GivenUp);
}

#[test]
fn operator_stop_is_graceful_and_leaves_it_unmonitored_until_start() {
    let p = policy(false);
    let mut st = running();
    let a = st.decide(&p, Event::Operator(Op::Stop), s(1));
    assert_eq!(
        a[0],
        Action::Log(Note::Restarting(RestartWhy::OperatorStop))
    );
    assert!(matches!(
        a[1],
        Action::Signal {
            pin: PIN,
            signal: libc::SIGTERM,
            ..
        }
    ));
    let cause = Cause::Killed {
        signal: 15,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(2),
    );
    assert_eq!(a.last(), Some(&Action::Log(Note::Stopped)), "{a:?}");
    assert_eq!(st.phase, Phase::Unmonitored);
    assert!(
        !st.wants_probe(),
        "an unmonitored service is not looked for, so not started"
    );
    assert!(st.decide(&p, Event::Deadline, s(3)).is_empty());
    st.decide(&p, Event::Operator(Op::Start), s(4));
    assert_eq!(st.phase, Phase::Unknown);
    let a = st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(4),
    );
    assert!(matches!(a[0], Action::Start { attempt: 1, .. }), "{a:?}");
}

/// A service whose start is under way (script exited 0, looking for the process) with a
/// `custos stop` pending.
fn starting_with_stop_pending(p: &Policy) -> ServiceState {
    let mut st = ServiceState::default();
    st.decide(
        p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    st.decide(
        p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(0),
    );
    let a = st.decide(p, Event::Operator(Op::Stop), s(1));
    assert_eq!(a.as_slice(), &[Action::Log(Note::StopPending)]);
    assert!(st.stop_pending);
    st
}

/// Brings a service from wherever it is to running PIN through a start, and then through a
/// death and a second start: a stop asked long ago must not stop either.
fn no_stale_stop_later(p: &Policy, mut st: ServiceState, ctx: &str) {
    assert!(!st.stop_pending, "{ctx}: still pending in {:?}", st.phase);
    st.phase = Phase::Unknown;
    let mut all = Vec::new();
    let mut t = s(100);
    all.extend(st.decide(
        p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        t,
    ));
    all.extend(st.decide(
        p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        t,
    ));
    all.extend(st.decide(p, Event::Observed(Observation::Alive(PIN)), t));
    t += s(1000);
    all.extend(st.decide(
        p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: Cause::Exited(1),
        },
        t,
    ));
    all.extend(st.decide(p, Event::Deadline, t + s(1)));
    all.extend(st.decide(
        p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        t + s(1),
    ));
    all.extend(st.decide(p, Event::Observed(Observation::Alive(OTHER)), t + s(1)));
    assert_eq!(st.phase, Phase::Running { pin: OTHER }, "{ctx}: {all:?}");
    assert!(
        !all.iter().any(|a| matches!(
            a,
            Action::RunStop { .. } | Action::Signal { .. } | Action::Log(Note::Restarting(_))
        )),
        "{ctx}: a stop asked long ago stopped an unrelated start: {all:?}"
    );
}

#[test]
fn a_pending_stop_ends_when_the_start_becomes_held() {
    let p = policy(true);
    let mut st = starting_with_stop_pending(&p);
    let a = st.decide(&p, Event::Observed(Observation::Ambiguous(2)), s(2));
    assert_eq!(st.phase, Phase::Ambiguous(2));
    assert!(a.contains(&Action::Log(Note::StopDropped)), "{a:?}");
    // Resolved later: adopted and left running, not stopped days later.
    let a = st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(3));
    assert_eq!(
        a.as_slice(),
        &[Action::Pinned {
            pin: PIN,
            adopted: true
        }]
    );
    no_stale_stop_later(&p, st, "held");
}

#[test]
fn a_pending_stop_ends_when_the_start_ends_any_way() {
    let p = policy(true);
    // Script failure, spawn failure, script timeout, no process: the stop is carried out
    // (the service ends unmonitored) and forgotten.
    let endings = [
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(1),
        },
        Event::SpawnFailed(libc::ENOENT),
        Event::Deadline,
    ];
    for (n, end) in endings.into_iter().enumerate() {
        let mut st = ServiceState::default();
        st.decide(
            &p,
            Event::Observed(Observation::Absent(Absent::NoPidfile)),
            s(0),
        );
        st.decide(&p, Event::Operator(Op::Stop), s(1));
        if n == 2 {
            // The script is done; no process appears before the deadline.
            st.decide(
                &p,
                Event::ScriptExited {
                    script: Script::Start,
                    cause: Cause::Exited(0),
                },
                s(1),
            );
        }
        let a = st.decide(&p, end, s(20));
        assert_eq!(st.phase, Phase::Unmonitored, "{end:?}: {a:?}");
        assert_eq!(
            a.last(),
            Some(&Action::Log(Note::Stopped)),
            "{end:?}: {a:?}"
        );
        no_stale_stop_later(&p, st, &format!("{end:?}"));
    }
    // Brought up: stopped at once, and forgotten.
    let mut st = starting_with_stop_pending(&p);
    st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(2));
    assert!(!st.stop_pending);
}

#[test]
fn every_operator_command_ends_a_pending_stop() {
    let p = policy(true);
    for op in [Op::Start, Op::Restart, Op::Monitor, Op::Unmonitor] {
        let mut st = starting_with_stop_pending(&p);
        st.decide(&p, Event::Operator(op), s(2));
        no_stale_stop_later(&p, st, &format!("{op:?}"));
    }
}

#[test]
fn a_pending_stop_ends_when_the_identity_setting_changes() {
    let p = policy(true);
    let mut st = starting_with_stop_pending(&p);
    st.forget_identity();
    assert_eq!(st.phase, Phase::Unknown);
    no_stale_stop_later(&p, st, "reload");
}

/// Whatever the phase and the event, a pending stop never outlives the start it was asked
/// during.
#[test]
fn a_pending_stop_exists_only_while_a_start_is_under_way() {
    for phase in all_phases() {
        for event in all_events() {
            let mut st = ServiceState {
                phase,
                stop_pending: matches!(phase, Phase::Starting { .. }),
                ..ServiceState::default()
            };
            st.decide(&policy(true), event, s(100));
            assert!(
                !st.stop_pending || matches!(st.phase, Phase::Starting { .. }),
                "{phase:?} + {event:?} -> {:?} with a stop pending",
                st.phase
            );
        }
    }
}

#[test]
fn a_stop_during_a_start_stops_what_the_start_brought_up() {
    let p = policy(true);
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    let a = st.decide(&p, Event::Operator(Op::Stop), s(1));
    assert_eq!(a.as_slice(), &[Action::Log(Note::StopPending)]);
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(1),
    );
    let a = st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(2));
    assert_eq!(
        a[0],
        Action::Pinned {
            pin: PIN,
            adopted: false
        }
    );
    assert_eq!(
        a[1],
        Action::Log(Note::Restarting(RestartWhy::OperatorStop))
    );
    assert_eq!(
        a[2],
        Action::RunStop {
            pin: PIN,
            why: RestartWhy::OperatorStop
        }
    );
    // And a start that fails while a stop is pending ends unmonitored, not in backoff.
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    st.decide(&p, Event::Operator(Op::Stop), s(1));
    let a = st.decide(&p, Event::Deadline, s(10));
    assert_eq!(a.last(), Some(&Action::Log(Note::Stopped)));
    assert_eq!(st.phase, Phase::Unmonitored);
}

#[test]
fn unmonitor_leaves_the_process_alone_and_monitor_adopts_it() {
    let p = policy(true);
    let mut st = running();
    let a = st.decide(&p, Event::Operator(Op::Unmonitor), s(1));
    assert_eq!(
        a.as_slice(),
        &[Action::Unpin, Action::Log(Note::Unmonitored)]
    );
    // Its death is not ours to act on now.
    assert!(st
        .decide(
            &p,
            Event::Died {
                pid: PIN.pid,
                reaped: true,
                cause: Cause::Exited(0)
            },
            s(2)
        )
        .is_empty());
    st.decide(&p, Event::Operator(Op::Monitor), s(3));
    let a = st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(3));
    assert_eq!(
        a.as_slice(),
        &[Action::Pinned {
            pin: PIN,
            adopted: true
        }]
    );
}

#[test]
fn a_death_after_a_stable_run_is_started_at_once() {
    let mut p = policy(true);
    p.restart.max_restarts = None;
    let mut st = ServiceState {
        phase: Phase::Running { pin: PIN },
        fails: 5,
        ..Default::default()
    };
    let cause = Cause::Killed {
        signal: 9,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(61),
    );
    assert_eq!(
        a.last(),
        Some(&Action::Start {
            attempt: 1,
            after: None,
            why: StartWhy::Died(cause)
        }),
        "{a:?}"
    );
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Log(Note::Backoff { .. }))),
        "{a:?}"
    );
    assert!(matches!(st.phase, Phase::Starting { script: true, .. }));
    // It comes up and dies again at once: from now on the backoff applies and doubles.
    let mut t = s(61);
    let mut delays = Vec::new();
    for n in 0..3u64 {
        let pin = Pin {
            pid: 5000 + n as i32,
            start_ticks: 100 + n,
            started: t,
        };
        st.decide(
            &p,
            Event::ScriptExited {
                script: Script::Start,
                cause: Cause::Exited(0),
            },
            t,
        );
        st.decide(&p, Event::Observed(Observation::Alive(pin)), t);
        t += s(1);
        st.decide(
            &p,
            Event::Died {
                pid: pin.pid,
                reaped: true,
                cause,
            },
            t,
        );
        match st.phase {
            Phase::Waiting { until, .. } => {
                delays.push(until - t);
                t = until;
                st.decide(&p, Event::Deadline, t);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, vec![Duration::from_millis(500), s(1), s(2)]);
    assert_eq!(st.fails, 3);
    assert_eq!(backoff(&p.restart, 20), s(4), "capped at backoff_max");
}

#[test]
fn by_default_a_crash_loop_never_gives_up() {
    let p = Policy {
        restart: RestartPolicy {
            backoff: Duration::from_millis(100),
            backoff_max: s(1),
            ..RestartPolicy::default()
        },
        start_timeout: s(10),
        stop_timeout: s(5),
        has_stop: true,
        stop_leftovers: false,
    };
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    let mut t = s(0);
    let mut delays = Vec::new();
    let mut notes = Vec::new();
    for n in 0..30u64 {
        let pin = Pin {
            pid: 5000 + n as i32,
            start_ticks: 100 + n,
            started: t,
        };
        st.decide(
            &p,
            Event::ScriptExited {
                script: Script::Start,
                cause: Cause::Exited(0),
            },
            t,
        );
        st.decide(&p, Event::Observed(Observation::Alive(pin)), t);
        t += Duration::from_millis(300);
        let a = st.decide(
            &p,
            Event::Died {
                pid: pin.pid,
                reaped: true,
                cause: Cause::Exited(3),
            },
            t,
        );
        notes.extend(a.iter().filter_map(|x| match x {
            Action::Log(n @ (Note::Backoff { .. } | Note::CrashLooping { .. })) => Some(*n),
            _ => None,
        }));
        match st.phase {
            Phase::Waiting { until, .. } => {
                delays.push(until - t);
                t = until;
                let a = st.decide(&p, Event::Deadline, t);
                assert!(matches!(a[0], Action::Start { .. }), "{a:?}");
            }
            other => panic!("crash {}: unexpected {other:?}", n + 1),
        }
    }
    assert_eq!(st.total_restarts, 30);
    let ms = Duration::from_millis;
    assert_eq!(&delays[..5], &[ms(100), ms(200), ms(400), ms(800), s(1)]);
    assert!(delays[4..].iter().all(|&d| d == s(1)), "{delays:?}");
    // The log: a backoff line per attempt until it crash-loops at backoff_max; then the
    // crash-loop line when it begins and at each doubling of the failures in a row.
    let backoffs = notes
        .iter()
        .filter(|n| matches!(n, Note::Backoff { .. }))
        .count();
    assert_eq!(backoffs, 4, "{notes:?}");
    let loops: Vec<u32> = notes
        .iter()
        .filter_map(|n| match n {
            Note::CrashLooping { fails, .. } => Some(*fails),
            _ => None,
        })
        .collect();
    assert_eq!(loops, vec![5, 10, 20], "{notes:?}");
    assert_eq!(
        notes[4].to_string(),
        "crash-looping: 5 failures in a row, none ran 10s; starting it every 1s, never gives up (said again at 10 failures)"
    );
    assert!(st.crash_looping(&p.restart));
    // A run that lasts stable_after ends the loop, on a deadline of its own (for status).
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        t,
    );
    let pin = Pin {
        pid: 6000,
        start_ticks: 1,
        started: t,
    };
    st.decide(&p, Event::Observed(Observation::Alive(pin)), t);
    assert_eq!(st.deadline(), Some(t + s(10)));
    assert!(st.decide(&p, Event::Deadline, t + s(9)).is_empty());
    let a = st.decide(&p, Event::Deadline, t + s(10));
    assert_eq!(
        a.as_slice(),
        &[Action::Log(Note::Recovered {
            fails: 30,
            stable_after: s(10)
        })]
    );
    assert!(!st.crash_looping(&p.restart));
    assert_eq!((st.fails, st.deadline()), (0, None));
}

#[test]
fn a_limit_the_config_sets_still_gives_up_while_crash_looping() {
    let mut p = policy(true);
    p.restart.backoff_max = p.restart.backoff;
    p.restart.max_restarts = Some(3);
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    let mut t = s(0);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let a = st.decide(&p, Event::SpawnFailed(libc::ENOENT), t);
        seen.extend(a.iter().copied());
        match st.phase {
            Phase::Waiting { until, .. } => {
                t = until;
                st.decide(&p, Event::Deadline, t);
            }
            _ => break,
        }
    }
    assert_eq!(st.phase, Phase::GivenUp, "{seen:?}");
    let line = seen
        .iter()
        .find_map(|a| match a {
            Action::Log(n @ Note::CrashLooping { .. }) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        line.ends_with(
            "starting it every 500ms until 3 restarts within 10m (said again at 4 failures)"
        ),
        "{line}"
    );
}

#[test]
fn failed_starts_count_and_a_hung_script_is_killed() {
    let p = policy(true);
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    let a = st.decide(&p, Event::Deadline, s(10));
    assert_eq!(a[0], Action::KillScript(Script::Start));
    assert_eq!(
        a[1],
        Action::Log(Note::StartFailed(StartFailure::ScriptTimeout(s(10))))
    );
    assert_eq!(st.fails, 1);
    // A late exit of the killed script changes nothing.
    assert!(st
        .decide(
            &p,
            Event::ScriptExited {
                script: Script::Start,
                cause: Cause::Killed {
                    signal: 9,
                    core: false
                }
            },
            s(10)
        )
        .is_empty());
    // Script exit 0 but no process within start_timeout.
    st.decide(&p, Event::Deadline, s(11));
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(11),
    );
    assert!(st.wants_probe());
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(12),
    );
    let a = st.decide(&p, Event::Deadline, s(21));
    assert_eq!(
        a[0],
        Action::Log(Note::StartFailed(StartFailure::NoProcess(
            s(10),
            Some(Absent::NoPidfile)
        )))
    );
    assert_eq!(st.fails, 2);
}

#[test]
fn while_the_system_shuts_down_nothing_is_started_or_restarted() {
    let p = policy(true);
    let mut st = running();
    st.ending = true;
    let why = RestartWhy::Operator;
    let a = st.decide(&p, Event::RestartRequested(why), s(10));
    assert_eq!(a.as_slice(), &[Action::Log(Note::NotRestarting(why))]);
    assert_eq!(st.phase, Phase::Running { pin: PIN });
    let cause = Cause::Exited(0);
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(11),
    );
    assert!(
        matches!(a.first(), Some(Action::Log(Note::Died { .. }))),
        "{a:?}"
    );
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Start { .. } | Action::Reboot)),
        "{a:?}"
    );
    assert_eq!(
        a.last(),
        Some(&Action::Log(Note::NotStarting(StartWhy::Died(cause))))
    );
    assert_eq!(st.phase, Phase::Unmonitored);
    assert_eq!(st.deadline(), None);
}

#[test]
fn restart_runs_stop_then_term_then_kill_then_start() {
    let p = policy(true);
    let mut st = running();
    let why = RestartWhy::Operator;
    let a = st.decide(&p, Event::RestartRequested(why), s(10));
    assert_eq!(
        a.as_slice(),
        &[
            Action::Log(Note::Restarting(why)),
            Action::RunStop { pin: PIN, why }
        ]
    );
    let a = st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Exited(0),
        },
        s(11),
    );
    assert_eq!(
        a.as_slice(),
        &[Action::Log(Note::StopScriptExited(Cause::Exited(0)))]
    );
    assert_eq!(
        st.deadline(),
        Some(s(11) + SETTLE),
        "a moment to finish dying"
    );
    let a = st.decide(&p, Event::Deadline, s(11) + SETTLE);
    assert_eq!(
        a.as_slice(),
        &[Action::Signal {
            pin: PIN,
            signal: libc::SIGTERM,
            why: SignalWhy::StopScriptLeftIt
        }]
    );
    let a = st.decide(&p, Event::Deadline, s(16));
    assert_eq!(
        a.as_slice(),
        &[Action::Signal {
            pin: PIN,
            signal: libc::SIGKILL,
            why: SignalWhy::TermTimeout(s(5))
        }]
    );
    let cause = Cause::Killed {
        signal: 9,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(16),
    );
    assert_eq!(
        a[0],
        Action::Log(Note::Died {
            pin: PIN,
            cause,
            uptime: s(16),
            during_stop: false
        })
    );
    assert_eq!(
        a[2],
        Action::Start {
            attempt: 1,
            after: None,
            why: StartWhy::Restart(why)
        }
    );
    assert_eq!(st.total_restarts, 1);
}

#[test]
fn a_stop_script_that_kills_is_named_in_the_log() {
    let p = policy(true);
    let mut st = running();
    st.decide(&p, Event::RestartRequested(RestartWhy::Operator), s(1));
    let cause = Cause::Killed {
        signal: 9,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause,
        },
        s(1),
    );
    let note = Note::Died {
        pin: PIN,
        cause,
        uptime: s(1),
        during_stop: true,
    };
    assert_eq!(a[0], Action::Log(note));
    assert_eq!(
        note.to_string(),
        "died: killed by SIGKILL (pid 4242, up 1s): its stop script killed it, not custos"
    );
    assert_eq!(st.pin(), None, "a dead process is never signalled");
    let a = st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Exited(0),
        },
        s(2),
    );
    assert!(matches!(a[1], Action::Start { .. }), "{a:?}");
}

#[test]
fn a_stop_that_ends_as_asked_is_no_death_to_warn_about() {
    let p = policy(true);
    for (cause, step_term) in [
        (Cause::Exited(0), false),
        (
            Cause::Killed {
                signal: libc::SIGTERM,
                core: false,
            },
            false,
        ),
        (Cause::Exited(0), true),
    ] {
        let mut st = running();
        st.decide(&p, Event::RestartRequested(RestartWhy::Operator), s(1));
        if step_term {
            // The stop script exits, the settle passes: custos sends SIGTERM.
            st.decide(
                &p,
                Event::ScriptExited {
                    script: Script::Stop,
                    cause: Cause::Exited(0),
                },
                s(2),
            );
            st.decide(&p, Event::Deadline, s(3));
        }
        let a = st.decide(
            &p,
            Event::Died {
                pid: PIN.pid,
                reaped: true,
                cause,
            },
            s(3),
        );
        let note = Note::StoppedAsAsked {
            pin: PIN,
            cause,
            uptime: s(3),
            by_script: !step_term,
        };
        assert_eq!(a[0], Action::Log(note), "{cause:?}");
    }
    let note = Note::StoppedAsAsked {
        pin: PIN,
        cause: Cause::Exited(0),
        uptime: s(3),
        by_script: true,
    };
    assert_eq!(
        note.to_string(),
        "stopped: exited with status 0 (pid 4242, up 3s), as its stop script asked"
    );
}

#[test]
fn leftovers_of_a_dead_instance_are_stopped_before_the_next_start() {
    let p = Policy {
        stop_leftovers: true,
        ..policy(true)
    };
    let mut st = running();
    let kill = Cause::Killed {
        signal: 9,
        core: false,
    };
    let a = st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: kill,
        },
        s(100),
    );
    // Death logged, unpinned, then SIGTERM to the leftovers; no start yet.
    assert!(matches!(a[0], Action::Log(Note::Died { .. })), "{a:?}");
    assert_eq!(a[1], Action::Unpin);
    assert_eq!(
        a[2],
        Action::Sweep {
            pin: PIN,
            signal: libc::SIGTERM
        }
    );
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(st.pin(), None);
    // Two were signalled: wait for them, at most the grace.
    assert!(st.decide(&p, Event::Leftovers(2), s(100)).is_empty());
    assert_eq!(st.deadline(), Some(s(100) + LEFTOVERS_GRACE));
    // Still there at the deadline: SIGKILL.
    let a = st.decide(&p, Event::Deadline, s(101));
    assert_eq!(
        a[..],
        [Action::Sweep {
            pin: PIN,
            signal: libc::SIGKILL
        }]
    );
    // Gone: the start a death after a stable run gets, at once.
    let a = st.decide(&p, Event::Leftovers(0), s(101));
    assert!(
        matches!(a[0], Action::Start { attempt: 1, after: None, why: StartWhy::Died(c) } if c == kill),
        "{a:?}"
    );

    // None found: the start follows in the same decision round.
    let mut st = running();
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: kill,
        },
        s(100),
    );
    let a = st.decide(&p, Event::Leftovers(0), s(100));
    assert!(matches!(a[0], Action::Start { .. }), "{a:?}");

    // A stop asked while clearing: the leftovers are still stopped, then nothing starts.
    let mut st = running();
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: kill,
        },
        s(100),
    );
    st.decide(&p, Event::Leftovers(1), s(100));
    assert!(st.decide(&p, Event::Operator(Op::Stop), s(100)).is_empty());
    let a = st.decide(&p, Event::Leftovers(0), s(100));
    assert_eq!(a[..], [Action::Log(Note::Stopped)]);
    assert_eq!(st.phase, Phase::Unmonitored);

    // SIGKILL did not end them (uninterruptible sleep): said, and the start goes on.
    let mut st = running();
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: kill,
        },
        s(100),
    );
    st.decide(&p, Event::Leftovers(1), s(100));
    st.decide(&p, Event::Deadline, s(101));
    st.decide(&p, Event::Leftovers(1), s(101));
    let a = st.decide(&p, Event::Deadline, s(102));
    assert!(
        matches!(a[0], Action::Log(Note::LeftoversSurvive { count: 1, .. })),
        "{a:?}"
    );
    assert!(matches!(a[1], Action::Start { .. }), "{a:?}");

    // A restart custos performs: stop script, death, then the leftovers, then the start.
    let mut st = running();
    st.decide(&p, Event::RestartRequested(RestartWhy::Operator), s(1));
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: kill,
        },
        s(1),
    );
    let a = st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Stop,
            cause: Cause::Exited(0),
        },
        s(2),
    );
    assert_eq!(
        a[1],
        Action::Sweep {
            pin: PIN,
            signal: libc::SIGTERM
        },
        "{a:?}"
    );
    let a = st.decide(&p, Event::Leftovers(0), s(2));
    assert!(
        matches!(
            a[0],
            Action::Start {
                why: StartWhy::Restart(RestartWhy::Operator),
                ..
            }
        ),
        "{a:?}"
    );
}

#[test]
fn without_stop_script_a_restart_starts_with_sigterm() {
    let p = policy(false);
    let mut st = running();
    let a = st.decide(&p, Event::RestartRequested(RestartWhy::Operator), s(1));
    assert_eq!(
        a[1],
        Action::Signal {
            pin: PIN,
            signal: libc::SIGTERM,
            why: SignalWhy::NoStopScript
        }
    );
}

#[test]
fn ambiguity_is_logged_once_per_change_and_touches_nothing() {
    let p = policy(true);
    let mut st = ServiceState::default();
    assert_eq!(
        st.decide(&p, Event::Observed(Observation::Ambiguous(2)), s(0))
            .as_slice(),
        &[Action::Log(Note::Ambiguous(2))]
    );
    assert!(st
        .decide(&p, Event::Observed(Observation::Ambiguous(2)), s(1))
        .is_empty());
    assert_eq!(
        st.decide(&p, Event::Observed(Observation::Ambiguous(3)), s(2))
            .len(),
        1
    );
    assert_eq!(st.phase, Phase::Ambiguous(3));
    let a = st.decide(&p, Event::Observed(Observation::Alive(PIN)), s(3));
    assert_eq!(
        a.as_slice(),
        &[Action::Pinned {
            pin: PIN,
            adopted: true
        }]
    );
}

#[test]
fn a_process_that_cannot_be_verified_is_held_until_it_goes_or_an_operator_decides() {
    let p = policy(true);
    let held = Phase::Held {
        pin: OTHER,
        doubt: Doubt::Older,
    };
    let unverified = Event::Observed(Observation::Unverified(OTHER, Doubt::Older));
    // Found at start-up: held, said once.
    let mut st = ServiceState::default();
    let a = st.decide(&p, unverified, s(0));
    assert_eq!(
        a.as_slice(),
        &[Action::Log(Note::Held {
            pin: OTHER,
            doubt: Doubt::Older
        })]
    );
    assert_eq!(st.phase, held);
    assert!(st.decide(&p, unverified, s(1)).is_empty());
    assert!(st.wants_probe() && st.pin().is_none() && st.deadline().is_none());
    // It exits (or the pidfile changes to name nothing): started.
    let a = st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::DeadPid(OTHER.pid))),
        s(2),
    );
    assert!(matches!(a[0], Action::Start { attempt: 1, .. }), "{a:?}");
    // The operator says it is not the service: started, not counted as a restart.
    let mut st = ServiceState {
        phase: held,
        ..Default::default()
    };
    let a = st.decide(&p, Event::Operator(Op::Start), s(3));
    assert_eq!(
        a.as_slice(),
        &[Action::Start {
            attempt: 1,
            after: None,
            why: StartWhy::OverHeld(OTHER.pid)
        }]
    );
    assert_eq!(st.total_restarts, 0);
    // The operator says it is the service: pinned.
    let mut st = ServiceState {
        phase: held,
        ..Default::default()
    };
    let a = st.decide(&p, Event::Operator(Op::Adopt), s(3));
    assert_eq!(
        a.as_slice(),
        &[Action::Pinned {
            pin: OTHER,
            adopted: true
        }]
    );
    assert_eq!(st.phase, Phase::Running { pin: OTHER });
    // Adopt means nothing when nothing is held.
    let mut st = ServiceState::default();
    assert!(st.decide(&p, Event::Operator(Op::Adopt), s(3)).is_empty());
    assert_eq!(st.phase, Phase::Unknown);
}

#[test]
fn doubt_never_starts_a_second_copy() {
    let p = policy(true);
    let unverified = Event::Observed(Observation::Unverified(OTHER, Doubt::Future));
    // During a backoff: the start is called off.
    let mut st = running();
    st.decide(
        &p,
        Event::Died {
            pid: PIN.pid,
            reaped: true,
            cause: Cause::Exited(1),
        },
        s(1),
    );
    st.decide(&p, unverified, s(1));
    assert!(matches!(st.phase, Phase::Held { .. }));
    assert!(st.decide(&p, Event::Deadline, s(5)).is_empty());
    // After a start script: held at the deadline, not a failed attempt to retry.
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(0),
    );
    assert!(
        st.decide(&p, unverified, s(1)).is_empty(),
        "not before the deadline"
    );
    let a = st.decide(&p, Event::Deadline, s(10));
    assert_eq!(
        a.as_slice(),
        &[Action::Log(Note::Held {
            pin: OTHER,
            doubt: Doubt::Future
        })]
    );
    assert_eq!(st.fails, 0);
    // Given up stays given up.
    let mut st = ServiceState {
        phase: Phase::GivenUp,
        ..Default::default()
    };
    assert!(st.decide(&p, unverified, s(1)).is_empty());
    assert_eq!(st.phase, Phase::GivenUp);
}

#[test]
fn a_start_that_finds_no_process_says_what_it_found() {
    let p = policy(true);
    let mut st = ServiceState::default();
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::NoPidfile)),
        s(0),
    );
    st.decide(
        &p,
        Event::ScriptExited {
            script: Script::Start,
            cause: Cause::Exited(0),
        },
        s(0),
    );
    st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::StalePidfile(77))),
        s(1),
    );
    let a = st.decide(&p, Event::Deadline, s(10));
    let failure = StartFailure::NoProcess(s(10), Some(Absent::StalePidfile(77)));
    assert_eq!(a[0], Action::Log(Note::StartFailed(failure)));
    assert!(
        failure.to_string().contains(": pidfile is stale: pid 77"),
        "{failure}"
    );
}

#[test]
fn polling_that_finds_the_pin_gone_reports_an_unknown_cause() {
    let p = policy(true);
    let mut st = running();
    let a = st.decide(
        &p,
        Event::Observed(Observation::Absent(Absent::PinGone)),
        s(3),
    );
    assert_eq!(
        a[0],
        Action::Log(Note::Died {
            pin: PIN,
            cause: Cause::NotOurChild,
            uptime: s(3),
            during_stop: false
        })
    );
    assert_eq!(
        Cause::NotOurChild.to_string(),
        "cause unknown (not our child)"
    );
    assert_eq!(Cause::Exited(3).to_string(), "exited with status 3");
    assert_eq!(
        Cause::Killed {
            signal: 11,
            core: true
        }
        .to_string(),
        "killed by SIGSEGV, core dumped"
    );
}

/// A daemon custos did not start (adopted after a custos restart: init's child) dies, and its
/// parent has not reaped it yet: `kill -0 $(cat pidfile)` in the start script would still
/// succeed, so the start waits until the zombie is gone, at most REAP_WAIT.
#[test]
fn a_dead_process_its_parent_has_not_reaped_holds_the_next_start() {
    let died = Event::Died {
        pid: PIN.pid,
        cause: Cause::NotOurChild,
        reaped: false,
    };
    for stop_leftovers in [false, true] {
        let p = Policy {
            stop_leftovers,
            ..policy(true)
        };
        // Reaped a moment later: the start follows then, and only then.
        let mut st = running();
        let a = st.decide(&p, died, s(100));
        assert!(
            !a.iter().any(|a| matches!(a, Action::Start { .. })),
            "leftovers={stop_leftovers}: started while not reaped: {a:?}"
        );
        assert!(
            a.iter()
                .any(|a| matches!(a, Action::Log(Note::AwaitingReap { pin }) if *pin == PIN)),
            "leftovers={stop_leftovers}: the wait is not said: {a:?}"
        );
        assert!(matches!(st.phase, Phase::Clearing { .. }), "{:?}", st.phase);
        // No leftovers (or none left) is not enough while the zombie is there.
        let a = st.decide(&p, Event::Leftovers(0), s(100));
        assert!(
            !a.iter().any(|a| matches!(a, Action::Start { .. })),
            "leftovers={stop_leftovers}: started before the reap: {a:?}"
        );
        let a = st.decide(&p, Event::Reaped, s(100));
        assert!(matches!(a[0], Action::Start { .. }), "{a:?}");
        assert!(!st.unreaped);

        // Leftovers signalled, and the zombie: the start waits for both, in either order.
        if stop_leftovers {
            let mut st = running();
            st.decide(&p, died, s(100));
            st.decide(&p, Event::Leftovers(2), s(100));
            assert!(st.decide(&p, Event::Reaped, s(100)).is_empty());
            let a = st.decide(&p, Event::Leftovers(0), s(100));
            assert!(matches!(a[0], Action::Start { .. }), "{a:?}");
        }

        // Never reaped: after at most REAP_WAIT the start goes on, said, with no SIGKILL
        // sweep when there were no leftovers.
        let mut st = running();
        st.decide(&p, died, s(100));
        let mut started = None;
        for _ in 0..4 {
            let Some(t) = st.deadline() else { break };
            let a = st.decide(&p, Event::Deadline, t);
            assert!(
                !a.iter().any(|a| matches!(
                    a,
                    Action::Sweep {
                        signal: libc::SIGKILL,
                        ..
                    }
                )),
                "leftovers={stop_leftovers}: SIGKILL sweep with no leftovers: {a:?}"
            );
            if a.iter().any(|a| matches!(a, Action::Start { .. })) {
                assert!(
                    a.iter().any(
                        |a| matches!(a, Action::Log(Note::NotReaped { pin, .. }) if *pin == PIN)
                    ),
                    "{a:?}"
                );
                started = Some(t);
                break;
            }
        }
        let started = started.expect("the start never came"); // ok: a test (this file is test-only)
        assert!(
            started - s(100) <= REAP_WAIT,
            "waited {:?}",
            started - s(100)
        );
    }
    // Reaped at once (custos's own child, or gone): nothing waits.
    let mut st = running();
    let a = st.decide(
        &policy(true),
        Event::Died {
            pid: PIN.pid,
            cause: Cause::NotOurChild,
            reaped: true,
        },
        s(100),
    );
    assert!(a.iter().any(|a| matches!(a, Action::Start { .. })), "{a:?}");
}

//! Things worth a log line that are not actions, and their words.

use core::fmt;
use std::time::Duration;

use super::{Absent, Cause, Doubt, Pin, RestartWhy, StartFailure, StartWhy, REAP_WAIT};
use crate::clock::Dur;

/// Things worth a log line that are not actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Died {
        pin: Pin,
        cause: Cause,
        uptime: Duration,
        during_stop: bool,
    },
    /// The pinned process ended the way a stop asks: it exited 0, or was ended by SIGTERM,
    /// after its stop script ran (`by_script`) or custos sent SIGTERM.
    StoppedAsAsked {
        pin: Pin,
        cause: Cause,
        uptime: Duration,
        by_script: bool,
    },
    /// Leftovers of a dead instance are still there `waited` after SIGKILL: the start goes on.
    LeftoversSurvive {
        pin: Pin,
        count: u16,
        waited: Duration,
    },
    /// The dead main process is a zombie its parent has not reaped yet: what follows waits.
    AwaitingReap {
        pin: Pin,
    },
    /// It is still not reaped after REAP_WAIT: what follows goes on anyway.
    NotReaped {
        pin: Pin,
        waited: Duration,
    },
    StartFailed(StartFailure),
    StopScriptExited(Cause),
    GivenUp {
        restarts: u32,
        window: Duration,
    },
    Ambiguous(u16),
    Restarting(RestartWhy),
    SurvivesKill {
        pin: Pin,
        waited: Duration,
    },
    /// Waiting before the next start.
    Backoff {
        delay: Duration,
        why: StartWhy,
    },
    /// Failures in a row have brought the backoff to `backoff_max`: said when that happens and
    /// again each time the count doubles, not at every attempt.
    CrashLooping {
        fails: u32,
        every: Duration,
        stable_after: Duration,
        /// `max_restarts` and `window`, when the config sets a limit.
        limit: Option<(u32, Duration)>,
    },
    /// A crash-looping service has now run `stable_after`: the loop is over.
    Recovered {
        fails: u32,
        stable_after: Duration,
    },
    Stopped,
    Unmonitored,
    Monitored,
    StopPending,
    /// A stop asked during a start cannot be carried out: the start ended held.
    StopDropped,
    /// Held: the pidfile names `pin`, which can be neither verified nor ruled out.
    Held {
        pin: Pin,
        doubt: Doubt,
    },
    /// While a start is under way or waited for: the pidfile names a live process that is not
    /// the service (said once per change).
    LeftAlone(Absent),
    /// The system is shutting down (`custos shutdown`): a start that would have happened.
    NotStarting(StartWhy),
    /// The system is shutting down: a restart (stop, then start) that would have happened.
    NotRestarting(RestartWhy),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::StartFailed(s) => write!(f, "start failed: {s}"),
            Note::StopScriptExited(c) => write!(f, "stop script {c}"),
            Note::Ambiguous(n) => write!(
                f,
                "{n} processes match exe/args: identity is ambiguous, so custos starts nothing and signals none of them"
            ),
            Note::Restarting(RestartWhy::OperatorStop) => f.write_str(
                "stopping: asked by the operator; it stays stopped and unmonitored until `custos start`",
            ),
            Note::Restarting(why) => write!(f, "restarting: {why}"),
            Note::Stopped => {
                f.write_str("stopped; not monitored until `custos start` or `custos monitor`")
            }
            Note::Unmonitored => f.write_str(
                "no longer monitored (asked by the operator); the process is left as it is",
            ),
            Note::Monitored => f.write_str("monitored again (asked by the operator)"),
            Note::StopPending => f.write_str(
                "stop asked while it starts: it will be stopped once its process is up",
            ),
            Note::Held { pin, doubt } => write!(
                f,
                "held: the pidfile names pid {}, which cannot be verified: {doubt}. custos neither starts the service nor signals pid {} until it exits or the pidfile changes; `custos start` says it is not the service (start it, leave it alone), `custos adopt` says it is (pin it)",
                pin.pid, pin.pid
            ),
            Note::LeftAlone(a) => write!(f, "{a}"),
            Note::NotStarting(why) => write!(
                f,
                "not starting it again: the system is shutting down (`custos shutdown`); custos starts nothing until it is stopped ({why})"
            ),
            Note::NotRestarting(why) => write!(
                f,
                "not restarting it: the system is shutting down (`custos shutdown`); the process is left as it is ({why})"
            ),
            Note::StopDropped => f.write_str(
                "the stop asked during the start is dropped: the start ended held, and custos signals nothing it holds; ask again once it is resolved",
            ),
            Note::Died { .. }
            | Note::StoppedAsAsked { .. }
            | Note::LeftoversSurvive { .. }
            | Note::AwaitingReap { .. }
            | Note::NotReaped { .. }
            | Note::SurvivesKill { .. } => self.fmt_end(f),
            Note::GivenUp { .. }
            | Note::Backoff { .. }
            | Note::CrashLooping { .. }
            | Note::Recovered { .. } => self.fmt_failures(f),
        }
    }
}

impl Note {
    /// The words of the notes about failures in a row: backoff, crash loop, recovery, giving up.
    fn fmt_failures(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::GivenUp { restarts, window } => write!(
                f,
                "given up: {restarts} restarts within {} (max_restarts); not starting it again until a reload",
                Dur(window)
            ),
            Note::Backoff { delay, why } => write!(f, "will start in {}: {why}", Dur(delay)),
            Note::CrashLooping {
                fails,
                every,
                stable_after,
                limit,
            } => {
                write!(
                    f,
                    "crash-looping: {fails} failures in a row, none ran {}; starting it every {}",
                    Dur(stable_after),
                    Dur(every)
                )?;
                match limit {
                    None => f.write_str(", never gives up")?,
                    Some((n, w)) => write!(f, " until {n} restarts within {}", Dur(w))?,
                }
                write!(f, " (said again at {} failures)", fails.saturating_mul(2))
            }
            Note::Recovered {
                fails,
                stable_after,
            } => write!(
                f,
                "running {} after {fails} failures in a row: no longer crash-looping",
                Dur(stable_after)
            ),
            _ => Ok(()),
        }
    }

    /// The words of the notes about a process's end: its death, a stop as asked, and what
    /// outlives SIGKILL.
    fn fmt_end(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::Died { pin, cause, uptime, during_stop } => {
                write!(f, "died: {cause} (pid {}", pin.pid)?;
                write!(f, ", up {})", Dur(uptime))?;
                if during_stop {
                    f.write_str(": its stop script killed it, not custos")?;
                }
                Ok(())
            }
            Note::StoppedAsAsked {
                pin,
                cause,
                uptime,
                by_script,
            } => write!(
                f,
                "stopped: {cause} (pid {}, up {}), as {} asked",
                pin.pid,
                Dur(uptime),
                if by_script {
                    "its stop script"
                } else {
                    "custos's SIGTERM"
                }
            ),
            Note::LeftoversSurvive { pin, count, waited } => write!(
                f,
                "{count} leftover process(es) of pid {} still there {} after SIGKILL (uninterruptible sleep?): starting anyway",
                pin.pid,
                Dur(waited)
            ),
            Note::AwaitingReap { pin } => write!(
                f,
                "pid {} is dead but its parent has not reaped it yet: going on once it is gone (at most {}), so that the start script does not take it for the daemon",
                pin.pid,
                Dur(REAP_WAIT)
            ),
            Note::NotReaped { pin, waited } => write!(
                f,
                "pid {} is dead but its parent has still not reaped it after {}: going on anyway (a start script's `kill -0` may take it for the daemon)",
                pin.pid,
                Dur(waited)
            ),
            Note::SurvivesKill { pin, waited } => write!(
                f,
                "pid {} still alive {} after SIGKILL (uninterruptible sleep?); waiting",
                pin.pid,
                Dur(waited)
            ),
            _ => Ok(()),
        }
    }
}

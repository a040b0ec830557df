//! The decision core: one service's state plus one event gives the next state and a short list
//! of actions. No system calls, no clock reads, no allocation: every rule of custos that can be
//! stated without the kernel is here, and tested as a table over every state and event
//! (`tests.rs`).
//!
//! - `mod.rs`: the state, the events and the actions.
//! - `identity.rs`: a pinned process, how it died, what a probe of its identity found.
//! - `policy.rs`: the restart policy and the backoff arithmetic.
//! - `decide.rs`: the state machine, one function per family of events.
//! - `restart.rs`: what follows a death, a failed start or a finished stop.
//! - `note.rs`: what is worth a log line, and its words.
//!
//! The effectors (`supervisor`) turn actions into syscalls and log each one with its cause.

use core::fmt;
use std::time::Duration;

use heapless::Vec as HVec;

use crate::clock::{Dur, Mono};
use crate::limits::{MAX_ACTIONS, MAX_RESTART_HISTORY};

mod decide;
mod identity;
mod note;
mod policy;
mod restart;
#[cfg(test)]
mod tests;

pub use identity::{Absent, Cause, Doubt, Observation, PidfileNotRegular, Pin, Refusal, SigName};
pub use note::Note;
pub use policy::{backoff, OnExhausted, RestartPolicy, IMPLIED_MAX_RESTARTS};

/// Why a start attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// The start script could not be executed (errno).
    Spawn(i32),
    ScriptStatus(Cause),
    ScriptTimeout(Duration),
    /// The script exited 0 but no identified process appeared within start_timeout; the last
    /// look found this instead.
    NoProcess(Duration, Option<Absent>),
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StartFailure::Spawn(errno) => write!(
                f,
                "start script could not be run: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
            StartFailure::ScriptStatus(c) => write!(f, "start script {c}"),
            StartFailure::ScriptTimeout(d) => {
                write!(
                    f,
                    "start script still running after {}; its process group was killed",
                    Dur(d)
                )
            }
            StartFailure::NoProcess(d, None) => write!(
                f,
                "start script succeeded but no identified process appeared within {}",
                Dur(d)
            ),
            StartFailure::NoProcess(d, Some(a)) => write!(
                f,
                "start script succeeded but no identified process appeared within {}: {a}",
                Dur(d)
            ),
        }
    }
}

/// Why custos starts a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWhy {
    NotRunning(Absent),
    Died(Cause),
    Failed(StartFailure),
    /// The second half of a restart that was asked for.
    Restart(RestartWhy),
    /// `custos start` while held: the operator says the held process (this PID) is not the
    /// service.
    OverHeld(i32),
}

impl fmt::Display for StartWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartWhy::NotRunning(a) => write!(f, "not running: {a}"),
            StartWhy::Died(c) => write!(f, "died: {c}"),
            StartWhy::Failed(s) => write!(f, "previous attempt failed: {s}"),
            StartWhy::Restart(r) => write!(f, "restart: {r}"),
            StartWhy::OverHeld(p) => write!(
                f,
                "asked by the operator: pid {p}, held as unverified, is not the service (it is left alone)"
            ),
        }
    }
}

/// Why a restart of a running service was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartWhy {
    /// Health check number `check` failed `failures` times in a row.
    CheckFailed {
        check: u8,
        failures: u32,
    },
    Operator,
    /// `custos stop`: stop it and leave it stopped and unmonitored.
    OperatorStop,
}

impl fmt::Display for RestartWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartWhy::CheckFailed { check, failures } => {
                write!(f, "check {} failed {failures} time(s) in a row", check + 1)
            }
            RestartWhy::Operator => f.write_str("asked by the operator"),
            RestartWhy::OperatorStop => f.write_str("stop asked by the operator"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Start,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStep {
    /// The stop script runs.
    Script,
    /// The stop script has exited and the process still lives: a moment for it to finish dying
    /// (a kill by the script takes effect when the process is next scheduled), so that its death
    /// is put down to the script, before custos sends SIGTERM.
    Settle,
    /// SIGTERM was sent.
    Term,
    /// SIGKILL was sent.
    Kill,
}

/// Where the stopping of a dead instance's leftovers is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearStep {
    /// SIGTERM was sent to them; they have until the deadline.
    Term,
    /// SIGKILL was sent to those still there; a moment for them to go.
    Kill,
    /// None left (or none to stop): only the dead main process is still a zombie, waiting
    /// for its parent to reap it.
    Reap,
}

/// What follows once a dead instance's leftovers are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The main process died by itself: start it again (at once or after a backoff).
    Died { cause: Cause, uptime: Duration },
    /// A restart or a stop custos carried out: its start half (or nothing, for a stop).
    Restart(RestartWhy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loaded, not yet looked at.
    Unknown,
    Running {
        pin: Pin,
    },
    /// Waiting out the backoff before a start.
    Waiting {
        until: Mono,
        why: StartWhy,
    },
    /// The start script runs (`script`), then custos looks for the process until `deadline`.
    Starting {
        deadline: Mono,
        script: bool,
    },
    /// A restart: stop the pinned process, then start.
    Stopping {
        pin: Pin,
        step: StopStep,
        deadline: Mono,
        script: bool,
        dead: bool,
        why: RestartWhy,
    },
    /// The main process of an instance is gone (it died, or a restart or a stop ended it):
    /// its leftovers (processes of its group that custos inherited) are being stopped, and
    /// `then` happens once they are gone or `deadline` passes at step `Kill`.
    Clearing {
        /// The dead main process.
        pin: Pin,
        step: ClearStep,
        deadline: Mono,
        then: Then,
    },
    /// Too many restarts within the window.
    GivenUp,
    /// Identity is ambiguous (this many processes match): custos neither starts nor signals.
    /// Shown as "ambiguous".
    Ambiguous(u16),
    /// The pidfile names a live process that can be neither verified nor ruled out: custos
    /// neither starts nor signals, until it exits, the pidfile changes, or an operator decides
    /// (`custos start`: it is not the service; `custos adopt`: it is). Shown as "held".
    Held {
        pin: Pin,
        doubt: Doubt,
    },
    /// `custos stop` or `custos unmonitor`: not watched, not started, until `start`/`monitor`.
    Unmonitored,
}

/// Events the supervisor feeds to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A probe of the service's identity (pidfile or exe scan, or a check of the pin).
    Observed(Observation),
    /// The process with this PID died (reaped, pidfd, or a zombie seen in /proc).
    Died {
        pid: i32,
        cause: Cause,
        /// It is gone from the process table. `false`: a zombie another parent (init, after a
        /// custos restart) has yet to reap; its PID still answers `kill -0`, so an init script
        /// would take it for the daemon, and the next start waits until it is gone.
        reaped: bool,
    },
    ScriptExited {
        script: Script,
        cause: Cause,
    },
    /// The start script could not be spawned.
    SpawnFailed(i32),
    /// A deadline of this state has passed.
    Deadline,
    RestartRequested(RestartWhy),
    /// A command from the control socket.
    Operator(Op),
    /// While clearing: how many leftovers of the dead instance are still there after a sweep
    /// (0: none, or all gone since).
    Leftovers(u16),
    /// While clearing: the dead main process, a zombie another parent held (`Died` with
    /// `reaped: false`), is gone from the process table now.
    Reaped,
}

/// What an operator can ask for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Monitor again and start if not running.
    Start,
    /// Stop gracefully (same rules as a restart) and stop monitoring.
    Stop,
    /// Restart if running, start if not.
    Restart,
    /// Monitor again: adopt if running, start if not.
    Monitor,
    /// Stop watching; the process is left as it is.
    Unmonitor,
    /// The held, unverified process is the service: pin it.
    Adopt,
}

/// What the effectors must do, in order. Each carries its cause for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run the start script.
    Start {
        attempt: u32,
        after: Option<Duration>,
        why: StartWhy,
    },
    /// Run the stop script, for a restart of the pinned process.
    RunStop {
        pin: Pin,
        why: RestartWhy,
    },
    /// Send a signal to the pinned (verified) process.
    Signal {
        pin: Pin,
        signal: i32,
        why: SignalWhy,
    },
    /// Kill the process group of the script that runs now.
    KillScript(Script),
    /// A process was identified: watch it (pidfd) and log it.
    Pinned {
        pin: Pin,
        adopted: bool,
    },
    /// Stop watching the pinned process.
    Unpin,
    /// Find the leftovers of the dead instance whose main process was `pin` and send each
    /// `signal`; the count still there comes back as `Event::Leftovers`.
    Sweep {
        pin: Pin,
        signal: i32,
    },
    Log(Note),
    /// `on_exhausted = "reboot"`: sync, stop petting the watchdog, reboot if it does not.
    Reboot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalWhy {
    StopScriptLeftIt,
    NoStopScript,
    TermTimeout(Duration),
}

impl fmt::Display for SignalWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SignalWhy::StopScriptLeftIt => f.write_str("still running after its stop script"),
            SignalWhy::NoStopScript => f.write_str("no stop script configured"),
            SignalWhy::TermTimeout(d) => write!(f, "still running {} after SIGTERM", Dur(d)),
        }
    }
}

pub type Actions = HVec<Action, MAX_ACTIONS>;

/// How long a process may take to finish dying after its stop script exits, before SIGTERM.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How long a dead instance's leftovers have after SIGTERM before SIGKILL (or `stop_timeout`
/// when that is shorter): they are workers whose master is gone, with nothing to finish.
pub const LEFTOVERS_GRACE: Duration = Duration::from_secs(1);

/// How long custos waits for leftovers to go after SIGKILL before it starts anyway.
pub const LEFTOVERS_KILL_WAIT: Duration = Duration::from_secs(1);

/// How long a dead main process that another parent has not reaped yet may hold up the next
/// start. BusyBox init sleeps 1 s after each child it reaps, so an orphan that dies in that
/// second stays a zombie up to 1 s; a parent that never reaps does not hold the service down.
pub const REAP_WAIT: Duration = Duration::from_secs(2);

/// The per-service state the core keeps between events.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub phase: Phase,
    /// Failures (deaths before `stable_after`, failed starts) since the last stable run.
    pub fails: u32,
    /// While crash-looping: the count of `fails` at which the crash-loop line is logged again
    /// (it doubles each time); 0 when not crash-looping.
    pub loop_note: u32,
    /// After failures, the time the running process will have run `stable_after`: then the
    /// failures in a row are over.
    pub stable_at: Option<Mono>,
    /// Times of restarts within the window, oldest first.
    pub restarts: HVec<Mono, MAX_RESTART_HISTORY>,
    /// Restarts since load, for status.
    pub total_restarts: u32,
    pub last_death: Option<Cause>,
    /// `custos stop` arrived while a start was under way: stop the process once it is up (or
    /// give up the start), instead of leaving a daemon it forked running unwatched.
    pub stop_pending: bool,
    /// While a start looks for its process: what the last look found instead (for the log, and
    /// to hold rather than fail when it was a process that cannot be verified).
    pub seen: Option<Observation>,
    /// While clearing: the leftovers the last sweep found still there.
    pub leftovers: u16,
    /// The last death left a zombie that another parent has not reaped yet (see
    /// `Event::Died`): the instance is cleared only once it is gone.
    pub unreaped: bool,
    /// The system is shutting down (`custos shutdown`): the shutdown sequence stops the
    /// services, so nothing is started or restarted any more; deaths are still logged.
    pub ending: bool,
}

impl Default for ServiceState {
    fn default() -> Self {
        ServiceState {
            phase: Phase::Unknown,
            fails: 0,
            loop_note: 0,
            stable_at: None,
            restarts: HVec::new(),
            total_restarts: 0,
            last_death: None,
            stop_pending: false,
            seen: None,
            leftovers: 0,
            unreaped: false,
            ending: false,
        }
    }
}

/// The timing the core needs from a service's config.
#[derive(Debug, Clone)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    pub has_stop: bool,
    /// Stop what a dead instance leaves behind (`leftovers = "stop"`) before the next start.
    pub stop_leftovers: bool,
}

fn push(actions: &mut Actions, a: Action) {
    // MAX_ACTIONS is larger than any branch below emits; a full list is a bug caught by the
    // table test, never a panic at run time.
    let _ = actions.push(a);
}

impl ServiceState {
    /// Forgets what custos knew about the service's process (its identity setting changed):
    /// the next probe looks afresh.
    pub fn forget_identity(&mut self) {
        self.phase = Phase::Unknown;
        self.stop_pending = false;
    }

    /// The pinned process, if custos believes one is running.
    pub fn pin(&self) -> Option<Pin> {
        match self.phase {
            Phase::Running { pin, .. } => Some(pin),
            Phase::Stopping {
                pin, dead: false, ..
            } => Some(pin),
            _ => None,
        }
    }

    /// Whether the supervisor should probe identity (pidfile / exe scan) for this service now.
    pub fn wants_probe(&self) -> bool {
        match self.phase {
            Phase::Unknown
            | Phase::Waiting { .. }
            | Phase::GivenUp
            | Phase::Ambiguous(_)
            | Phase::Held { .. } => true,
            Phase::Starting { script, .. } => !script,
            Phase::Running { .. }
            | Phase::Stopping { .. }
            | Phase::Clearing { .. }
            | Phase::Unmonitored => false,
        }
    }

    /// The next time the core wants a `Deadline` event.
    pub fn deadline(&self) -> Option<Mono> {
        match self.phase {
            Phase::Waiting { until, .. } => Some(until),
            Phase::Starting { deadline, .. }
            | Phase::Stopping { deadline, .. }
            | Phase::Clearing { deadline, .. } => Some(deadline),
            Phase::Running { .. } => self.stable_at,
            _ => None,
        }
    }

    /// Failures in a row have brought the backoff to `backoff_max`, and no run since has
    /// lasted `stable_after`: it is retried at `backoff_max` (for good, unless a limit is set).
    pub fn crash_looping(&self, r: &RestartPolicy) -> bool {
        self.fails >= 2 && backoff(r, self.fails) >= r.backoff_max
    }

    /// Failures in a row are over: a stable run, or the operator's clean slate.
    pub(super) fn clear_fails(&mut self) {
        self.fails = 0;
        self.loop_note = 0;
        self.stable_at = None;
    }
}

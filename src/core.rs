//! The decision core: one service's state plus one event gives the next state and a short list
//! of actions. No system calls, no clock reads, no allocation: every rule of custos that can be
//! stated without the kernel is here, and tested as a table in this file.
//!
//! The effectors (`supervisor.rs`) turn actions into syscalls and log each one with its cause.

use core::fmt;
use std::time::Duration;

use heapless::Vec as HVec;

use crate::clock::{Dur, Mono};
use crate::files::Kind;
use crate::limits::{MAX_ACTIONS, MAX_RESTART_HISTORY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhausted {
    GiveUp,
    /// Sync, stop petting the watchdog, and reboot(2) if it has not reset the board in time.
    Reboot,
}

/// How a service is restarted after deaths and failed starts.
///
/// Defaults are for a board nobody attends: a death after `stable_after` of running is
/// started again at once; failures in a row back off from `backoff`, doubling, up to
/// `backoff_max`; and there is no limit (`max_restarts` is `None`): a crash loop is retried at
/// `backoff_max` for as long as it lasts, shown as crash-looping. A limit, and with it
/// `on_exhausted`, applies only when the config asks for one.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
    /// Restarts within `window` before `on_exhausted`; `None`: never exhausted.
    pub max_restarts: Option<u32>,
    pub window: Duration,
    pub on_exhausted: OnExhausted,
}

/// The limit a config gets when it writes `window` or `on_exhausted` but not `max_restarts`:
/// the default before there was "unlimited", so that such a config keeps its meaning.
pub const IMPLIED_MAX_RESTARTS: u32 = 10;

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(10),
            max_restarts: None,
            window: Duration::from_secs(600),
            on_exhausted: OnExhausted::GiveUp,
        }
    }
}

/// A process positively identified: its PID and its start time (clock ticks after boot, from
/// /proc/PID/stat). PIDs are reused; the pair is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub pid: i32,
    pub start_ticks: u64,
    /// The same start time on the supervisor clock, for uptimes.
    pub started: Mono,
}

/// How a process died, as far as the kernel told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Exited(i32),
    Killed {
        signal: i32,
        core: bool,
    },
    /// Not our child (no subreaper, or it was running before custos): the kernel gave its exit
    /// status to another parent.
    NotOurChild,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cause::Exited(code) => write!(f, "exited with status {code}"),
            Cause::Killed { signal, core } => {
                write!(f, "killed by {}", SigName(signal))?;
                if core {
                    f.write_str(", core dumped")?;
                }
                Ok(())
            }
            Cause::NotOurChild => f.write_str("cause unknown (not our child)"),
        }
    }
}

/// A signal number written as its name ("SIGKILL"), or "signal 42".
pub struct SigName(pub i32);

impl fmt::Display for SigName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "SIGHUP",
            2 => "SIGINT",
            3 => "SIGQUIT",
            4 => "SIGILL",
            5 => "SIGTRAP",
            6 => "SIGABRT",
            7 => "SIGBUS",
            8 => "SIGFPE",
            9 => "SIGKILL",
            10 => "SIGUSR1",
            11 => "SIGSEGV",
            12 => "SIGUSR2",
            13 => "SIGPIPE",
            14 => "SIGALRM",
            15 => "SIGTERM",
            24 => "SIGXCPU",
            25 => "SIGXFSZ",
            31 => "SIGSYS",
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}

/// Why a live process can never be a service's process, whatever a pidfile says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// custos itself: a pidfile naming it would make custos signal itself.
    Custos,
    /// PID 1, init: SIGTERM to busybox init reboots the board.
    Init,
    /// A kernel thread (PF_KTHREAD): not a program, never a service.
    KernelThread,
    /// /proc/PID/exe cannot be read: custos cannot tell what it runs.
    NoExe,
    /// An output keeper of custos (this one's or an earlier run's): the custos binary named
    /// `custos-keeper`.
    Keeper,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Custos => "custos itself",
            Refusal::Init => "init (PID 1)",
            Refusal::KernelThread => "a kernel thread",
            Refusal::NoExe => "a process whose /proc/PID/exe cannot be read",
            Refusal::Keeper => "custos's output keeper",
        })
    }
}

/// Why no process was identified for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    NoPidfile,
    /// The pidfile holds something other than one decimal PID > 1 and a newline.
    BadPidfile,
    /// The pidfile is not a regular file (a FIFO, a device, a symlink, ...): it was not read.
    PidfileNotRegular(Kind),
    /// The pidfile names a PID with no live process.
    DeadPid(i32),
    /// The pidfile was written before the process it names started, or before this boot: the
    /// PID was reused by an unrelated process, which custos leaves alone.
    StalePidfile(i32),
    /// The pidfile names a process that can never be a service's: custos itself, init, a
    /// kernel thread, or one whose exe cannot be read. Never pinned, never signalled.
    NeverPinned(i32, Refusal),
    /// The PID's exe is not the configured one.
    WrongExe(i32),
    /// No process has the configured exe (and args).
    NoMatch,
    /// The pinned process is gone (found by polling /proc).
    PinGone,
    /// The pidfile names a process that started before the service's last pinned process
    /// (`pinned`): not the service's current daemon, whatever the pidfile says. Left alone.
    OlderThanPin {
        pid: i32,
        pinned: i32,
    },
    /// The pidfile has not changed since it named the process custos pinned before, which is
    /// gone: its PID now belongs to another process. Left alone.
    Reused(i32),
    /// The pidfile has not changed since custos saw it in an earlier boot: its PID means
    /// nothing in this one. Left alone.
    EarlierBoot(i32),
    /// The pidfile names a process that belongs to custos for something else: another
    /// service's pinned process, or a script or check custos runs. Left alone.
    Taken(i32),
}

impl fmt::Display for Absent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Absent::NoPidfile => f.write_str("no pidfile"),
            Absent::BadPidfile => f.write_str("pidfile does not hold a valid PID"),
            Absent::PidfileNotRegular(k) => write!(f, "pidfile {}", PidfileNotRegular(k)),
            Absent::DeadPid(p) => write!(f, "pidfile names pid {p}, which is not running"),
            Absent::StalePidfile(p) => write!(
                f,
                "pidfile is stale: pid {p} started after the pidfile was written (PID reused; left alone)"
            ),
            Absent::NeverPinned(p, r) => write!(
                f,
                "pidfile names pid {p}, which is {r}: never pinned, never signalled"
            ),
            Absent::WrongExe(p) => write!(f, "pid {p} runs another program (left alone)"),
            Absent::NoMatch => f.write_str("no process runs the configured exe"),
            Absent::PinGone => f.write_str("pinned process is gone"),
            Absent::OlderThanPin { pid, pinned } => write!(
                f,
                "pidfile is stale: pid {pid} started before pid {pinned}, the service's last pinned process, so it is not the service (left alone)"
            ),
            Absent::Reused(p) => write!(
                f,
                "pidfile is stale: unchanged since it named the process custos pinned before, which is gone; pid {p} is another process now (PID reused; left alone)"
            ),
            Absent::EarlierBoot(p) => write!(
                f,
                "pidfile is stale: unchanged since custos saw it in an earlier boot; pid {p} is another process now (left alone)"
            ),
            Absent::Taken(p) => write!(
                f,
                "pidfile names pid {p}, which custos runs for something else (another service, a script or a check): left alone"
            ),
        }
    }
}

/// Why a pidfile that is not a regular file was left alone: "is a FIFO, not a regular file:
/// not read", "is a symbolic link, not a regular file: not followed".
pub struct PidfileNotRegular(pub Kind);

impl fmt::Display for PidfileNotRegular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.0 == Kind::Symlink {
            "not followed"
        } else {
            "not read"
        };
        write!(f, "is {}, not a regular file: {what}", self.0)
    }
}

/// Why a live process named by a pidfile can neither be verified as the service's process nor
/// ruled out. custos then holds: it neither starts the service (that could make a second
/// copy) nor signals the process (it could be a stranger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    /// The pidfile's mtime lies ahead of the wall clock: the clock went back since it was
    /// written, so when it was written is unknown.
    Future,
    /// The pidfile looks written before the process started, which would make it stale, but
    /// a wall-clock step custos did not witness may lie between the two.
    Older,
    /// The pidfile looks written after the process started, but custos saw the wall clock
    /// stepped back since, and its mtime falls where the clock read the same twice: it may
    /// be older than it looks.
    SteppedBack,
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Doubt::Future => "the pidfile's mtime is in the future (the wall clock went back since it was written?), so when it was written is unknown",
            Doubt::Older => "the pidfile looks written before the process started (stale), but a wall-clock step custos did not witness may lie between",
            Doubt::SteppedBack => "the wall clock was stepped back since, and the pidfile's mtime falls where it read the same twice, so it may be older than it looks",
        })
    }
}

impl Absent {
    /// Whether the reason names a live process that custos leaves alone (worth saying at once,
    /// even while a start is under way).
    pub fn leaves_a_process_alone(&self) -> bool {
        matches!(
            self,
            Absent::StalePidfile(_)
                | Absent::NeverPinned(..)
                | Absent::OlderThanPin { .. }
                | Absent::Reused(_)
                | Absent::EarlierBoot(_)
                | Absent::Taken(_)
                | Absent::WrongExe(_)
        )
    }
}

/// What one probe of a service's identity found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A process verified as the service's.
    Alive(Pin),
    Absent(Absent),
    /// `exe`/`args` match this many processes: none of them is touched.
    Ambiguous(u16),
    /// The pidfile names this live process, which can be neither verified nor ruled out.
    Unverified(Pin, Doubt),
}

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
    /// Identity is ambiguous (several processes match): custos neither starts nor signals.
    Held(u16),
    /// The pidfile names a live process that can be neither verified nor ruled out: custos
    /// neither starts nor signals, until it exits, the pidfile changes, or an operator decides
    /// (`custos start`: it is not the service; `custos adopt`: it is).
    Unverified {
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
            Note::StartFailed(s) => write!(f, "start failed: {s}"),
            Note::StopScriptExited(c) => write!(f, "stop script {c}"),
            Note::GivenUp { restarts, window } => write!(
                f,
                "given up: {restarts} restarts within {} (max_restarts); not starting it again until a reload",
                Dur(window)
            ),
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
            Note::SurvivesKill { pin, waited } => write!(
                f,
                "pid {} still alive {} after SIGKILL (uninterruptible sleep?); waiting",
                pin.pid,
                Dur(waited)
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
            | Phase::Held(_)
            | Phase::Unverified { .. } => true,
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
    fn clear_fails(&mut self) {
        self.fails = 0;
        self.loop_note = 0;
        self.stable_at = None;
    }

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

    fn died(
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
    /// says so (`then` follows once they are gone), or go on with `then` at once.
    fn clear_then(&mut self, policy: &Policy, pin: Pin, then: Then, now: Mono, out: &mut Actions) {
        if !policy.stop_leftovers {
            self.then(policy, then, now, out);
            return;
        }
        self.leftovers = 0;
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

    /// What follows a dead instance (its leftovers gone, or not to be stopped).
    fn then(&mut self, policy: &Policy, then: Then, now: Mono, out: &mut Actions) {
        self.leftovers = 0;
        match then {
            Then::Died { cause, uptime } => self.after_death(policy, cause, uptime, now, out),
            Then::Restart(why) => self.restart_start(policy, why, now, out),
        }
    }

    /// After a death by itself: a stable run is started again at once, a failure in a row
    /// waits out its backoff.
    fn after_death(
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

    fn start_failed(
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
    fn schedule(&mut self, policy: &Policy, why: StartWhy, now: Mono, out: &mut Actions) {
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
    fn window_full(&mut self, r: &RestartPolicy, now: Mono) -> bool {
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
    fn restart_start(&mut self, policy: &Policy, why: RestartWhy, now: Mono, out: &mut Actions) {
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
    fn give_up(&mut self, policy: &Policy, out: &mut Actions) {
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
    fn not_starting(&mut self, why: StartWhy, out: &mut Actions) {
        self.phase = Phase::Unmonitored;
        push(out, Action::Log(Note::NotStarting(why)));
    }

    fn start(&mut self, policy: &Policy, why: StartWhy, now: Mono, out: &mut Actions) {
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

/// backoff × 2^(fails−1), capped at backoff_max.
pub fn backoff(r: &RestartPolicy, fails: u32) -> Duration {
    let shift = fails.saturating_sub(1).min(31);
    r.backoff
        .checked_mul(1u32 << shift)
        .map_or(r.backoff_max, |d| d.min(r.backoff_max))
}

#[cfg(test)]
mod tests {
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
            Phase::Held(2),
            Phase::Unverified {
                pin: OTHER,
                doubt: Doubt::Older,
            },
            Phase::Unmonitored,
        ];
        for step in [ClearStep::Term, ClearStep::Kill] {
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
                cause: Cause::Killed {
                    signal: 9,
                    core: false,
                },
            },
            Event::Died {
                pid: OTHER.pid,
                cause: Cause::Exited(3),
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

    /// Rule 1 and Rule 2 over every state × event: a signal only ever goes to the process that
    /// is pinned and believed alive in the state before the event; a stop script only runs for
    /// a running service; nothing is started while a pinned process is believed alive.
    #[test]
    fn every_state_and_event_keeps_the_rules() {
        for (has_stop, stop_leftovers) in
            [(true, false), (false, false), (true, true), (false, true)]
        {
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
                                assert_eq!(
                                    Some(pin),
                                    before,
                                    "signal to an unpinned process: {ctx}"
                                );
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
                                assert!(
                                    dead_main && st.pin().is_none(),
                                    "sweep while alive: {ctx}"
                                );
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
                            assert!(matches!(st.phase, Phase::Held(_)), "{ctx}");
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
        assert_eq!(st.phase, Phase::Held(2));
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
        assert_eq!(st.phase, Phase::Held(3));
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
        let held = Phase::Unverified {
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
                cause: Cause::Exited(1),
            },
            s(1),
        );
        st.decide(&p, unverified, s(1));
        assert!(matches!(st.phase, Phase::Unverified { .. }));
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
}

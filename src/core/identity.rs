//! What custos knows of a process: its identity (a pin), how it died, and what one probe of a
//! service's identity found.

use core::fmt;

use crate::clock::Mono;
use crate::files::Kind;

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

//! Identity: which live process is a service's, judged from its pidfile, its exe and what custos
//! itself started (`judge`), and the processes custos never pins (itself, PID 1, kernel threads).

use std::path::Path;
use std::time::Duration;

use super::pidfile::{mtime_on_boot_clock, read_pidfile, PidfileError, PidfileStamp, MTIME_SLACK};
use super::stat::{
    all_pids, is_process, own_pid, parse_stat, pin, stat, stat_checked, tick, ProcDir, ProcStat,
};
use crate::core::{Absent, Doubt, Observation, Pin, Refusal};

/// PF_KTHREAD: the process is a kernel thread.
pub(super) const PF_KTHREAD: u32 = 0x0020_0000;

/// Whether the live process `pid` (with `stat`) must never be pinned, and why.
pub fn refusal(pid: i32, stat: &ProcStat) -> Option<Refusal> {
    if pid == own_pid() {
        Some(Refusal::Custos)
    } else if pid == 1 {
        Some(Refusal::Init)
    } else if stat.flags & PF_KTHREAD != 0 {
        Some(Refusal::KernelThread)
    } else if std::fs::read_link(format!("/proc/{pid}/exe")).is_err() {
        Some(Refusal::NoExe)
    } else if is_keeper(pid) {
        Some(Refusal::Keeper)
    } else {
        None
    }
}

/// Whether `pid` is an output keeper of custos (crate::keeper): named `custos-keeper` and
/// running the same binary as this custos. Such a process holds pipes, never a service.
pub fn is_keeper(pid: i32) -> bool {
    let named = std::fs::read(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == b"custos-keeper");
    named
        && match (
            std::fs::read_link(format!("/proc/{pid}/exe")),
            std::fs::read_link("/proc/self/exe"),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// The state of a pinned process now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinState {
    Alive,
    /// /proc could not be read (EMFILE, ENOMEM, ...): nothing is known; keep the pin.
    Unknown,
    /// Exited, not yet reaped by its parent.
    Zombie,
    /// No process with that PID and start time.
    Gone,
}

/// Checks that the pinned process is still the one pinned.
pub fn check_pin(pin: Pin) -> PinState {
    match stat_checked(pin.pid) {
        Ok(Some(s)) if s.start_ticks == pin.start_ticks => {
            if s.state == 'Z' || s.state == 'X' {
                PinState::Zombie
            } else {
                PinState::Alive
            }
        }
        Ok(_) => PinState::Gone,
        Err(_) => PinState::Unknown,
    }
}

/// The last start script custos ran for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    /// When it was spawned, on the boot clock.
    pub at: Duration,
    /// The pidfile just before.
    pub before: Option<PidfileStamp>,
}

/// The process custos pinned last for a service (in this run, or in an earlier run of this
/// boot, from the pins file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPin {
    pub pid: i32,
    pub start_ticks: u64,
    /// The pidfile as custos read it for this pin.
    pub stamp: Option<PidfileStamp>,
}

/// What custos knows about a service beyond what its pidfile says now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub spawned: Option<Spawned>,
    pub last: Option<LastPin>,
    /// The pidfile as custos last saw it in an earlier boot.
    pub earlier_boot: Option<PidfileStamp>,
}

/// What holds for all services at once.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// custos is the child subreaper: what its start scripts leave running are its children.
    pub subreaper: bool,
    /// Since when (boot clock) custos has watched the wall clock and seen it stepped no more.
    pub trusted_since: Duration,
    /// After custos saw the wall clock stepped back: mtimes that read (on the boot clock, as
    /// the wall clock is now) before this may have been written before the step, earlier
    /// than they read.
    pub ambiguous_before: Duration,
    /// PIDs custos runs for something else: other services' pins, scripts, check programs.
    pub taken: &'a [i32],
}

/// What was read about the live process a pidfile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    pub pin: Pin,
    pub stamp: PidfileStamp,
    /// The pidfile's mtime on the boot clock; `None`: before this boot, by the wall clock now.
    pub written: Option<Duration>,
    /// The process descends from custos (checked only when it matters: after a start).
    pub descendant: bool,
}

/// Decides whether the live process a pidfile names is the service's, in this order:
/// 1. the process custos pinned last is adopted again, exactly (same PID and start time);
/// 2. one that started before it is not the service; a pidfile unchanged since it named it, or
///    since an earlier boot, names a reused PID; a process custos runs for something else is
///    not the service;
/// 3. after custos ran the start script: a process that started after the script was spawned
///    (boot clock), named by a pidfile that changed since, and that is custos's descendant (it
///    is the subreaper; without one this part cannot be checked) is the service;
/// 4. met for the first time: a pidfile written (mtime) no earlier than MTIME_SLACK before the
///    process started, and not in the future, names it (unless custos saw the clock stepped
///    back since, and the mtime falls where the clock read the same twice); one written earlier
///    is stale, when custos has watched the wall clock without a step since it was written;
///    otherwise, and when the mtime lies in the future, custos cannot tell: the process is
///    unverified.
///
/// Only part 4 reads the wall clock. A step custos saw can only make it hold (never start a
/// second copy, never adopt); a step back custos did not see (before it first started in this
/// boot) can make a stale first-met pidfile look fresh.
pub fn judge(n: &Named, known: &Known, ctx: &Context<'_>, now: Duration) -> Observation {
    let pid = n.pin.pid;
    if let Some(last) = known.last {
        if last.pid == pid && last.start_ticks == n.pin.start_ticks {
            return Observation::Alive(n.pin);
        }
        if n.pin.start_ticks < last.start_ticks {
            return Observation::Absent(Absent::OlderThanPin {
                pid,
                pinned: last.pid,
            });
        }
        if last.stamp == Some(n.stamp) {
            return Observation::Absent(Absent::Reused(pid));
        }
    }
    if known.earlier_boot == Some(n.stamp) {
        return Observation::Absent(Absent::EarlierBoot(pid));
    }
    if ctx.taken.contains(&pid) {
        return Observation::Absent(Absent::Taken(pid));
    }
    if let Some(sp) = known.spawned {
        // Start times are whole ticks, rounded down.
        let after_spawn = n.pin.started + tick() > sp.at;
        if after_spawn && sp.before != Some(n.stamp) && (n.descendant || !ctx.subreaper) {
            return Observation::Alive(n.pin);
        }
    }
    let slack = MTIME_SLACK + tick();
    match n.written {
        Some(w) if w > now + slack => Observation::Unverified(n.pin, Doubt::Future),
        Some(w) if w + slack >= n.pin.started => {
            if w < ctx.ambiguous_before {
                Observation::Unverified(n.pin, Doubt::SteppedBack)
            } else {
                Observation::Alive(n.pin)
            }
        }
        Some(w) if w >= ctx.trusted_since => Observation::Absent(Absent::StalePidfile(pid)),
        _ => Observation::Unverified(n.pin, Doubt::Older),
    }
}

/// Whether `pid` descends from process `ancestor` (bounded walk up the parents).
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        match stat(p) {
            Some(s) if s.ppid == ancestor => return true,
            Some(s) if s.ppid > 1 => p = s.ppid,
            _ => return false,
        }
    }
    false
}

/// Identifies a service's process from its pidfile (see [`judge`]). Also returns the
/// pidfile's stamp, to remember with a pin.
pub fn probe_pidfile(
    path: &Path,
    known: &Known,
    ctx: &Context<'_>,
    now: Duration,
) -> (Observation, Option<PidfileStamp>) {
    let (pid, meta) = match read_pidfile(path) {
        Ok(v) => v,
        Err(PidfileError::Missing) => return (Observation::Absent(Absent::NoPidfile), None),
        Err(PidfileError::Invalid) => return (Observation::Absent(Absent::BadPidfile), None),
        Err(PidfileError::NotRegular(k)) => {
            return (Observation::Absent(Absent::PidfileNotRegular(k)), None)
        }
    };
    let stamp = PidfileStamp::of(pid, &meta);
    let absent = |a| (Observation::Absent(a), Some(stamp));
    let s = match stat(pid) {
        None => return absent(Absent::DeadPid(pid)),
        Some(s) if s.state == 'Z' || s.state == 'X' => return absent(Absent::DeadPid(pid)),
        Some(_) if !is_process(pid) => return absent(Absent::BadPidfile),
        Some(s) => s,
    };
    if let Some(r) = refusal(pid, &s) {
        return absent(Absent::NeverPinned(pid, r));
    }
    let named = Named {
        pin: pin(pid, s.start_ticks),
        stamp,
        written: mtime_on_boot_clock(&meta),
        descendant: known.spawned.is_some() && descends_from(pid, own_pid()),
    };
    (judge(&named, known, ctx, now), Some(stamp))
}

fn exe_matches(p: &ProcDir, exe: &Path, args: Option<&str>) -> bool {
    let Ok(e) = p.read_link("exe") else {
        return false;
    };
    let e = e.strip_suffix(b" (deleted)").unwrap_or(&e);
    if e != exe.as_os_str().as_encoded_bytes() {
        return false;
    }
    match args {
        None => true,
        Some(want) => p
            .read("cmdline", 1 << 20)
            .ok()
            .and_then(|c| String::from_utf8(c).ok())
            .is_some_and(|c| args_text(&c) == want),
    }
}

/// The arguments after argv[0] of a /proc/PID/cmdline, empty fields dropped (busybox init pads
/// its rewritten argv with NULs), joined by spaces.
pub fn args_text(cmdline: &str) -> String {
    let argv: Vec<&str> = cmdline.split('\0').filter(|a| !a.is_empty()).collect();
    argv.get(1..).map(|a| a.join(" ")).unwrap_or_default()
}

/// Identifies a service's process by its exe (and args): exactly one match pins it; several
/// are ambiguous and none of them is touched.
/// `taken`: PIDs custos runs for something else (its output keeper, scripts, other services'
/// pins), never this service's process.
pub fn probe_exe(exe: &Path, args: Option<&str>, taken: &[i32]) -> Observation {
    let Ok(all) = all_pids() else {
        return Observation::Absent(Absent::NoMatch);
    };
    let me = own_pid();
    let mut found: Option<Pin> = None;
    let mut count: u16 = 0;
    for pid in all {
        if pid == me || pid == 1 || taken.contains(&pid) {
            continue;
        }
        let Ok(p) = ProcDir::open(pid) else {
            continue;
        };
        // Never custos itself or init, whatever they run (kernel threads have no exe).
        if !exe_matches(&p, exe, args) || is_keeper(pid) {
            continue;
        }
        // Read through the same /proc/PID directory handle as the exe: a PID reused since
        // cannot lend its stat.
        let Some(s) = p.read("stat", 4096).ok().and_then(|t| parse_stat(&t)) else {
            continue;
        };
        if s.state == 'Z' || s.state == 'X' {
            continue;
        }
        count = count.saturating_add(1);
        found = Some(pin(p.pid(), s.start_ticks));
    }
    match (count, found) {
        (1, Some(pin)) => Observation::Alive(pin),
        (0, _) | (_, None) => Observation::Absent(Absent::NoMatch),
        (n, _) => Observation::Ambiguous(n),
    }
}

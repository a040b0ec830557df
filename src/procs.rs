//! Reading /proc and pidfiles: everything custos knows about a process's identity comes from
//! here. A process that vanishes mid-read is normal and reported as gone, never as an error that
//! stops supervision.
//!
//! /proc is read with std and a few `*at` calls, not through the `procfs` crate: its stat parser
//! panicked on malformed text (found by fuzzing), and the six files custos reads did not justify
//! its size on the 512 KiB board binary (see the README's crate notes).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::core::{Absent, Doubt, Observation, Pin, Refusal};
use crate::files::{self, FileError, Kind};
use crate::limits::MAX_PIDFILE_BYTES;
use crate::sys;

/// The highest PID Linux hands out (PID_MAX_LIMIT on 64-bit).
const PID_MAX_LIMIT: i64 = 4_194_304;

/// What /proc/PID/stat says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Clock ticks after boot at which the process started.
    pub start_ticks: u64,
    /// The state letter: R, S, D, Z, T, t, ...
    pub state: char,
    /// The kernel's per-process flags (PF_*).
    pub flags: u32,
    /// The parent's PID.
    pub ppid: i32,
}

/// PF_KTHREAD: the process is a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

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

/// custos's own PID.
pub fn own_pid() -> i32 {
    std::process::id() as i32
}

/// Reads /proc/PID/stat; `None` when there is no such process (or it vanished while read).
pub fn stat(pid: i32) -> Option<ProcStat> {
    stat_checked(pid).ok().flatten()
}

/// Reads /proc/PID/stat, telling "no such process" (`Ok(None)`) from a failure to read
/// (`Err`: out of file descriptors or memory, permissions), which says nothing about the process.
pub fn stat_checked(pid: i32) -> io::Result<Option<ProcStat>> {
    Ok(stat_fields(pid)?.map(|s| ProcStat {
        start_ticks: s.start_ticks,
        state: s.state,
        flags: s.flags,
        ppid: s.ppid,
    }))
}

/// Reads and parses /proc/PID/stat: `Ok(None)` when there is no such process; text that does
/// not parse says nothing about the process and is an `Err`, like a failure to read.
pub fn stat_fields(pid: i32) -> io::Result<Option<StatFields>> {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(text) => match parse_stat(&text) {
            Some(s) => Ok(Some(s)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat: unexpected contents"),
            )),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// An open /proc/PID directory: what is read through it belongs to that one process, even if
/// the PID is reused after it exits (reads then fail with ESRCH).
pub struct ProcDir {
    pid: i32,
    fd: OwnedFd,
}

impl ProcDir {
    pub fn open(pid: i32) -> io::Result<ProcDir> {
        let path = CString::new(format!("/proc/{pid}")).map_err(io::Error::other)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let fd = sys::fs::open(&path, flags)?;
        Ok(ProcDir { pid, fd })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Up to `limit` bytes of one of the process's files (proc files are read whole).
    pub fn read(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
        let name = CString::new(name).map_err(io::Error::other)?;
        let fd = sys::fs::openat(self.fd.as_fd(), &name, libc::O_RDONLY | libc::O_CLOEXEC)?;
        let file = std::fs::File::from(fd);
        let mut out = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, limit), &mut out)?;
        Ok(out)
    }

    /// The target of one of the process's symlinks (`exe`).
    pub fn read_link(&self, name: &str) -> io::Result<Vec<u8>> {
        let name = CString::new(name).map_err(io::Error::other)?;
        let mut buf = [0u8; 4096];
        let n = sys::fs::readlinkat(self.fd.as_fd(), &name, &mut buf)?;
        Ok(buf[..n].to_vec())
    }
}

/// The PIDs listed in /proc now (processes, not threads), in directory order.
pub fn all_pids() -> io::Result<impl Iterator<Item = i32>> {
    Ok(std::fs::read_dir("/proc")?.filter_map(|e| {
        let e = e.ok()?;
        e.file_name()
            .to_str()?
            .parse::<i32>()
            .ok()
            .filter(|&p| p > 0)
    }))
}

/// sysconf(name), or `fallback` when the system does not say.
fn sysconf(name: libc::c_int, fallback: u64) -> u64 {
    sys::proc::sysconf(name).unwrap_or(fallback)
}

/// The size of a memory page, for /proc/PID/statm.
pub fn page_size() -> u64 {
    sysconf(libc::_SC_PAGESIZE, 4096)
}

/// The exit status of a zombie, as wait(2) would report it (/proc/PID/stat field 52, Linux
/// 3.5+; readable by root or the process's user).
pub fn exit_status(pid: i32) -> Option<i32> {
    stat_fields(pid).ok()??.exit_code
}

/// The fields of /proc/PID/stat custos uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    pub state: char,
    pub ppid: i32,
    /// The process group and the session (fields 5 and 6).
    pub pgrp: i32,
    pub session: i32,
    /// The kernel's per-process flags (PF_*).
    pub flags: u32,
    /// utime, stime: clock ticks spent in user and kernel mode.
    pub utime: u64,
    pub stime: u64,
    pub start_ticks: u64,
    /// The exit status of a zombie (field 52, Linux 3.5+).
    pub exit_code: Option<i32>,
}

/// Parses /proc/PID/stat text: `PID (COMM) STATE FIELD4 FIELD5 ...`, COMM ending at the
/// last `)` (a command name may hold spaces and parentheses). Read by hand: procfs's parser
/// panics on text the kernel never writes (a `)` at the very end, a `(` first), and custos
/// does not panic whatever it reads.
pub fn parse_stat(bytes: &[u8]) -> Option<StatFields> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open || !bytes[..open].ends_with(b" ") {
        return None;
    }
    let rest = std::str::from_utf8(bytes.get(close + 1..)?).ok()?;
    let mut f = rest.strip_prefix(' ')?.trim_end_matches('\n').split(' ');
    let mut state = f.next()?.chars();
    let (Some(state), None) = (state.next(), state.next()) else {
        return None;
    };
    // Fields 4.. by number (proc(5)): ppid 4, pgrp 5, session 6, flags 9, utime 14, stime 15, starttime 22,
    // exit_code 52.
    let fields: Vec<&str> = f.take(49).collect();
    let num = |n: usize| fields.get(n - 4)?.parse::<u64>().ok();
    Some(StatFields {
        state,
        ppid: fields.first()?.parse().ok()?,
        pgrp: fields.get(5 - 4)?.parse().ok()?,
        session: fields.get(6 - 4)?.parse().ok()?,
        flags: fields.get(9 - 4)?.parse().ok()?,
        utime: num(14)?,
        stime: num(15)?,
        start_ticks: num(22)?,
        exit_code: fields.get(52 - 4).and_then(|v| v.parse().ok()),
    })
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

/// One field of /proc/PID/status ("TracerPid", "Tgid", "Groups"), as text. Read by hand:
/// procfs's full Status parser costs ~21 KB of binary for the three fields custos needs.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_value(&text, key).map(str::to_string)
}

/// The value of `key` in /proc/PID/status text (`Key:\tvalue` lines), trimmed.
pub fn status_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// TracerPid from /proc/PID/status: non-zero when a debugger is attached.
pub fn tracer_pid(pid: i32) -> Option<i32> {
    status_field(pid, "TracerPid")?.parse().ok()
}

/// Whether `pid` names a process (a thread-group leader), not one of its other threads:
/// /proc/TID/stat answers for threads too, so a pidfile holding a thread ID would pin a thread.
pub fn is_process(pid: i32) -> bool {
    status_field(pid, "Tgid").and_then(|t| t.parse::<i32>().ok()) == Some(pid)
}

/// Why a pidfile could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidfileError {
    Missing,
    Invalid,
    /// Not a regular file (a FIFO, a device, a symlink, ...): not opened, not read.
    NotRegular(Kind),
}

/// Parses pidfile contents strictly: decimal digits, a PID >= 1 that Linux can hand out,
/// and at most one trailing newline. (PID 1 parses, so that custos can say it refuses init.)
pub fn parse_pid(bytes: &[u8]) -> Option<i32> {
    let digits = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        n = n * 10 + i64::from(d - b'0');
    }
    if !(1..=PID_MAX_LIMIT).contains(&n) {
        return None;
    }
    i32::try_from(n).ok()
}

/// Reads a pidfile; returns the PID and the file's metadata. Whoever can write the pidfile's
/// directory (often the service's own user) decides what is there: only a regular file is
/// opened, never through a symlink, and never in a way that can block (a FIFO, a terminal) or
/// arm a device (/dev/watchdog); see `files`.
pub fn read_pidfile(path: &Path) -> Result<(i32, std::fs::Metadata), PidfileError> {
    let mut f = match files::open_regular(path, false) {
        Ok(f) => f,
        Err(FileError::Kind(k)) => return Err(PidfileError::NotRegular(k)),
        Err(_) => return Err(PidfileError::Missing),
    };
    let meta = f.metadata().map_err(|_| PidfileError::Missing)?;
    let mut buf = [0u8; MAX_PIDFILE_BYTES + 1];
    let len = files::read_some(&mut f, &mut buf).map_err(|_| PidfileError::Invalid)?;
    if len > MAX_PIDFILE_BYTES {
        return Err(PidfileError::Invalid);
    }
    let pid = parse_pid(&buf[..len]).ok_or(PidfileError::Invalid)?;
    Ok((pid, meta))
}

/// One version of a pidfile: the PID it names and what any rewrite changes (inode, size,
/// timestamps). Compared only with itself, never with a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidfileStamp {
    pub pid: i32,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl PidfileStamp {
    pub fn of(pid: i32, m: &std::fs::Metadata) -> PidfileStamp {
        PidfileStamp {
            pid,
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The pidfile's stamp now; `None` when it is missing or holds no valid PID.
pub fn pidfile_stamp(path: &Path) -> Option<PidfileStamp> {
    read_pidfile(path)
        .ok()
        .map(|(pid, m)| PidfileStamp::of(pid, &m))
}

/// A file's mtime on the boot clock (through the wall clock as it is now); `None` when that
/// lies before this boot.
fn mtime_on_boot_clock(m: &std::fs::Metadata) -> Option<Duration> {
    let wall = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    let boot = wall - crate::clock::wall_minus_boot();
    u64::try_from(boot).ok().map(Duration::from_nanos)
}

/// A start time in clock ticks after boot, as a time on CLOCK_BOOTTIME.
pub fn ticks_to_boot(start_ticks: u64) -> Duration {
    let tps = ticks_per_second();
    Duration::from_secs(start_ticks / tps)
        + Duration::from_nanos((start_ticks % tps) * 1_000_000_000 / tps)
}

/// Pins a PID with its start time.
pub fn pin(pid: i32, start_ticks: u64) -> Pin {
    Pin {
        pid,
        start_ticks,
        started: ticks_to_boot(start_ticks),
    }
}

/// Clock ticks per second for /proc start times.
pub fn ticks_per_second() -> u64 {
    sysconf(libc::_SC_CLK_TCK, 100)
}

/// How far a pidfile's mtime may lie before the start of the process it names and still
/// count as written after it: filesystems keep timestamps in whole seconds (ext4 with 128-byte
/// inodes, JFFS2) or two (FAT), truncated, so a pidfile written 0.9 s after its process
/// started can carry an mtime 0.1 s before it (or 1.9 s on FAT).
pub const MTIME_SLACK: Duration = Duration::from_secs(2);

/// One clock tick of /proc start times.
pub fn tick() -> Duration {
    Duration::from_nanos(1_000_000_000 / ticks_per_second())
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

/// A service's instance as custos saw it while its main process lived: the main process and
/// the process group and session it was in. Recorded when the process is pinned, because once
/// it is dead /proc has nothing more to say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub pin: Pin,
    pub pgrp: i32,
    pub session: i32,
}

/// The instance of the live pinned process `pin` (its start time checked in the same read).
pub fn instance_of(pin: Pin) -> Option<Instance> {
    let s = stat_fields(pin.pid).ok()??;
    (s.start_ticks == pin.start_ticks && s.state != 'Z' && s.state != 'X').then_some(Instance {
        pin,
        pgrp: s.pgrp,
        session: s.session,
    })
}

/// custos's own process group.
pub fn own_pgrp() -> i32 {
    sys::proc::getpgrp()
}

/// Why a dead instance's leftovers are not looked for at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSweep {
    /// The instance ran in custos's own process group (or in init's): that group is not the
    /// instance's alone.
    SharedGroup(i32),
    /// A live instance of another service is in the same process group.
    OtherService(i32),
}

impl std::fmt::Display for NoSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            NoSweep::SharedGroup(g) => write!(
                f,
                "its process group {g} is custos's own (or init's), not the instance's alone"
            ),
            NoSweep::OtherService(g) => write!(
                f,
                "another service's running process is in its process group {g}"
            ),
        }
    }
}

/// Finds the leftovers of the dead instance `inst`, positively, never by name. A leftover is
/// a live process that
/// - is custos's descendant (an orphan custos inherited as subreaper has custos as parent),
///   and no descendant of a process in `guarded` (other services' pinned processes);
/// - started no earlier than the dead main process and no later than `died_by`, when custos
///   saw it dead (start times on the boot clock): what starts after the death is not the
///   dead instance's, whatever group number it has (a group's number is a PID, reused once
///   the group is empty);
/// - is in the dead main process's process group and session, as recorded while it lived:
///   a process that made a group or a session of its own left the instance on purpose;
/// - is not custos, init, a kernel thread, custos's output keeper, the dead main's PID, or
///   in `taken` (scripts, checks, other services' pins).
///
/// Puts up to `out`'s capacity of them, as (PID, start time), into `out`; returns how many
/// were found in all.
pub fn find_leftovers<const N: usize>(
    inst: &Instance,
    died_by: Duration,
    taken: &[i32],
    guarded: &[Instance],
    out: &mut heapless::Vec<Pin, N>,
) -> Result<usize, NoSweep> {
    out.clear();
    let me = own_pid();
    if inst.pgrp <= 1 || inst.pgrp == own_pgrp() {
        return Err(NoSweep::SharedGroup(inst.pgrp));
    }
    if guarded.iter().any(|g| g.pgrp == inst.pgrp) {
        return Err(NoSweep::OtherService(inst.pgrp));
    }
    let Ok(all) = all_pids() else {
        return Ok(0);
    };
    let mut found = 0usize;
    for pid in all {
        if pid <= 1 || pid == me || pid == inst.pin.pid || taken.contains(&pid) {
            continue;
        }
        // One read of stat: its fields all belong to the one process that had the PID then.
        let Ok(Some(s)) = stat_fields(pid) else {
            continue;
        };
        if s.state == 'Z'
            || s.state == 'X'
            || s.flags & PF_KTHREAD != 0
            || s.pgrp != inst.pgrp
            || s.session != inst.session
            || s.start_ticks < inst.pin.start_ticks
            || ticks_to_boot(s.start_ticks) > died_by
        {
            continue;
        }
        if !ours_alone(s.ppid, me, guarded) || is_keeper(pid) {
            continue;
        }
        found += 1;
        let _ = out.push(pin(pid, s.start_ticks));
    }
    Ok(found)
}

/// Whether a process whose parent is `ppid` descends from custos (`me`) through no process of
/// `guarded` (bounded walk up the parents).
fn ours_alone(mut ppid: i32, me: i32, guarded: &[Instance]) -> bool {
    for _ in 0..64 {
        if ppid == me {
            return true;
        }
        if ppid <= 1 || guarded.iter().any(|g| g.pin.pid == ppid) {
            return false;
        }
        match stat(ppid) {
            Some(s) => ppid = s.ppid,
            None => return false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn cmdline_arguments_read_as_an_exe_identity_compares_them() {
        assert_eq!(
            args_text("/usr/sbin/d\0-f\0/etc/d.conf\0"),
            "-f /etc/d.conf"
        );
        assert_eq!(args_text("init\0\0\0\0"), "");
        assert_eq!(args_text("a\0\0b\0"), "b");
        assert_eq!(args_text(""), "");
    }

    #[test]
    fn a_proc_dir_reads_its_own_process_and_no_other() {
        let me = own_pid();
        let d = ProcDir::open(me).expect("own /proc dir");
        assert_eq!(d.pid(), me);
        let stat = parse_stat(&d.read("stat", 4096).expect("stat")).expect("parse");
        assert_eq!(
            stat.ppid,
            stat_fields(me).expect("read").expect("alive").ppid
        );
        assert_eq!(d.read("stat", 3).expect("stat").len(), 3);
        // Another process's exe (custos's own is faked by qemu-user when tests run emulated).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let cd = ProcDir::open(pid).expect("child dir");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(
            cd.read_link("exe").expect("exe"),
            exe.as_os_str().as_encoded_bytes()
        );
        // A process that exits and is reaped: its directory handle reads nothing more.
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(cd.read("stat", 4096).is_err());
        assert!(cd.read_link("exe").is_err());
        assert!(ProcDir::open(-1).is_err());
        assert!(all_pids().expect("list").any(|p| p == me));
        assert!(ticks_per_second() >= 1 && page_size() >= 4096);
    }

    #[test]
    fn pidfiles_are_parsed_strictly() {
        assert_eq!(parse_pid(b"1234\n"), Some(1234));
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for bad in [
            &b""[..],
            b"\n",
            b"0\n",
            b"-5\n",
            b" 12\n",
            b"12 \n",
            b"12\n\n",
            b"12\r\n",
            b"0x10\n",
            b"99999999\n",
            b"4194305\n",
            b"12abc\n",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn our_own_process_is_alive_and_pinned_by_start_time() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        let pin = pin(me, s.start_ticks);
        assert_eq!(check_pin(pin), PinState::Alive);
        let reused = super::pin(me, s.start_ticks + 1);
        assert_eq!(
            check_pin(reused),
            PinState::Gone,
            "same PID, other start time"
        );
    }

    fn probe(path: &Path, trusted_since: Duration) -> Observation {
        let ctx = Context {
            subreaper: false,
            trusted_since,
            ambiguous_before: Duration::ZERO,
            taken: &[],
        };
        probe_pidfile(path, &Known::default(), &ctx, crate::clock::boottime()).0
    }

    fn set_mtime(path: &Path, wall_secs: i64) {
        #[allow(clippy::useless_conversion)]
        let t = libc::timespec {
            tv_sec: wall_secs.try_into().unwrap_or(0),
            tv_nsec: 0,
        };
        let times = [t, t];
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: valid NUL-terminated path and a two-element timespec array.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn a_pidfile_met_for_the_first_time_is_judged_by_its_mtime_or_held() {
        let dir = std::env::temp_dir().join(format!("custos-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("x.pid");
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "{pid}").expect("write");
        drop(f);
        // Written now, after this process started: fresh.
        let now = crate::clock::boottime();
        assert!(matches!(probe(&path, now), Observation::Alive(p) if p.pid == pid));
        let wall = crate::clock::read(libc::CLOCK_REALTIME).as_secs() as i64;
        // Written 5 s before the process started: stale when custos watched the clock since
        // (no step can lie between), held when it did not.
        set_mtime(&path, wall - 5);
        assert_eq!(
            probe(&path, Duration::ZERO),
            Observation::Absent(Absent::StalePidfile(pid))
        );
        assert!(matches!(
            probe(&path, now),
            Observation::Unverified(p, Doubt::Older) if p.pid == pid
        ));
        // Before this boot, or in the future: held.
        set_mtime(&path, 1_000_000);
        assert!(matches!(
            probe(&path, Duration::ZERO),
            Observation::Unverified(_, Doubt::Older)
        ));
        set_mtime(&path, wall + 3600);
        assert!(matches!(
            probe(&path, Duration::ZERO),
            Observation::Unverified(_, Doubt::Future)
        ));
        // custos never pins itself.
        let me = std::process::id();
        std::fs::write(&path, format!("{me}\n")).expect("write");
        assert_eq!(
            probe(&path, now),
            Observation::Absent(Absent::NeverPinned(me as i32, Refusal::Custos))
        );
        std::fs::write(&path, "garbage\n").expect("write");
        assert_eq!(probe(&path, now), Observation::Absent(Absent::BadPidfile));
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(probe(&path, now), Observation::Absent(Absent::NoPidfile));
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stat_text_is_parsed_strictly_and_never_panics() {
        // This process's own stat, as the kernel writes it.
        let me = std::fs::read("/proc/self/stat").expect("read");
        let f = parse_stat(&me).expect("own stat");
        // qemu-user fakes its guest's own /proc/self/stat (state '0', most fields 0): only the
        // parse is checked there.
        let emulated = std::env::var_os("CUSTOS_TEST_EMULATED").is_some_and(|v| !v.is_empty());
        assert!(
            emulated || (f.start_ticks > 0 && "RSD".contains(f.state)),
            "{f:?}"
        );
        // A comm holding spaces and parentheses: the last ')' ends it.
        let s = b"42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 7 9 0 0 20 0 1 0 12345 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 256\n";
        let f = parse_stat(s).expect("comm with parens");
        assert_eq!(
            f,
            StatFields {
                state: 'S',
                ppid: 1,
                pgrp: 42,
                session: 42,
                flags: 4194560,
                utime: 7,
                stime: 9,
                start_ticks: 12345,
                exit_code: Some(256),
            }
        );
        // Found by fuzzing, and cut-down variants: no panic, just "unreadable".
        let crash = include_bytes!("../tests/fixtures/fuzz/proc-stat-crash-1");
        for bad in [
            &crash[..],
            b"(",
            b")",
            b"(x)",
            b"1 (x)",
            b"1 (x) ",
            b") (",
            b"1 ) x (",
            b"1 (x) S",
            b"1 (\xff) S 1 2",
            b"",
        ] {
            assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn identity_is_judged_without_the_wall_clock_where_custos_knows_more() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let stamp = |pid: i32, ino: u64| PidfileStamp {
            pid,
            dev: 1,
            ino,
            size: 4,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        // A process started at boot second 100, named by a pidfile written (by the wall
        // clock now) at 100.5: the plain case.
        let named = |written: Option<Duration>| Named {
            pin: pin(500, 100 * ticks_per_second()),
            stamp: stamp(500, 7),
            written,
            descendant: false,
        };
        let ctx = |trusted_since| Context {
            subreaper: true,
            trusted_since,
            ambiguous_before: Duration::ZERO,
            taken: &[],
        };
        let now = s(200);
        let none = Known::default();
        let fresh = named(Some(s(100) + ms(500)));
        assert_eq!(
            judge(&fresh, &none, &ctx(s(0)), now),
            Observation::Alive(fresh.pin)
        );
        // Coarse timestamps (whole seconds, two on FAT) truncate: tolerated.
        for w in [s(99), s(98) + ms(100)] {
            let n = named(Some(w));
            assert_eq!(
                judge(&n, &none, &ctx(now), now),
                Observation::Alive(n.pin),
                "{w:?}"
            );
        }
        // custos saw the clock stepped back (by 50 s at boot second 150): an mtime that reads
        // before 200 may be older than it reads.
        let stepped = Context {
            ambiguous_before: s(200),
            ..ctx(s(150))
        };
        assert_eq!(
            judge(&fresh, &none, &stepped, now),
            Observation::Unverified(fresh.pin, Doubt::SteppedBack)
        );
        // Written well before the process started.
        let old = named(Some(s(90)));
        assert_eq!(
            judge(&old, &none, &ctx(s(50)), now),
            Observation::Absent(Absent::StalePidfile(500)),
            "custos watched the clock since: stale"
        );
        assert_eq!(
            judge(&old, &none, &ctx(s(95)), now),
            Observation::Unverified(old.pin, Doubt::Older),
            "a step custos did not see may lie between: held"
        );
        assert_eq!(
            judge(&named(None), &none, &ctx(s(0)), now),
            Observation::Unverified(old.pin, Doubt::Older),
            "before this boot by the wall clock now: held"
        );
        assert_eq!(
            judge(&named(Some(s(300))), &none, &ctx(s(0)), now),
            Observation::Unverified(old.pin, Doubt::Future)
        );
        // The process custos pinned last (this run or an earlier one in this boot): adopted
        // again whatever the mtime says.
        let last = LastPin {
            pid: 500,
            start_ticks: 100 * ticks_per_second(),
            stamp: Some(stamp(500, 7)),
        };
        let k = Known {
            last: Some(last),
            ..Known::default()
        };
        for w in [None, Some(s(300)), Some(s(1))] {
            let n = named(w);
            assert_eq!(judge(&n, &k, &ctx(now), now), Observation::Alive(n.pin));
        }
        // A process older than the last pinned one: never adopted, whatever the mtime.
        let k = Known {
            last: Some(LastPin {
                pid: 400,
                start_ticks: 150 * ticks_per_second(),
                stamp: None,
            }),
            ..Known::default()
        };
        assert_eq!(
            judge(&fresh, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::OlderThanPin {
                pid: 500,
                pinned: 400
            })
        );
        // The pidfile unchanged since it named the last pin, which is gone: PID reused.
        let reused = Named {
            pin: pin(500, 160 * ticks_per_second()),
            ..fresh
        };
        let k = Known {
            last: Some(LastPin {
                pid: 500,
                start_ticks: 150 * ticks_per_second(),
                stamp: Some(stamp(500, 7)),
            }),
            ..Known::default()
        };
        assert_eq!(
            judge(&reused, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::Reused(500))
        );
        // Unchanged since an earlier boot.
        let k = Known {
            earlier_boot: Some(stamp(500, 7)),
            ..Known::default()
        };
        assert_eq!(
            judge(&fresh, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::EarlierBoot(500))
        );
        // Another service's process, a script, a check.
        let taken = Context {
            taken: &[500],
            ..ctx(s(0))
        };
        assert_eq!(
            judge(&fresh, &none, &taken, now),
            Observation::Absent(Absent::Taken(500))
        );
        // After a start: a descendant that started after the spawn, named by a pidfile that
        // changed since, is the service, whatever the mtime says.
        let spawned = |before| Known {
            spawned: Some(Spawned { at: s(99), before }),
            ..Known::default()
        };
        let ours = Named {
            descendant: true,
            ..named(None)
        };
        assert_eq!(
            judge(&ours, &spawned(None), &ctx(now), now),
            Observation::Alive(ours.pin)
        );
        assert_eq!(
            judge(&ours, &spawned(Some(stamp(321, 6))), &ctx(now), now),
            Observation::Alive(ours.pin)
        );
        // Not so when the pidfile did not change, the process started before the spawn, or
        // (with a subreaper) it is not custos's descendant: then the mtime decides.
        let unchanged = spawned(Some(stamp(500, 7)));
        assert!(matches!(
            judge(&ours, &unchanged, &ctx(now), now),
            Observation::Unverified(..)
        ));
        let early = Known {
            spawned: Some(Spawned {
                at: s(101),
                before: None,
            }),
            ..Known::default()
        };
        assert!(matches!(
            judge(&ours, &early, &ctx(now), now),
            Observation::Unverified(..)
        ));
        let stranger = Named {
            descendant: false,
            ..ours
        };
        assert!(matches!(
            judge(&stranger, &spawned(None), &ctx(now), now),
            Observation::Unverified(..)
        ));
        let no_subreaper = Context {
            subreaper: false,
            ..ctx(now)
        };
        assert_eq!(
            judge(&stranger, &spawned(None), &no_subreaper, now),
            Observation::Alive(stranger.pin)
        );
    }
}

//! One process as /proc shows it: its stat line (start time, state, parents, group), its status
//! fields, its files read through an open /proc/PID directory, and the clock-tick units.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::core::Pin;
use crate::sys;

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
///
/// This runs for every pinned process on every tick, so it costs three syscalls (open, one
/// read into a stack buffer, close) and no allocation: the kernel hands the whole line to one
/// read big enough for it (`STAT_BUF`, more than the longest line: 52 fields of at most 20
/// digits and a 64-byte name).
pub fn stat_fields(pid: i32) -> io::Result<Option<StatFields>> {
    let mut buf = [0u8; STAT_BUF];
    match read_stat(pid, &mut buf) {
        Ok(n) => match parse_stat(&buf[..n]) {
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

/// Bytes of the buffer /proc/PID/stat is read into (see `stat_fields`).
const STAT_BUF: usize = 1536;

/// Reads /proc/PID/stat into `buf`: the line's length. A line that does not end within the
/// buffer is `InvalidData`, never parsed cut short.
fn read_stat(pid: i32, buf: &mut [u8; STAT_BUF]) -> io::Result<usize> {
    use std::fmt::Write as _;
    use std::os::fd::AsRawFd;
    let mut path = heapless::String::<32>::new();
    let _ = write!(path, "/proc/{pid}/stat\0");
    let path = std::ffi::CStr::from_bytes_with_nul(path.as_bytes()).map_err(io::Error::other)?;
    let fd = sys::fs::open(path, libc::O_RDONLY | libc::O_CLOEXEC)?;
    let mut n = 0;
    // One read returns the whole line; more only on a kernel that hands it out in pieces.
    while n < buf.len() && !buf[..n].ends_with(b"\n") {
        match sys::fd::read(fd.as_raw_fd(), &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    if n == buf.len() && !buf[..n].ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: longer than {STAT_BUF} bytes"),
        ));
    }
    Ok(n)
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

/// One clock tick of /proc start times.
pub fn tick() -> Duration {
    Duration::from_nanos(1_000_000_000 / ticks_per_second())
}

//! Reading /proc (through the `procfs` crate) and pidfiles: everything custos knows about a
//! process's identity comes from here. A process that vanishes mid-read is normal and reported
//! as gone, never as an error that stops supervision.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use procfs::process::Process;
use procfs::ProcError;

use crate::core::{Absent, Observation, Pin};
use crate::files::{self, FileError, Kind};
use crate::limits::MAX_PIDFILE_BYTES;

/// The highest PID Linux hands out (PID_MAX_LIMIT on 64-bit).
const PID_MAX_LIMIT: i64 = 4_194_304;

/// What /proc/PID/stat says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Clock ticks after boot at which the process started.
    pub start_ticks: u64,
    /// The state letter: R, S, D, Z, T, t, ...
    pub state: char,
}

/// Reads /proc/PID/stat; `None` when there is no such process (or it vanished while read).
pub fn stat(pid: i32) -> Option<ProcStat> {
    stat_checked(pid).ok().flatten()
}

/// Reads /proc/PID/stat, telling "no such process" (`Ok(None)`) from a failure to read
/// (`Err`: out of file descriptors or memory, permissions), which says nothing about the process.
pub fn stat_checked(pid: i32) -> Result<Option<ProcStat>, ProcError> {
    Ok(stat_fields(pid)?.map(|s| ProcStat {
        start_ticks: s.start_ticks,
        state: s.state,
    }))
}

/// Reads and parses /proc/PID/stat: `Ok(None)` when there is no such process; text that does
/// not parse says nothing about the process and is an `Err`, like a failure to read.
pub fn stat_fields(pid: i32) -> Result<Option<StatFields>, ProcError> {
    let path = format!("/proc/{pid}/stat");
    match std::fs::read(&path) {
        Ok(text) => match parse_stat(&text) {
            Some(s) => Ok(Some(s)),
            None => Err(ProcError::Other(format!("{path}: unexpected contents"))),
        },
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ESRCH) =>
        {
            Ok(None)
        }
        Err(e) => Err(ProcError::Io(e, Some(path.into()))),
    }
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
    // Fields 4.. by number (proc(5)): utime 14, stime 15, starttime 22, exit_code 52.
    let fields: Vec<&str> = f.take(49).collect();
    let num = |n: usize| fields.get(n - 4)?.parse::<u64>().ok();
    Some(StatFields {
        state,
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

/// Parses pidfile contents strictly: decimal digits, a PID > 1 that Linux can hand out,
/// and at most one trailing newline.
pub fn parse_pid(bytes: &[u8]) -> Option<i32> {
    let digits = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        n = n * 10 + i64::from(d - b'0');
    }
    if n <= 1 || n > PID_MAX_LIMIT {
        return None;
    }
    i32::try_from(n).ok()
}

/// Reads a pidfile; returns the PID and the file's mtime (seconds.nanos since the epoch).
/// Whoever can write the pidfile's directory (often the service's own user) decides what is
/// there: only a regular file is opened, never through a symlink, and never in a way that
/// can block (a FIFO, a terminal) or arm a device (/dev/watchdog); see `files`.
pub fn read_pidfile(path: &Path) -> Result<(i32, Duration), PidfileError> {
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
    let mtime = u64::try_from(meta.mtime())
        .map(|s| Duration::new(s, u32::try_from(meta.mtime_nsec()).unwrap_or(0)))
        .unwrap_or_default();
    Ok((pid, mtime))
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Converts a wall-clock time (since the epoch) to time since boot, on CLOCK_BOOTTIME — the
/// clock /proc/PID/stat start times count on. `None` when it lies before this boot.
pub fn wall_to_boot(wall: Duration) -> Option<Duration> {
    let now_wall = clock(libc::CLOCK_REALTIME);
    let now_boot = clock(libc::CLOCK_BOOTTIME);
    let age = now_wall.saturating_sub(wall);
    now_boot.checked_sub(age)
}

/// Now on CLOCK_BOOTTIME: the supervisor's clock.
pub fn boottime() -> Duration {
    clock(libc::CLOCK_BOOTTIME)
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
    procfs::ticks_per_second().max(1)
}

/// Whether a pidfile written at `mtime` (wall clock) can name a process that started at
/// `start_ticks`: a pidfile is written after its process starts. One written earlier, or
/// before this boot, names a reused PID.
pub fn pidfile_is_stale(mtime: Duration, start_ticks: u64) -> bool {
    let Some(written) = wall_to_boot(mtime) else {
        return true;
    };
    let tps = ticks_per_second();
    let started = ticks_to_boot(start_ticks);
    // Start times have tick resolution; allow one tick and a little clock skew.
    let slack = Duration::from_millis(1000 / tps + 20);
    written + slack < started
}

/// Whether a pidfile's mtime lies in the future (the clock was set back since it was
/// written, e.g. a board without a real-time clock): then nothing about it can be verified.
pub fn pidfile_in_future(mtime: Duration) -> bool {
    mtime > clock(libc::CLOCK_REALTIME) + Duration::from_secs(2)
}

/// Identifies a service's process from its pidfile.
pub fn probe_pidfile(path: &Path) -> Observation {
    let (pid, mtime) = match read_pidfile(path) {
        Ok(v) => v,
        Err(PidfileError::Missing) => return Observation::Absent(Absent::NoPidfile),
        Err(PidfileError::Invalid) => return Observation::Absent(Absent::BadPidfile),
        Err(PidfileError::NotRegular(k)) => {
            return Observation::Absent(Absent::PidfileNotRegular(k))
        }
    };
    match stat(pid) {
        None => Observation::Absent(Absent::DeadPid(pid)),
        Some(s) if s.state == 'Z' || s.state == 'X' => Observation::Absent(Absent::DeadPid(pid)),
        Some(_) if !is_process(pid) => Observation::Absent(Absent::BadPidfile),
        Some(_) if pidfile_in_future(mtime) => Observation::Absent(Absent::FuturePidfile(pid)),
        Some(s) if pidfile_is_stale(mtime, s.start_ticks) => {
            Observation::Absent(Absent::StalePidfile(pid))
        }
        Some(s) => Observation::Alive(pin(pid, s.start_ticks)),
    }
}

fn exe_matches(p: &Process, exe: &Path, args: Option<&str>) -> bool {
    let Ok(e) = p.exe() else { return false };
    let e = e.as_os_str().as_encoded_bytes();
    let e = e.strip_suffix(b" (deleted)").unwrap_or(e);
    if e != exe.as_os_str().as_encoded_bytes() {
        return false;
    }
    match args {
        None => true,
        Some(want) => match p.cmdline() {
            Ok(argv) => argv.get(1..).map(|a| a.join(" ")).as_deref() == Some(want),
            Err(_) => false,
        },
    }
}

/// Identifies a service's process by its exe (and args): exactly one match pins it; several
/// are ambiguous and none of them is touched.
pub fn probe_exe(exe: &Path, args: Option<&str>) -> Observation {
    let Ok(all) = procfs::process::all_processes() else {
        return Observation::Absent(Absent::NoMatch);
    };
    let me = std::process::id() as i32;
    let mut found: Option<Pin> = None;
    let mut count: u16 = 0;
    for p in all.flatten() {
        if p.pid == me || !exe_matches(&p, exe, args) {
            continue;
        }
        let Ok(s) = p.stat() else { continue };
        if s.state == 'Z' || s.state == 'X' {
            continue;
        }
        count = count.saturating_add(1);
        found = Some(pin(p.pid, s.starttime));
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
    fn pidfiles_are_parsed_strictly() {
        assert_eq!(parse_pid(b"1234\n"), Some(1234));
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for bad in [
            &b""[..],
            b"\n",
            b"1\n",
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

    #[test]
    fn a_pidfile_written_before_its_process_started_is_stale() {
        let dir = std::env::temp_dir().join(format!("custos-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("x.pid");
        let me = std::process::id();
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "{me}").expect("write");
        drop(f);
        // Written now, after this process started: fresh.
        assert!(matches!(probe_pidfile(&path), Observation::Alive(p) if p.pid == me as i32));
        // Back-date it to one hour before boot-relative start: a reused PID.
        let old = libc::timespec {
            tv_sec: 1_000_000,
            tv_nsec: 0,
        };
        let times = [old, old];
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: valid NUL-terminated path and a two-element timespec array.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0);
        assert_eq!(
            probe_pidfile(&path),
            Observation::Absent(Absent::StalePidfile(me as i32))
        );
        std::fs::write(&path, "garbage\n").expect("write");
        assert_eq!(
            probe_pidfile(&path),
            Observation::Absent(Absent::BadPidfile)
        );
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(probe_pidfile(&path), Observation::Absent(Absent::NoPidfile));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stat_text_is_parsed_strictly_and_never_panics() {
        // This process's own stat, as the kernel writes it.
        let me = std::fs::read("/proc/self/stat").expect("read");
        let f = parse_stat(&me).expect("own stat");
        assert!(f.start_ticks > 0 && "RSD".contains(f.state), "{f:?}");
        // A comm holding spaces and parentheses: the last ')' ends it.
        let s = b"42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 7 9 0 0 20 0 1 0 12345 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 256\n";
        let f = parse_stat(s).expect("comm with parens");
        assert_eq!(
            f,
            StatFields {
                state: 'S',
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
}

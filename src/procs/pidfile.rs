//! Pidfiles: a PID read strictly, and the file's stamp (mtime on the boot clock) that tells a
//! pidfile written before a process started from one written by it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::files::{self, FileError, Kind};
use crate::limits::MAX_PIDFILE_BYTES;

/// The highest PID Linux hands out (PID_MAX_LIMIT on 64-bit).
const PID_MAX_LIMIT: i64 = 4_194_304;

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
pub(super) fn mtime_on_boot_clock(m: &std::fs::Metadata) -> Option<Duration> {
    let wall = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
    let boot = wall - crate::clock::wall_minus_boot();
    u64::try_from(boot).ok().map(Duration::from_nanos)
}

/// How far a pidfile's mtime may lie before the start of the process it names and still
/// count as written after it: filesystems keep timestamps in whole seconds (ext4 with 128-byte
/// inodes, JFFS2) or two (FAT), truncated, so a pidfile written 0.9 s after its process
/// started can carry an mtime 0.1 s before it (or 1.9 s on FAT).
pub const MTIME_SLACK: Duration = Duration::from_secs(2);

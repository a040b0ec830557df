//! Resource and heartbeat readings from /proc and the file system.

use super::Failure;

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident: u64 = statm_resident(&text)?;
    Some(resident.saturating_mul(crate::procs::page_size()))
}

/// The resident field (pages) of /proc/PID/statm: "size resident shared text lib data dt".
pub fn statm_resident(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    // Linux 6.2 and later give the count as the directory's size.
    let size = std::fs::metadata(&dir).ok()?.len();
    if size > 0 {
        return Some(size);
    }
    Some(std::fs::read_dir(&dir).ok()?.count() as u64)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = crate::procs::stat_fields(pid).ok()??;
    Some(s.utime.saturating_add(s.stime))
}

/// What identifies one version of a heartbeat file: a beat changes at least one of these.
/// Compared only with itself, never with a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime: (i64, i64),
    pub(super) ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A heartbeat file's metadata. Only its metadata is read (stat(2), following symlinks): the
/// file is never opened, so a FIFO or a device there cannot block or be armed; anything but a
/// regular file fails the check.
pub fn heartbeat_meta(path: &std::path::Path) -> Result<std::fs::Metadata, Failure> {
    let meta = std::fs::metadata(path).map_err(|_| Failure::HeartbeatMissing)?;
    if !meta.is_file() {
        use std::os::unix::fs::MetadataExt;
        let kind = crate::files::Kind::of(meta.mode() as libc::mode_t);
        return Err(Failure::HeartbeatNotRegular(kind));
    }
    Ok(meta)
}

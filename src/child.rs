//! The state every process custos creates begins with: an empty signal mask, the default
//! disposition for every signal, and no fds but 0, 1 and 2.
//!
//! custos blocks the signals it reads from its signalfd, and whoever started custos may have left
//! signals ignored (nohup ignores SIGHUP; a shell's background job ignores SIGINT and SIGQUIT) or
//! fds open. A blocked mask and ignored dispositions survive fork and exec, so without this every
//! service's whole process tree would inherit them (std's spawn resets only SIGPIPE).
//!
//! [`clean_for_exec`] runs in the forked child, so it uses raw system calls only (crate::sys):
//! no allocation, no locks, nothing that is not async-signal-safe.

use std::io;

use crate::sys::fd::{self, CLOSE_RANGE_CLOEXEC};
use crate::sys::signal::{self, SIGNALS};

/// Puts every signal back to its default disposition, then clears the signal mask. For a
/// forked child before exec; async-signal-safe. Signals the C library reserves for itself are
/// reset too (crate::sys::signal uses the raw system call); a signal that cannot be changed
/// stays as it was.
pub fn reset_signals() {
    for sig in 1..=SIGNALS {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        signal::set_default(sig);
    }
    signal::clear_mask();
}

/// Marks every fd from 3 up close-on-exec, where the kernel can (Linux 5.11). For a forked child
/// before exec; async-signal-safe. On older kernels [`seal_inherited_fds`], run once at start-up,
/// has done the same for what custos inherited, and custos opens everything of its own with
/// O_CLOEXEC.
pub fn close_on_exec_above_stdio() {
    // Failure (ENOSYS, EINVAL) changes nothing.
    let _ = fd::close_range(3, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC);
}

/// Everything a child needs between fork and exec. Async-signal-safe.
pub fn clean_for_exec() {
    reset_signals();
    close_on_exec_above_stdio();
}

/// Marks close-on-exec every fd above 2 that custos inherited from whoever started it, so that
/// none leaks into a service even on kernels without close_range(2). Returns how many were
/// marked. Run once at start-up, before any fd of custos's own exists.
pub fn seal_inherited_fds() -> io::Result<usize> {
    let mut fds: heapless::Vec<i32, 256> = heapless::Vec::new();
    let mut more = false;
    for e in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = e?.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fd > 2 && fds.push(fd).is_err() {
            more = true;
        }
    }
    let mut marked = 0;
    for fd in fds {
        // The directory stream's fd is closed by now: EBADF, ignored.
        if let Ok(flags) = fd::fd_flags(fd) {
            if flags & libc::FD_CLOEXEC == 0
                && fd::set_fd_flags(fd, flags | libc::FD_CLOEXEC).is_ok()
            {
                marked += 1;
            }
        }
    }
    if more {
        // More than 256 inherited fds: sweep the rest by number, up to the soft limit.
        let top = fd::nofile_limit().map_or(4096, |cur| cur.min(65536) as i32);
        for fd in 3..top {
            // Unused numbers fail with EBADF.
            let _ = fd::set_fd_flags(fd, libc::FD_CLOEXEC);
        }
    }
    Ok(marked)
}

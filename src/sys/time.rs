//! Clock reads and timerfds: clock_gettime, timerfd_create and timerfd_settime.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// One reading of clock `id`; zero if the clock cannot be read.
pub fn clock_gettime(id: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts
}

/// A new timerfd on clock `id` with `flags` (TFD_NONBLOCK, TFD_CLOEXEC).
pub fn timerfd_create(id: libc::clockid_t, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes a clock id and flags and returns a new fd or -1.
    let fd = cvt(unsafe { libc::timerfd_create(id, flags) })?;
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms the timerfd `fd` with `value` and `flags` (TFD_TIMER_ABSTIME, ...); the old value is
/// not asked for.
pub fn timerfd_settime(fd: BorrowedFd, flags: i32, value: &libc::itimerspec) -> io::Result<()> {
    // SAFETY: a valid timerfd and a valid itimerspec; the old value pointer is null.
    let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, value, std::ptr::null_mut()) };
    cvt(rc).map(drop)
}

//! The watchdog ioctls of <linux/watchdog.h> (Documentation/watchdog/watchdog-api.rst), each on
//! an open watchdog device. Errors are the driver's errno (ENOTTY, EINVAL or ENOSYS when the
//! device does not answer watchdog ioctls).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::Result;

/// struct watchdog_info from <linux/watchdog.h>.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct WatchdogInfo {
    pub options: u32,
    pub firmware_version: u32,
    pub identity: [u8; 32],
}

nix::ioctl_read!(wdioc_getsupport, b'W', 0, WatchdogInfo);
nix::ioctl_read!(wdioc_getbootstatus, b'W', 2, libc::c_int);
nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, libc::c_int);

/// What the device is and which options it has (WDIOC_GETSUPPORT).
pub fn support(fd: BorrowedFd<'_>) -> Result<WatchdogInfo> {
    let mut info = WatchdogInfo::default();
    // SAFETY: WDIOC_GETSUPPORT fills one watchdog_info on a valid fd.
    unsafe { wdioc_getsupport(fd.as_raw_fd(), &mut info) }?;
    Ok(info)
}

/// Why the board last reset, as WDIOF_* flags (WDIOC_GETBOOTSTATUS).
pub fn boot_status(fd: BorrowedFd<'_>) -> Result<u32> {
    let mut boot: libc::c_int = 0;
    // SAFETY: WDIOC_GETBOOTSTATUS writes one int.
    unsafe { wdioc_getbootstatus(fd.as_raw_fd(), &mut boot) }?;
    Ok(boot as u32)
}

/// Asks for a timeout of `secs` seconds (WDIOC_SETTIMEOUT); the driver may round it.
pub fn set_timeout(fd: BorrowedFd<'_>, secs: i32) -> Result<()> {
    let mut secs: libc::c_int = secs;
    // SAFETY: WDIOC_SETTIMEOUT reads and writes one int.
    unsafe { wdioc_settimeout(fd.as_raw_fd(), &mut secs) }.map(drop)
}

/// The timeout in force, in seconds (WDIOC_GETTIMEOUT).
pub fn timeout(fd: BorrowedFd<'_>) -> Result<i32> {
    let mut secs: libc::c_int = 0;
    // SAFETY: WDIOC_GETTIMEOUT writes one int.
    unsafe { wdioc_gettimeout(fd.as_raw_fd(), &mut secs) }?;
    Ok(secs)
}

/// Pets the watchdog (WDIOC_KEEPALIVE).
pub fn keepalive(fd: BorrowedFd<'_>) -> Result<()> {
    let mut dummy: libc::c_int = 0;
    // SAFETY: WDIOC_KEEPALIVE on a valid watchdog fd; the int is unused.
    unsafe { wdioc_keepalive(fd.as_raw_fd(), &mut dummy) }.map(drop)
}

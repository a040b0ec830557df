//! The state every process custos creates begins with: an empty signal mask, the default
//! disposition for every signal, and no fds but 0, 1 and 2.
//!
//! custos blocks the signals it reads from its signalfd, and whoever started custos may have left
//! signals ignored (nohup ignores SIGHUP; a shell's background job ignores SIGINT and SIGQUIT) or
//! fds open. A blocked mask and ignored dispositions survive fork and exec, so without this every
//! service's whole process tree would inherit them (std's spawn resets only SIGPIPE).
//!
//! [`clean_for_exec`] runs in the forked child, so it uses raw system calls only: no allocation,
//! no locks, nothing that is not async-signal-safe.

use std::io;

/// Signals numbered 1..=SIGNALS exist on every architecture custos builds for (the kernel's
/// sigset_t is 64 bits on x86_64, arm and aarch64).
const SIGNALS: i32 = 64;
/// The kernel's sigset_t, in bytes (the size argument of rt_sigaction and rt_sigprocmask).
const SIGSET_BYTES: usize = 8;
/// close_range(2) flag: mark close-on-exec instead of closing (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Puts every signal back to its default disposition, then clears the signal mask. For a
/// forked child before exec; async-signal-safe.
///
/// The raw rt_sigaction system call is used because the C library refuses the signals it
/// reserves for itself (glibc 32-33, musl 32-34), and those too may have been left ignored. The
/// kernel's struct sigaction with SIG_DFL, no flags, no restorer and an empty mask is all zero
/// bytes on every architecture, whatever its layout: a zeroed buffer larger than any of them
/// stands for it.
pub fn reset_signals() {
    let default_action = [0u64; 4];
    for sig in 1..=SIGNALS {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads SIGSET_BYTES-sized sigaction from a valid zeroed buffer and
        // writes nothing (null old action). Errors (a signal the kernel or an emulator will not
        // let us change) leave that signal as it was; nothing else is touched.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                SIGSET_BYTES,
            );
        }
    }
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask reads an 8-byte mask from a valid pointer and writes nothing.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<libc::c_void>(),
            SIGSET_BYTES,
        );
    }
}

/// Marks every fd from 3 up close-on-exec, where the kernel can (Linux 5.11). For a forked child
/// before exec; async-signal-safe. On older kernels [`seal_inherited_fds`], run once at start-up,
/// has done the same for what custos inherited, and custos opens everything of its own with
/// O_CLOEXEC.
pub fn close_on_exec_above_stdio() {
    // SAFETY: close_range takes integers only; failure (ENOSYS, EINVAL) changes nothing.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
    }
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
        // SAFETY: fcntl on an fd number; one that was the directory stream's and is closed by
        // now fails with EBADF, which is ignored.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == 0 {
                marked += 1;
            }
        }
    }
    if more {
        // More than 256 inherited fds: sweep the rest by number, up to the soft limit.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into a valid rlimit.
        let top = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur.min(65536) as i32
        } else {
            4096
        };
        for fd in 3..top {
            // SAFETY: as above; unused numbers fail with EBADF.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(marked)
}

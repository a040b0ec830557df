//! Signal dispositions, the signal mask, and sending a signal. The disposition and mask calls
//! are raw system calls, async-signal-safe: a forked child uses them before exec.
//!
//! The raw rt_sigaction system call is used because the C library refuses the signals it
//! reserves for itself (glibc 32-33, musl 32-34), and those too may have been left ignored. The
//! kernel's struct sigaction with no flags, no restorer and an empty mask is all zero bytes but
//! its handler, the first word, on every architecture custos builds for (all little-endian),
//! whatever its layout: a zeroed buffer larger than any of them, with the handler in its first
//! word, stands for it.

use std::io;

use super::cvt;

/// Signals numbered 1..=SIGNALS exist on every architecture custos builds for (the kernel's
/// sigset_t is 64 bits on x86_64, arm and aarch64).
pub const SIGNALS: i32 = 64;
/// The kernel's sigset_t, in bytes (the size argument of rt_sigaction and rt_sigprocmask).
const SIGSET_BYTES: usize = 8;
/// The kernel's SIG_DFL and SIG_IGN handler values.
const HANDLER_DEFAULT: u64 = 0;
const HANDLER_IGNORE: u64 = 1;

/// Sets `sig`'s handler (SIG_DFL or SIG_IGN) with no flags and an empty mask. Errors (a signal
/// the kernel or an emulator will not let us change, SIGKILL, SIGSTOP) leave it as it was.
/// Async-signal-safe.
fn set_handler(sig: i32, handler: u64) {
    let action = [handler, 0, 0, 0];
    // SAFETY: rt_sigaction reads a SIGSET_BYTES-sized sigaction from a valid buffer larger than
    // any struct sigaction, and writes nothing (null old action); nothing else is touched.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            action.as_ptr(),
            std::ptr::null_mut::<libc::c_void>(),
            SIGSET_BYTES,
        );
    }
}

/// Puts `sig` back to its default disposition. Async-signal-safe.
pub fn set_default(sig: i32) {
    set_handler(sig, HANDLER_DEFAULT);
}

/// Ignores `sig`. Async-signal-safe.
pub fn ignore(sig: i32) {
    set_handler(sig, HANDLER_IGNORE);
}

/// Clears the calling thread's signal mask. Async-signal-safe.
pub fn clear_mask() {
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

/// kill(2): `sig` to the process `pid`, or to the process group `-pid` when negative. Whom
/// custos may signal is the caller's judgement; this only sends.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes integers only; no memory is involved.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `sig` is ignored in this process (/proc/self/status SigIgn).
    fn ignored(sig: i32) -> bool {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:\t"));
        let mask = u64::from_str_radix(line.expect("SigIgn"), 16).expect("hex");
        mask & (1 << (sig - 1)) != 0
    }

    #[test]
    fn a_signal_is_ignored_then_default_again() {
        // SIGURG: its default is to ignore it anyway, and nothing in the test process uses it.
        let sig = libc::SIGURG;
        assert!(!ignored(sig));
        ignore(sig);
        assert!(ignored(sig), "SIG_IGN not set");
        set_default(sig);
        assert!(!ignored(sig), "SIG_DFL not set back");
    }

    #[test]
    fn kill_reports_errno() {
        // Signal 0 checks only that the process exists and may be signalled.
        kill(std::process::id() as i32, 0).expect("this process");
        let e = kill(i32::MAX, 0).expect_err("no such process");
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    }
}

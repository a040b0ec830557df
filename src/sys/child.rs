//! Making and minding child processes: fork(2) for a child that runs custos code, the hook a
//! spawned command runs between fork and exec, what such a child does to itself (a process
//! group, a name, a working directory, its argv area, _exit), and a look at whether a PID is
//! still an unreaped child. Everything a forked child calls here is a raw system call:
//! async-signal-safe, no allocation, no locks.

use std::ffi::CStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::cvt;

/// fork(2). In the child `body(arg)` runs and never returns. A fork of a process that may have
/// threads: `body` must make only async-signal-safe calls (raw system calls, no allocation,
/// no locks, no logging) and end with [`exit_now`] or exec. Returns the child's PID to the
/// parent.
pub fn fork_into<A>(arg: A, body: fn(A) -> !) -> io::Result<i32> {
    // SAFETY: fork(2). The child runs only `body`, which by this function's contract makes only
    // async-signal-safe system calls on what it was given, and never returns.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        body(arg);
    }
    Ok(pid)
}

/// Has `cmd`'s child run `clean` between fork and exec. `clean` must be async-signal-safe.
pub fn before_exec(cmd: &mut Command, clean: fn()) {
    // SAFETY: the closure runs in the forked child before exec and calls only `clean`, which
    // by this function's contract makes only async-signal-safe raw system calls (no
    // allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            clean();
            Ok(())
        });
    }
}

/// Ends this process at once with `code`, running nothing of custos's (no atexit, no
/// destructors, no flush). Async-signal-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process without running anything of custos's.
    unsafe { libc::_exit(code) }
}

/// chdir("/"): the process holds no directory (a mount point it sat in could not be
/// unmounted). Errors are ignored. Async-signal-safe.
pub fn chdir_root() {
    // SAFETY: chdir to a static NUL-terminated path.
    unsafe { libc::chdir(c"/".as_ptr()) };
}

/// Makes this process the leader of a new process group (so a signal to its parent's group,
/// a Ctrl-C, does not reach it) and sets its name (/proc/PID/comm) to `name`. Errors are
/// ignored. Async-signal-safe.
pub fn own_group_named(name: &CStr) {
    // SAFETY: setpgid and prctl take integers and a valid NUL-terminated name.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
    }
}

/// Largest argv area overwritten (a sanity bound on what /proc/self/stat says).
const MAX_ARGV_AREA: usize = 64 * 1024;

/// Where the kernel keeps this process's argv strings (what /proc/PID/cmdline shows): fields 48
/// and 49 of /proc/self/stat (Linux 3.5). None where they are missing or zero (qemu-user).
/// Read before a fork: it allocates.
pub fn argv_area() -> Option<ArgvArea> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Fields after the command name start with field 3.
    let mut f = rest.split_ascii_whitespace().skip(48 - 3);
    let start: usize = f.next()?.parse().ok()?;
    let end: usize = f.next()?.parse().ok()?;
    (start > 0 && end > start && end - start <= MAX_ARGV_AREA).then_some(ArgvArea { start, end })
}

/// This process's argv area as the kernel reports it; only [`argv_area`] makes one.
#[derive(Clone, Copy)]
pub struct ArgvArea {
    start: usize,
    end: usize,
}

impl ArgvArea {
    /// Overwrites the whole area with `text` and zero bytes after it: what /proc/PID/cmdline
    /// (ps, pidof, pkill) shows from then on. Nothing may read the original argv again.
    /// Async-signal-safe.
    pub fn overwrite(self, text: &[u8]) {
        for (i, addr) in (self.start..self.end).enumerate() {
            let b = text.get(i).copied().unwrap_or(0);
            // SAFETY: [start, end) is this process's argv area as the kernel reports it (only
            // argv_area makes an ArgvArea): mapped, writable (the initial stack) and not used
            // by anything else in this process.
            unsafe { *(addr as *mut u8) = b };
        }
    }
}

/// Whether `pid` is this process's child and not reaped yet (alive, or a zombie): waitid with
/// WNOWAIT leaves a zombie unreaped and WNOHANG never blocks. `Ok(false)`: not (or no longer)
/// a child (ECHILD).
pub fn unreaped(pid: i32) -> io::Result<bool> {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with a valid siginfo pointer.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    match cvt(r) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The state letter of /proc/PID/stat, if the process exists.
    fn state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    #[test]
    fn a_look_at_an_unreaped_child_leaves_it_unreaped() {
        let child = Command::new("/bin/true").spawn().expect("spawn");
        let pid = child.id() as i32;
        drop(child);
        let end = Instant::now() + Duration::from_secs(10);
        while state(pid) != Some('Z') {
            assert!(Instant::now() < end, "{pid} never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(unreaped(pid).expect("waitid"), "a zombie child is unreaped");
        assert!(unreaped(pid).expect("waitid"), "the first look reaped it");
        assert_eq!(state(pid), Some('Z'));
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            !unreaped(pid).expect("waitid"),
            "reaped: not a child any more"
        );
        assert!(!unreaped(1).expect("waitid"), "init is not our child");
    }
}

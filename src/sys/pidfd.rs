//! pidfd: a file descriptor that names one process for its whole life. custos watches pinned
//! processes with it (poll says readable when the process exits) and signals through it, so a
//! signal can never reach a process that reused the PID. Linux 5.3+; older kernels fall back to
//! /proc polling and a start-time check right before kill(2).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::epoll::{Epoll, Registration};

#[derive(Debug)]
pub struct PidFd {
    /// Its registration in the loop's epoll: declared before the fd, so that it is removed
    /// before the fd is closed.
    watch: Registration,
    fd: OwnedFd,
}

impl PidFd {
    /// Opens a pidfd for `pid` (close-on-exec, as pidfds always are).
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us; nobody else owns it.
        Ok(PidFd {
            watch: Registration::default(),
            fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
        })
    }

    /// Sends `signal` to exactly the process this pidfd names.
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo, no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl PidFd {
    /// Registers this pidfd in `epoll`, once. The error, the one time registering fails: it
    /// is then polled, and not tried again.
    pub fn watch_in(&mut self, epoll: &Epoll) -> Option<io::Error> {
        self.watch.ensure(epoll, self.fd.as_fd())
    }

    /// Its token in the loop's epoll, if it is registered there.
    pub fn token(&self) -> Option<u64> {
        self.watch.token()
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A child's exit as waitid(2) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited {
    /// The PID that exited.
    pub pid: i32,
    /// `CLD_EXITED`, `CLD_KILLED` or `CLD_DUMPED`.
    pub code: i32,
    /// The exit status, or the signal that killed it.
    pub status: i32,
}

impl PidFd {
    /// Collects the exit of exactly the process this pidfd names, without waiting: `Ok(None)`
    /// when it has not exited (or a tracer holds its zombie). Errors: ECHILD when it is not our
    /// child; EINVAL on Linux 5.3, which has pidfd_open but not `P_PIDFD`.
    pub fn try_wait(&self) -> io::Result<Option<Exited>> {
        // SAFETY: siginfo_t is plain data, valid when all zeroes; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pidfd and a valid siginfo pointer for the duration of the call.
        crate::sys::cvt(unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        })?;
        // SAFETY: after a successful waitid the child fields are the ones it set (si_pid is 0
        // when no child had exited).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        Ok((pid != 0).then_some(Exited {
            pid,
            code: info.si_code,
            status,
        }))
    }
}

/// Which of `fds` name a process that has exited (zombie or gone), in one poll(2) that never
/// waits: bit k of the answer is `fds[k]`. At most 64 pidfds. When poll fails, every bit is set:
/// nothing is vouched for.
pub fn exited(fds: &[BorrowedFd<'_>]) -> u64 {
    if fds.is_empty() {
        return 0;
    }
    let mut set: heapless::Vec<libc::pollfd, 64> = heapless::Vec::new();
    for fd in fds.iter().take(64) {
        let _ = set.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    // SAFETY: set is a valid array of set.len() pollfds for the duration of the call; a zero
    // timeout never waits.
    let rc = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, 0) };
    if rc < 0 {
        return u64::MAX;
    }
    set.iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .fold(0, |bits, (k, _)| bits | 1 << k)
}

/// Whether this kernel has pidfd_open (probed on our own PID).
pub fn supported() -> Result<(), io::Error> {
    PidFd::open(std::process::id() as i32).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn readable(fd: &PidFd, ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: fd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    #[test]
    fn a_pidfd_becomes_readable_when_its_process_exits_and_signals_only_it() {
        if supported().is_err() {
            eprintln!("SKIP: pidfd_open is not available on this kernel");
            return;
        }
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .spawn()
            .expect("spawn sh");
        let fd = PidFd::open(child.id() as i32).expect("pidfd_open");
        assert!(!readable(&fd, 50), "alive: not readable");
        fd.send_signal(libc::SIGKILL).expect("signal");
        assert!(readable(&fd, 5000), "readable after exit");
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: a signal through the pidfd cannot reach anyone else.
        assert_eq!(
            fd.send_signal(libc::SIGTERM).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
    }

    #[test]
    fn try_wait_collects_exactly_its_process_once_it_has_exited() {
        if supported().is_err() {
            eprintln!("SKIP: pidfd_open is not available on this kernel");
            return;
        }
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        let fd = PidFd::open(pid).expect("pidfd_open");
        match fd.try_wait() {
            Ok(None) => {}
            // Linux 5.3 has pidfd_open but not P_PIDFD (EINVAL); an emulator may lack it too.
            Err(e) => {
                eprintln!("SKIP: waitid(P_PIDFD) is not available here ({e})");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            other => panic!("alive: nothing to collect, got {other:?}"),
        }
        fd.send_signal(libc::SIGKILL).expect("signal");
        assert!(readable(&fd, 5000), "readable after exit");
        assert_eq!(
            fd.try_wait().expect("waitid"),
            Some(Exited {
                pid,
                code: libc::CLD_KILLED,
                status: libc::SIGKILL
            })
        );
        // Collected: nothing is left to collect, and std's handle finds it gone.
        assert!(fd.try_wait().is_err());
        assert!(child.try_wait().is_err());
    }

    #[test]
    fn exited_names_the_dead_of_several_pidfds_and_then_the_group_read_is_vouched_for() {
        if supported().is_err() {
            eprintln!("SKIP: pidfd_open is not available on this kernel");
            return;
        }
        let spawn = |cmd: &str| {
            Command::new("/bin/sh")
                .args(["-c", cmd])
                .spawn()
                .expect("spawn sh")
        };
        // A live one, one that dies, and a live one in a session of its own.
        let mut live = spawn("sleep 30");
        let mut dead = spawn("sleep 30");
        let mut own = Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("spawn setsid");
        // setsid(1) calls setsid(2) just after it starts.
        for _ in 0..200 {
            if crate::sys::proc::group_and_session(own.id() as i32)
                .map(|g| g.1)
                .ok()
                == Some(own.id() as i32)
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let fds = [live.id(), dead.id(), own.id()].map(|p| PidFd::open(p as i32).expect("open"));
        fds[1].send_signal(libc::SIGKILL).expect("signal");
        assert!(readable(&fds[1], 5000), "readable after exit");
        let borrowed = [fds[0].as_fd(), fds[1].as_fd(), fds[2].as_fd()];
        assert_eq!(exited(&borrowed), 0b010, "only the second has exited");
        // What /proc says of the live ones' group and session, and what the syscalls say.
        for (child, own_session) in [(&live, false), (&own, true)] {
            let pid = child.id() as i32;
            let (pgrp, session) = crate::sys::proc::group_and_session(pid).expect("getpgid");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
            let f: Vec<&str> = stat[stat.rfind(')').expect(")") + 2..].split(' ').collect();
            assert_eq!((f[2], f[3]), (&*pgrp.to_string(), &*session.to_string()));
            assert_eq!(session == pid, own_session, "setsid made its own session");
        }
        for c in [&mut live, &mut dead, &mut own] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! The signals custos handles, read from a signalfd in the one poll loop (no handlers, no
//! self-pipe). The mask is set before any thread or child exists; every child gets an empty mask
//! and default dispositions back between fork and exec (crate::child): std's spawn keeps the mask.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub struct Signals {
    fd: SignalFd,
}

/// The signals custos acts on.
pub fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

impl Signals {
    /// Blocks the handled signals and opens a non-blocking, close-on-exec signalfd for them.
    pub fn new() -> io::Result<Signals> {
        let set = handled();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(io::Error::from)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        Ok(Signals { fd })
    }

    /// The next pending signal number, if any.
    pub fn pending(&mut self) -> Option<i32> {
        match self.fd.read_signal() {
            Ok(Some(info)) => i32::try_from(info.ssi_signo).ok(),
            _ => None,
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_signal_arrives_on_the_signalfd() {
        let mut s = Signals::new().expect("signalfd");
        // SAFETY: raise a signal that is blocked in this thread; it stays pending.
        // Deliver to this thread (signalfd reads thread- and process-directed signals).
        let rc = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
        assert_eq!(rc, 0);
        assert_eq!(s.pending(), Some(libc::SIGHUP));
        assert_eq!(s.pending(), None);
    }
}

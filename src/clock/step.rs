//! Noticing steps of the wall clock. Nothing custos decides runs on the wall clock (timers,
//! backoffs, windows, graces, ages and identity are on CLOCK_BOOTTIME), but a step is worth a
//! log line, and it ends the time during which custos knows the wall clock to be continuous,
//! which the judgement of a pidfile met for the first time uses.
//!
//! A timerfd on CLOCK_REALTIME, armed far ahead with TFD_TIMER_CANCEL_ON_SET, becomes readable
//! (its read fails with ECANCELED) the moment anyone sets the clock: settimeofday, clock_settime,
//! `date -s`, an NTP client stepping. Slewing (adjtime) does not set it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::{fd, time};

/// How far ahead the timer is armed (it is re-armed should it ever expire).
const AHEAD_SECS: i32 = 365 * 24 * 3600;

pub struct StepWatch {
    fd: OwnedFd,
}

impl StepWatch {
    /// A non-blocking, close-on-exec timerfd, armed.
    pub fn new() -> io::Result<StepWatch> {
        let fd =
            time::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)?;
        let w = StepWatch { fd };
        w.arm()?;
        Ok(w)
    }

    fn arm(&self) -> io::Result<()> {
        let now = time::clock_gettime(libc::CLOCK_REALTIME);
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                // time_t is 32 or 64 bits; a year fits either, and the sum saturates rather
                // than wraps near 2038 on 32-bit targets.
                tv_sec: now.tv_sec.saturating_add(AHEAD_SECS.into()),
                tv_nsec: 0,
            },
        };
        time::timerfd_settime(
            self.fd.as_fd(),
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            &value,
        )
    }

    /// Called when the fd is readable: whether the wall clock was set since the last call.
    /// Re-arms the timer either way.
    pub fn stepped(&self) -> bool {
        let mut buf = [0u8; 8];
        let (set, expired) = match fd::read(self.fd.as_raw_fd(), &mut buf) {
            Err(e) => (e.raw_os_error() == Some(libc::ECANCELED), false),
            Ok(n) => (false, n > 0),
        };
        if set || expired {
            // Cancelled (or, after a year, expired): arm again. A failure leaves the fd
            // unarmed and quiet; the per-pass comparison of the clocks still sees steps.
            let _ = self.arm();
        }
        set
    }
}

impl AsFd for StepWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step itself is tested on the emulated boards (`date -s`): this machine's clock is
    /// shared and never changed. Here: it arms, and stays quiet while nobody sets the clock.
    #[test]
    fn the_step_watch_is_quiet_while_the_clock_is_left_alone() {
        let w = StepWatch::new().expect("timerfd");
        let mut p = libc::pollfd {
            fd: w.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 50) };
        assert_eq!(n, 0);
        assert!(!w.stepped());
    }
}

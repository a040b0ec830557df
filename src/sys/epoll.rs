//! epoll(7) for the fds that live long and are waited on in every pass (the pidfds of pinned
//! processes, the services' output pipes): registered once, so a wake-up costs the kernel
//! nothing for each of them, where poll(2) walks every fd it is given on every call (and on
//! every return). The loop's one wait stays a poll(2): the epoll fd is one of its fds, readable
//! while any registered fd is ready, and is then read without waiting.
//!
//! A registration is a [`Watch`], which removes it when dropped. That matters: the kernel
//! forgets a registration by itself only once every fd of that open file is closed, and the
//! output keeper holds a copy of every output pipe. A pipe closed by custos but still
//! registered would go on being reported ready, and the loop would spin.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::cvt;

/// An epoll instance (close-on-exec).
#[derive(Debug)]
pub struct Epoll(OwnedFd);

/// Tokens of watches: never 0, never reused in a run.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes flags and returns a new fd or -1.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: the kernel just returned this fd; nobody else owns it.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Registers `fd` for readability (level-triggered). The watch must be dropped before
    /// `fd` is closed: keep it in the same struct, declared before the fd.
    pub fn watch(&self, fd: BorrowedFd<'_>) -> io::Result<Watch> {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: epoll_ctl with a valid epoll fd, a valid fd and a valid event.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(Watch {
            epoll: self.0.as_raw_fd(),
            fd: fd.as_raw_fd(),
            token,
        })
    }

    /// The tokens of registered fds that are ready now, without waiting, into `out`; how many.
    pub fn ready_now(&self, out: &mut [u64]) -> usize {
        const MAX: usize = 64;
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; MAX];
        let max = out.len().min(MAX) as libc::c_int;
        // SAFETY: evs holds at least max events for the duration of the call; a zero timeout
        // never waits.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), max, 0) };
        let n = usize::try_from(n).unwrap_or(0);
        for (o, e) in out.iter_mut().zip(&evs[..n]) {
            *o = e.u64;
        }
        n
    }
}

impl std::os::fd::AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// One registered fd; dropping it removes the registration.
#[derive(Debug)]
pub struct Watch {
    epoll: RawFd,
    fd: RawFd,
    token: u64,
}

impl Watch {
    /// What [`Epoll::ready_now`] reports for this fd.
    pub fn token(&self) -> u64 {
        self.token
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: EPOLL_CTL_DEL of the fd this watch registered, which its owner still holds
        // open (the watch is dropped first). Should the epoll fd be gone, the call fails
        // harmlessly (EBADF).
        unsafe {
            libc::epoll_ctl(
                self.epoll,
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            )
        };
    }
}

/// The registration of one fd that may be watched: none yet, a [`Watch`], or a failure, after
/// which the fd is polled and registering is not tried again. The owner keeps it in a field
/// declared before the fd, so that the watch is removed before the fd is closed.
#[derive(Debug, Default)]
pub struct Registration {
    watch: Option<Watch>,
    failed: bool,
}

impl Registration {
    /// Registers `fd` in `epoll`, once. The error, the one time registering fails.
    pub fn ensure(&mut self, epoll: &Epoll, fd: BorrowedFd<'_>) -> Option<io::Error> {
        if self.watch.is_some() || self.failed {
            return None;
        }
        match epoll.watch(fd) {
            Ok(w) => self.watch = Some(w),
            Err(e) => {
                self.failed = true;
                return Some(e);
            }
        }
        None
    }

    /// The fd's token in the epoll, if it is registered there.
    pub fn token(&self) -> Option<u64> {
        self.watch.as_ref().map(Watch::token)
    }

    /// Removes the registration now (before the fd leaves its owner).
    pub fn clear(&mut self) {
        self.watch = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        // SAFETY: just created, owned here.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_dropped_watch_is_never_reported_even_while_another_copy_of_its_file_lives() {
        let ep = Epoll::new().expect("epoll");
        let (r, w) = pipe();
        let (r2, w2) = pipe();
        let watch = ep.watch(r.as_fd()).expect("watch");
        let watch2 = ep.watch(r2.as_fd()).expect("watch");
        assert_ne!(watch.token(), watch2.token());
        let mut out = [0u64; 8];
        assert_eq!(ep.ready_now(&mut out), 0, "nothing written yet");
        // SAFETY: one byte from a static buffer into our own pipe.
        unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(ep.ready_now(&mut out), 1);
        assert_eq!(out[0], watch.token(), "the token names the ready fd");
        // Another process's copy of the read end (the output keeper's) keeps the pipe open:
        // here a dup. Once the watch is dropped and the fd closed, nothing is reported.
        let copy = r.try_clone().expect("dup");
        drop(watch);
        drop(r);
        assert_eq!(ep.ready_now(&mut out), 0, "a closed pipe still reported");
        drop((copy, w, watch2, r2, w2));
    }
}

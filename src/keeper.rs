//! The output keeper: a small process, forked from custos, that holds a second read end of every
//! script output pipe so that a daemon writing to the stdout its init script gave it never dies
//! or blocks because custos went away.
//!
//! Every script of a service writes into that service's pipe, and a daemon it starts keeps the
//! pipe as its stdout/stderr. custos reads the pipe into its log. Were custos the only reader, a
//! daemon's next write after custos exits (SIGTERM, kill -9, a crash, an upgrade) or drops the
//! service (a reload) would raise SIGPIPE, the default action of which kills it; a runtime that
//! ignores SIGPIPE (Python, Rust) gets EPIPE from its print and usually dies of that instead.
//!
//! The keeper does not read while custos lives (custos does, into the log), except the pipes of
//! services a reload removed ("retired"), which it drains and discards. It learns that custos is
//! gone from its lifeline, a pipe whose only write end custos holds: end-of-file there means
//! custos is gone, however it went. From then on it drains and discards every pipe, and exits
//! once no process holds a write end of any of them. So writes to an inherited stdout always
//! succeed and never block for longer than custos or the keeper takes to read.
//!
//! The keeper is forked again whenever the set of pipes changes (a reload that adds or removes a
//! service): the new one inherits them all, then the old one is killed. Its code runs in a
//! forked child of a process that may have threads: only async-signal-safe system calls, no
//! allocation, no logging.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::limits::{MAX_NAME, MAX_SERVICES};
use crate::sys::child::ArgvArea;
use crate::sys::{self, fd};

/// A service's name, kept with its retired pipe for the log.
pub type Name = heapless::String<MAX_NAME>;

/// Pipes of removed services kept for the keeper while a daemon may still write into them.
pub const MAX_RETIRED: usize = MAX_SERVICES;
/// Pipes one keeper holds: the live services', the boot-health gate's and the retired ones.
const MAX_HELD: usize = MAX_SERVICES + 1 + MAX_RETIRED;
/// Old keepers killed and not reaped yet.
const MAX_KILLED: usize = 4;
/// The name the keeper shows in /proc/PID/comm and as its argv[0] (ps, top, pidof, killall).
const NAME: &std::ffi::CStr = c"custos-keeper";

pub struct Keeper {
    /// The running keeper's PID, if one runs.
    pid: Option<i32>,
    /// custos's end of the running keeper's lifeline.
    lifeline: Option<OwnedFd>,
    /// Read ends of pipes whose service was removed: the keeper drains them; custos keeps its
    /// copy only so that the next keeper inherits it, and closes it once no writer is left.
    retired: heapless::Vec<(OwnedFd, Name), MAX_RETIRED>,
    /// Keepers that were replaced and killed, not yet reaped: their exit is not news.
    killed: heapless::Vec<i32, MAX_KILLED>,
}

impl Default for Keeper {
    fn default() -> Self {
        Keeper::new()
    }
}

impl Keeper {
    pub const fn new() -> Keeper {
        Keeper {
            pid: None,
            lifeline: None,
            retired: heapless::Vec::new(),
            killed: heapless::Vec::new(),
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Forks a keeper that holds `live` (the services' pipes' read ends) and the retired pipes,
    /// then kills the one it replaces. Returns the new keeper's PID.
    pub fn renew(&mut self, live: &[RawFd]) -> io::Result<i32> {
        let (lifeline_read, lifeline_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(io::Error::from)?;
        let mut held: heapless::Vec<RawFd, MAX_HELD> = heapless::Vec::new();
        let mut draining: heapless::Vec<bool, MAX_HELD> = heapless::Vec::new();
        for &fd in live.iter().take(MAX_SERVICES + 1) {
            let _ = held.push(fd);
            let _ = draining.push(false);
        }
        for (fd, _) in &self.retired {
            let _ = held.push(fd.as_raw_fd());
            let _ = draining.push(true);
        }
        let argv = sys::child::argv_area();
        let child = (lifeline_read.as_raw_fd(), &held[..], &draining[..], argv);
        // The child runs only `keep`: async-signal-safe system calls on the integers and fixed
        // arrays it was given; it never returns.
        let pid = sys::child::fork_into(child, keep)?;
        drop(lifeline_read);
        if let Some(old) = self.pid.replace(pid) {
            // Our unreaped child: its PID cannot have been reused.
            let _ = sys::signal::kill(old, libc::SIGKILL);
            if self.killed.is_full() {
                self.killed.remove(0);
            }
            let _ = self.killed.push(old);
        }
        // Replacing the old lifeline closes it: the old keeper, if it is not dead yet, takes
        // custos for gone and drains too, which is harmless.
        self.lifeline = Some(lifeline_write);
        Ok(pid)
    }

    /// A removed service's pipe: the next keeper drains it. When MAX_RETIRED pipes wait for
    /// their writers already, the oldest is let go and its service's name returned: a daemon of
    /// that service that still writes to its stdout may then die of SIGPIPE.
    pub fn retire(&mut self, read: OwnedFd, service: &str) -> Option<Name> {
        let let_go = if self.retired.is_full() {
            Some(self.retired.remove(0).1)
        } else {
            None
        };
        let mut name = Name::new();
        for c in service.chars() {
            if name.push(c).is_err() {
                break;
            }
        }
        let _ = self.retired.push((read, name));
        let_go
    }

    /// Closes retired pipes that no process writes to any more. Returns how many are left.
    pub fn sweep(&mut self) -> usize {
        let mut k = 0;
        while k < self.retired.len() {
            let mut p = libc::pollfd {
                fd: self.retired[k].0.as_raw_fd(),
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            if n == 1 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                self.retired.swap_remove(k);
            } else {
                k += 1;
            }
        }
        self.retired.len()
    }

    /// A child was reaped: whether it was a keeper. `Some(true)`: the running keeper died (the
    /// caller starts another); `Some(false)`: a replaced one.
    pub fn reaped(&mut self, pid: i32) -> Option<bool> {
        if self.pid == Some(pid) {
            self.pid = None;
            self.lifeline = None;
            return Some(true);
        }
        let k = self.killed.iter().position(|&p| p == pid)?;
        self.killed.swap_remove(k);
        Some(false)
    }
}

/// The keeper's life, in the forked child: what it holds, by number, and where its argv is.
/// Never returns.
fn keep((lifeline, held, draining, argv): (RawFd, &[RawFd], &[bool], Option<ArgvArea>)) -> ! {
    become_keeper(argv);
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_HELD + 1];
    let mut drain = [false; MAX_HELD + 1];
    fds[0].fd = lifeline;
    let mut n = 1;
    for (&fd, &d) in held.iter().zip(draining.iter()) {
        if n < fds.len() {
            fds[n].fd = fd;
            drain[n] = d;
            n += 1;
        }
    }
    close_all_but(&fds[..n]);
    watch(&mut fds[..n], &drain[..n])
}

/// Parts the forked child from custos: a clean signal state that ignores the signals asking a
/// process to end, no working directory, its own process group (a signal to custos's group, a
/// Ctrl-C, does not end it) and its own name. Its argv too: `pidof custos`, `killall custos` and
/// `pkill custos` match the name and argv[0], and must find custos alone (killing the keeper
/// with custos would kill the daemons it keeps writing). Nothing in this process reads the
/// original argv again.
fn become_keeper(argv: Option<ArgvArea>) {
    crate::child::reset_signals();
    ignore_termination_signals();
    sys::child::chdir_root();
    sys::child::own_group_named(NAME);
    if let Some(area) = argv {
        area.overwrite(NAME.to_bytes());
    }
}

/// Polls the lifeline (`fds[0]`) and the pipes until custos and every writer are gone, reading
/// and discarding what must be drained.
fn watch(fds: &mut [libc::pollfd], drain: &[bool]) -> ! {
    let mut custos_gone = false;
    let mut buf = [0u8; 4096];
    loop {
        let open = set_events(fds, drain, custos_gone);
        if custos_gone && open == 0 {
            sys::child::exit_now(0);
        }
        // SAFETY: fds are valid pollfds (negative fds are ignored by poll).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            continue; // EINTR; nothing else can fail with a valid array
        }
        for k in 0..fds.len() {
            let (fd, revents) = (fds[k].fd, fds[k].revents);
            if fd < 0 || revents == 0 {
                continue;
            }
            if k > 0 && !custos_gone && !drain[k] && revents & libc::POLLIN == 0 {
                // A hang-up on a pipe custos still reads: it sees it too; nothing to do but
                // stop watching this one.
                close(&mut fds[k]);
                continue;
            }
            if !drain_some(fd, &mut buf) {
                if k == 0 {
                    custos_gone = true;
                }
                close(&mut fds[k]);
            }
        }
    }
}

/// Sets what each fd is polled for: the lifeline always, a pipe when the keeper drains it
/// (custos is gone, or its service was removed); others show only a hang-up. Returns how many
/// pipes are still open.
fn set_events(fds: &mut [libc::pollfd], drain: &[bool], custos_gone: bool) -> usize {
    let mut open = 0;
    for (k, p) in fds.iter_mut().enumerate() {
        p.revents = 0;
        p.events = if k == 0 || custos_gone || drain[k] {
            libc::POLLIN
        } else {
            0 // custos reads it; only a hang-up would show
        };
        if k > 0 && p.fd >= 0 {
            open += 1;
        }
    }
    open
}

/// Reads what is there and discards it (custos never writes to the lifeline), at most 64 KiB
/// per wake-up (a writer faster than that must not starve the others: poll brings us back).
/// False at end-of-file or on an error: this fd is done.
fn drain_some(fd: RawFd, buf: &mut [u8]) -> bool {
    for _ in 0..16 {
        match fd::read(fd, buf) {
            Ok(got) if got > 0 => continue,
            Ok(_) => return false,
            Err(e) => {
                return matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR));
            }
        }
    }
    true
}

/// The keeper ignores the signals that ask a process to end: `kill $(pidof custos)`, a
/// `killall`, or init's SIGTERM to every process at shutdown must not take it with custos, or
/// the daemons it keeps writing would die of SIGPIPE while they shut down. It ends by itself
/// once custos and every writer are gone; SIGKILL still ends it. Async-signal-safe.
fn ignore_termination_signals() {
    for sig in [
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        sys::signal::ignore(sig);
    }
}

/// Closes a polled fd this process holds; it is not used again (marked -1).
fn close(p: &mut libc::pollfd) {
    fd::close(p.fd);
    p.fd = -1;
}

/// Closes every fd but those in `keep` (custos's watchdog device above all: a copy held here
/// would keep a respawned custos from opening it). close_range(2) over the gaps (Linux 5.9), or
/// close(2) one by one up to the soft fd limit where it is missing.
fn close_all_but(keep: &[libc::pollfd]) {
    let mut sorted = [i32::MAX; MAX_HELD + 1];
    let mut n = 0;
    for p in keep {
        if p.fd >= 0 && n < sorted.len() {
            sorted[n] = p.fd;
            n += 1;
        }
    }
    sorted[..n].sort_unstable();
    let top: i64 = fd::nofile_limit().map_or(4096, |cur| (cur as i64).min(1 << 20));
    let mut from: i64 = 0;
    for &fd in sorted[..n].iter() {
        let to = i64::from(fd) - 1;
        if to >= from {
            close_range(from, to, top);
        }
        from = i64::from(fd) + 1;
    }
    close_range(from, i64::from(u32::MAX), top);
}

/// Closes fds `from..=to`: close_range(2), or where it is missing, close(2) one by one up to
/// `top` (the soft fd limit: a process cannot hold an fd above it unless it inherited one
/// before the limit was lowered).
fn close_range(from: i64, to: i64, top: i64) {
    let last = to.min(i64::from(u32::MAX)) as libc::c_uint;
    if fd::close_range(from as libc::c_uint, last, 0).is_err() {
        for n in from..=to.min(top) {
            // Unused numbers fail with EBADF.
            fd::close(n as i32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_retired_pipe_is_let_go_by_name_when_all_slots_wait() {
        let mut k = Keeper::new();
        let mut first_write = None;
        for i in 0..=MAX_RETIRED {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
            let let_go = k.retire(r, &format!("svc{i}"));
            if i < MAX_RETIRED {
                assert_eq!(let_go, None);
            } else {
                assert_eq!(let_go.as_deref(), Some("svc0"));
            }
            // Writers stay for all but the first: only svc0's pipe has a hang-up to sweep.
            if i == 0 {
                first_write = Some(w);
            } else {
                std::mem::forget(w);
            }
        }
        assert_eq!(k.sweep(), MAX_RETIRED);
        drop(first_write);
    }
}

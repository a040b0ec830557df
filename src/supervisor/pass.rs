//! One pass of the loop: the nearest deadline, the poll set, one poll(2), then everything that
//! is due, in a fixed order.
//!
//! Everything the loop polls is a [`Source`]: adding an fd to the poll is a variant there, its
//! fd in [`Supervisor::poll_set`] and what its readiness does in [`Supervisor::dispatch`], all in
//! this file (and its room in `MAX_POLL`). Services appear in the poll set by [`Handle`], which
//! a reload during the pass makes resolve to nothing: their fds are polled again next pass.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use super::svc::Handle;
use super::{Exit, Supervisor};
use crate::checks::InFlight;
use crate::clock::{Dur, Mono};
use crate::control::{self, Ready};
use crate::core::{Event, Phase, Pin, SigName};
use crate::limits::{MAX_CHECKS, MAX_SERVICES};
use crate::procs::Instance;
use crate::sys;

/// Fds in one poll: the signalfd, the epoll fd, plus a pidfd, an output pipe (each polled here
/// only if it could not be registered in the epoll) and the check sockets of each service, the
/// control socket and its clients, stderr while log bytes wait for it, and the wall-clock step
/// watch.
pub(super) const MAX_POLL: usize =
    1 + 1 + (2 + MAX_CHECKS) * MAX_SERVICES + 1 + control::MAX_CLIENTS + 1 + 1;

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// The signalfd (always first in the poll set).
    Signals,
    /// The loop's epoll: readable while a registered pidfd or output pipe is ready.
    Watched,
    /// The pidfd of a service's pinned process: readable when it exits (polled here only when
    /// it could not be registered in the epoll).
    Pidfd(Handle),
    /// A service's output pipe (its scripts' and daemon's stdout and stderr).
    Output(Handle),
    /// A network check in flight: the service, and which of its checks.
    Check(Handle, usize),
    /// The control socket: a client connects.
    Listener,
    /// A control client, by its slot in the control server.
    Client(usize),
    /// stderr, while log bytes wait for it.
    Log,
    /// The wall-clock step watch.
    ClockStep,
}

/// With a pidfd on a pinned process, /proc is read for it every this many ticks only.
pub(super) const CROSS_CHECK: u64 = 10;

/// The poll set, rebuilt each pass from fixed-size tables: pollfds and what each is for.
pub(super) struct PollSet {
    fds: heapless::Vec<libc::pollfd, MAX_POLL>,
    sources: heapless::Vec<Source, MAX_POLL>,
}

impl PollSet {
    fn new() -> PollSet {
        PollSet {
            fds: heapless::Vec::new(),
            sources: heapless::Vec::new(),
        }
    }

    fn add(&mut self, fd: i32, events: i16, source: Source) {
        if self
            .fds
            .push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
            .is_ok()
        {
            let _ = self.sources.push(source);
        }
    }

    /// Blocks in poll(2) until an fd is ready or `timeout` has passed (rounded up, so that a
    /// wake-up never comes a hair before its deadline).
    fn wait(&mut self, timeout: Duration) {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let fds = &mut self.fds;
        // SAFETY: fds is a valid array of fds.len() pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                error!("poll failed: {e}");
            }
        }
    }

    /// Whether any fd of this source is ready.
    fn ready(&self, wanted: impl Fn(&Source) -> bool) -> bool {
        self.fds
            .iter()
            .zip(self.sources.iter())
            .any(|(fd, s)| wanted(s) && fd.revents != 0)
    }
}

impl Supervisor {
    /// One pass of the loop: wait for the nearest event or deadline, then handle everything due.
    pub fn pass(&mut self) -> Option<Exit> {
        let now = self.now();
        let timeout = self.deadline().saturating_sub(now);
        self.register_watches();
        let mut set = self.poll_set(now);
        set.wait(timeout);
        let now = self.now();
        // Signals first: SIGCHLD reaps, so deaths carry their exit status.
        if set.ready(|s| matches!(s, Source::Signals)) {
            if let Some(exit) = self.signals_pending(now) {
                return Some(exit);
            }
        }
        // A step of the wall clock: said before anything is judged in this pass.
        let set_clock = set.ready(|s| matches!(s, Source::ClockStep))
            && self.step_watch.as_ref().is_some_and(|w| w.stepped());
        self.watch_wall_clock(set_clock, now);
        // Reap when a SIGCHLD came: wait4 then collects every exited child, so a SIGCHLD
        // coalesced with another loses nothing, and a child that exits after the signalfd was
        // read leaves a SIGCHLD pending that wakes the next poll at once.
        if std::mem::take(&mut self.reap_due) {
            self.reap(now);
        }
        self.dispatch(&set, now);
        self.services_due(now);
        self.tick(now);
        self.housekeeping(now);
        let end = self.now();
        self.pet(now, end);
        None
    }

    /// The nearest time anything needs the loop.
    fn deadline(&self) -> Mono {
        let mut deadline = self.next_tick;
        if self.watchdog.is_some() && self.reboot_at.is_none() {
            deadline = deadline.min(self.next_pet);
        }
        if let Some(t) = self.reboot_at {
            deadline = deadline.min(t);
        }
        if let Some(m) = &self.metrics {
            deadline = deadline.min(m.next);
        }
        if let Some(t) = self.record.flush_due() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.boots.flush_due() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.good_at {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.gate_due() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.hooks.due() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.control.as_ref().and_then(|c| c.deadline()) {
            deadline = deadline.min(t);
        }
        for s in &self.svcs {
            if let Some(d) = s.st.deadline() {
                deadline = deadline.min(d);
            }
            // Only while the wait for a reap lasts: a look left over from a wait the core has
            // ended (its deadline, a stop, a reload) must not make every poll return at once.
            if let (Some(t), Phase::Clearing { .. }, true) =
                (s.reap_look, s.st.phase, s.st.unreaped)
            {
                deadline = deadline.min(t);
            }
            if matches!(s.st.phase, Phase::Running { .. }) {
                for c in &s.checks {
                    deadline = deadline.min(c.wake_at());
                }
            }
        }
        deadline
    }

    /// Every fd to poll in this pass, the signalfd first.
    fn poll_set(&self, now: Mono) -> PollSet {
        let mut set = PollSet::new();
        set.add(
            self.signals.as_fd().as_raw_fd(),
            libc::POLLIN,
            Source::Signals,
        );
        if let Some(w) = &self.step_watch {
            set.add(w.as_fd().as_raw_fd(), libc::POLLIN, Source::ClockStep);
        }
        if let Some(c) = &self.control {
            c.poll_set(now, |fd, ev, k| {
                set.add(fd, ev, k.map_or(Source::Listener, Source::Client))
            });
        }
        if let Some(e) = &self.epoll {
            set.add(e.as_fd().as_raw_fd(), libc::POLLIN, Source::Watched);
        }
        for (i, s) in self.svcs.iter().enumerate() {
            let h = self.handle(i);
            if let Some(p) = s.pidfd.as_ref().filter(|p| p.token().is_none()) {
                set.add(p.as_fd().as_raw_fd(), libc::POLLIN, Source::Pidfd(h));
            }
            if s.out.token().is_none() {
                set.add(s.out.as_fd().as_raw_fd(), libc::POLLIN, Source::Output(h));
            }
            for (j, c) in s.checks.iter().enumerate() {
                if let InFlight::Net(p) = &c.inflight {
                    set.add(p.as_fd().as_raw_fd(), p.events(), Source::Check(h, j));
                }
            }
        }
        if let Some(fd) = crate::logger::pending() {
            set.add(fd, libc::POLLOUT, Source::Log);
        }
        set
    }

    /// Handles the signals that arrived; `Some` when one ends the loop.
    fn signals_pending(&mut self, now: Mono) -> Option<Exit> {
        while let Some(sig) = self.signals.pending() {
            match sig {
                libc::SIGCHLD => self.reap_due = true,
                libc::SIGHUP => {
                    info!("SIGHUP received");
                    let _ = self.reload(now);
                }
                libc::SIGTERM | libc::SIGINT => {
                    info!(
                        "{} received: exiting; services are left running",
                        SigName(sig)
                    );
                    return Some(Exit::Signal(sig));
                }
                other => debug!("ignoring {}", SigName(other)),
            }
        }
        None
    }

    /// Registers in the epoll each new pidfd and output pipe. One that cannot be registered
    /// (the kernel's limit on watches, memory) is said once and polled instead.
    fn register_watches(&mut self) {
        let Some(e) = &self.epoll else {
            return;
        };
        for s in &mut self.svcs {
            if let Some(err) = s.pidfd.as_mut().and_then(|p| p.watch_in(e)) {
                warn!(
                    "{}: cannot register its pidfd in the epoll ({err}): polled instead",
                    s.cfg.name
                );
            }
            if let Some(err) = s.out.watch_in(e) {
                warn!(
                    "{}: cannot register its output pipe in the epoll ({err}): polled instead",
                    s.cfg.name
                );
            }
        }
    }

    /// The registered fds that are ready, by token: a pidfd says its process exited, an output
    /// pipe has lines. A token is looked for in the table as it is now, so a service a reload
    /// or an earlier death in this pass dropped is simply not found.
    fn watched_ready(&mut self, now: Mono) {
        let mut tokens = [0u64; 2 * MAX_SERVICES];
        let n = match &self.epoll {
            Some(e) => e.ready_now(&mut tokens),
            None => 0,
        };
        for &t in &tokens[..n] {
            let pidfd = |s: &super::svc::Svc| s.pidfd.as_ref().and_then(|p| p.token()) == Some(t);
            if let Some(i) = self.svcs.iter().position(pidfd) {
                self.pidfd_ready(i, now);
            } else if let Some(s) = self.svcs.iter_mut().find(|s| s.out.token() == Some(t)) {
                let name = &s.cfg.name;
                s.out.drain(now, |line| info!("{name}: | {line}"));
            }
        }
    }

    /// Handles every ready fd after the signalfd. A service's fd whose handle a reload in this
    /// pass made stale is skipped: level-triggered, it shows up again in the next poll.
    fn dispatch(&mut self, set: &PollSet, now: Mono) {
        for (fd, source) in set.fds.iter().zip(set.sources.iter()).skip(1) {
            if fd.revents == 0 {
                continue;
            }
            match *source {
                Source::Signals | Source::ClockStep => {}
                Source::Watched => self.watched_ready(now),
                Source::Pidfd(h) => {
                    if let Some(i) = self.resolve(h) {
                        self.pidfd_ready(i, now);
                    }
                }
                Source::Output(h) => {
                    if let Some(s) = self.resolve(h).map(|i| &mut self.svcs[i]) {
                        let name = &s.cfg.name;
                        s.out.drain(now, |line| info!("{name}: | {line}"));
                    }
                }
                Source::Listener => {
                    if let Some(c) = &mut self.control {
                        c.accept(now);
                    }
                }
                Source::Log => crate::logger::flush(),
                Source::Client(k) => {
                    let ready = match &mut self.control {
                        Some(c) => c.ready(k, now),
                        None => Ready::Nothing,
                    };
                    if let Ready::Request(k, req) = ready {
                        self.request(k, req, now);
                    }
                }
                Source::Check(h, j) => {
                    let Some(i) = self.resolve(h) else { continue };
                    let done = match self.svcs[i].checks.get_mut(j) {
                        Some(c) => match &mut c.inflight {
                            InFlight::Net(p) => p.ready(),
                            _ => None,
                        },
                        None => None,
                    };
                    if let Some(r) = done {
                        self.finish_check(i, j, r, now);
                    }
                }
            }
        }
    }

    /// Services whose leftovers may be gone, or whose core deadline has come.
    fn services_due(&mut self, now: Mono) {
        for i in 0..self.svcs.len() {
            if matches!(self.svcs[i].st.phase, Phase::Clearing { .. }) {
                self.leftovers_gone(i, now);
            }
            if self.svcs[i].st.deadline().is_some_and(|d| d <= now) {
                self.feed(i, Event::Deadline, now);
            }
        }
    }

    /// On a tick of the interval: probes (and, with a pidfd, an occasional /proc cross-check),
    /// each running process's group and session; every pass: the checks that are due.
    fn tick(&mut self, now: Mono) {
        let tick = now >= self.next_tick;
        if tick {
            self.next_tick = crate::checks::aligned(now, self.interval);
            self.ticks = self.ticks.wrapping_add(1);
        }
        // A pinned process watched through a pidfd reports its exit by itself: /proc is then
        // only a cross-check, every CROSS_CHECK ticks.
        let cross_check = self.ticks.is_multiple_of(CROSS_CHECK);
        for i in 0..self.svcs.len() {
            // A start script that just exited 0 is followed by an immediate look for the process.
            let starting = matches!(self.svcs[i].st.phase, Phase::Starting { script: false, .. });
            let watched = self.svcs[i].pidfd.is_some() && self.svcs[i].st.pin().is_some();
            if (tick && (!watched || cross_check)) || starting {
                self.probe(i, now);
            }
            if tick && self.svcs[i].pidfd.is_none() {
                if let Phase::Running { pin } = self.svcs[i].st.phase {
                    self.svcs[i].watch_instance(pin);
                }
            }
            // While the system shuts down, the services are being stopped: a failing check
            // would only be noise, and no restart follows it.
            if !self.ending {
                self.run_checks(i, now);
            }
        }
        if tick {
            self.watch_instances();
            self.keeper.sweep();
            if (self.keeper.pid().is_none() || self.keeper_stale)
                && now.saturating_sub(self.keeper_started) >= Duration::from_secs(1)
            {
                self.renew_keeper(now);
            }
        }
    }

    /// The group and session of every running process watched through a pidfd, read by
    /// getpgid(2) and, unless the group shows it is unchanged, getsid(2) (where /proc/PID/stat
    /// cost an open, a read of a formatted line and a close each); not read at all for a
    /// session leader, which can change neither. A reading counts only if the pidfd says afterwards, in one poll
    /// for all of them, that the process has not exited: until then its PID could not name
    /// another process.
    fn watch_instances(&mut self) {
        const _: () = assert!(MAX_SERVICES <= 64, "one u64 of exit bits");
        let mut read: heapless::Vec<(usize, Instance), MAX_SERVICES> = heapless::Vec::new();
        // Services whose process the syscalls could not ask about (a security module may
        // refuse them): read through /proc instead, start time and all.
        let mut by_proc: heapless::Vec<usize, MAX_SERVICES> = heapless::Vec::new();
        let exited = {
            // A reading and its pidfd are pushed together: bit k of the answer is reading k.
            let mut fds: heapless::Vec<BorrowedFd<'_>, MAX_SERVICES> = heapless::Vec::new();
            for (i, s) in self.svcs.iter().enumerate() {
                let (Phase::Running { pin }, Some(p)) = (s.st.phase, &s.pidfd) else {
                    continue;
                };
                match read_instance(pin, s.instance.filter(|x| x.pin == pin)) {
                    Ok(Some(x)) => {
                        if read.push((i, x)).is_ok() {
                            let _ = fds.push(p.as_fd());
                        }
                    }
                    // Nothing can have changed; or it has exited, which its pidfd tells.
                    Ok(None) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(_) => {
                        let _ = by_proc.push(i);
                    }
                }
            }
            sys::pidfd::exited(&fds)
        };
        for (k, &(i, x)) in read.iter().enumerate() {
            if exited & (1 << k) == 0 {
                self.svcs[i].saw_instance(x);
            }
        }
        for &i in &by_proc {
            if let Phase::Running { pin } = self.svcs[i].st.phase {
                self.svcs[i].watch_instance(pin);
            }
        }
    }

    /// What every pass ends with: a due reboot, control clients, the boot gate, hooks, the
    /// good-boot mark, the writers' hand-overs and the metrics textfile. Never waits.
    fn housekeeping(&mut self, now: Mono) {
        self.reboot_if_due(now);
        if let Some(c) = &mut self.control {
            c.sweep(now);
        }
        self.gate_pass(now);
        self.hooks.pass(now);
        if self.good_at.is_some_and(|t| now >= t) && self.reboot_at.is_none() {
            self.good_at = None;
            self.boots.mark_good();
            info!(
                "boot: custos has run {} in this boot without asking for a reboot: this boot counts as good for the boot-loop guard",
                Dur(self.boot_cfg.good_after)
            );
        }
        // Never waits: hands a snapshot to the writer thread and picks up its outcomes.
        if let Some(w) = self.record.flush(now) {
            warn!("{w}");
        }
        if let Some(r) = self.record.side_outcome() {
            self.pins_written(r);
        }
        self.flush_boots(now);
        if self.metrics.as_ref().is_some_and(|m| now >= m.next) {
            let text = self.prometheus(now);
            if let Some(m) = &mut self.metrics {
                match m.post(text, now) {
                    Some(Err(e)) => warn!(
                        "metrics: cannot write {}: {e}; tried again every {}",
                        m.path.display(),
                        Dur(m.every())
                    ),
                    Some(Ok(())) => info!("metrics: {} is written again", m.path.display()),
                    None => {}
                }
            }
        }
    }
}

/// The group and session of the live pinned process `pin`, given what was read last time for
/// the same process: `None` when they cannot have changed, so nothing is asked.
fn read_instance(pin: Pin, last: Option<Instance>) -> io::Result<Option<Instance>> {
    // A session leader can change neither its session (setsid(2) refuses a group leader) nor
    // its group (setpgid(2) refuses a session leader).
    if last.is_some_and(|x| x.session == pin.pid) {
        return Ok(None);
    }
    let pgrp = sys::proc::process_group(pin.pid)?;
    // A session changes only by setsid(2), which moves the caller to a new group whose number
    // is its PID, and a group of the old session can never be joined again. So a process still
    // in the group it was in last time, other than the one its own PID names, is in the same
    // session. (Back in the group its PID names, it may have left that group and called setsid
    // meanwhile: the session is asked for again.)
    let session = match last {
        Some(x) if x.pgrp == pgrp && pgrp != pin.pid => x.session,
        _ => sys::proc::session(pin.pid)?,
    };
    Ok(Some(Instance { pin, pgrp, session }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    fn pin_of(pid: u32) -> Pin {
        let s = crate::procs::stat_fields(pid as i32)
            .ok()
            .flatten()
            .expect("stat");
        crate::procs::pin(pid as i32, s.start_ticks)
    }

    #[test]
    fn a_session_leader_is_not_asked_again_and_a_moved_process_is() {
        let mut leader = Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("setsid");
        let mut plain = Command::new("sleep").arg("30").spawn().expect("sleep");
        // setsid(1) calls setsid(2) just after it starts.
        for _ in 0..200 {
            if sys::proc::session(leader.id() as i32).ok() == Some(leader.id() as i32) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (lp, pp) = (pin_of(leader.id()), pin_of(plain.id()));
        // First reading: asked for, and the leader leads its own session.
        let first = read_instance(lp, None).expect("read").expect("asked");
        assert_eq!((first.pgrp, first.session), (lp.pid, lp.pid));
        // Then never again: a session leader can change neither.
        assert_eq!(read_instance(lp, Some(first)).expect("read"), None);
        // A process recorded in another group (as if it moved since): read again, whole.
        let truth = read_instance(pp, None).expect("read").expect("asked");
        let stale = Instance {
            pgrp: truth.pgrp + 1,
            session: truth.session + 1,
            ..truth
        };
        assert_eq!(read_instance(pp, Some(stale)).expect("read"), Some(truth));
        for c in [&mut leader, &mut plain] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

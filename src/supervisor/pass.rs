//! One pass of the loop: the nearest deadline, the poll set, one poll(2), then everything that
//! is due, in a fixed order. The poll sources are the `Source` table below.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use super::{Exit, Supervisor};
use crate::checks::InFlight;
use crate::clock::Dur;
use crate::control::{self, Ready};
use crate::core::{Event, Phase, SigName};
use crate::limits::{MAX_CHECKS, MAX_SERVICES};

/// Fds in one poll: the signalfd, plus a pidfd, an output pipe and the check sockets of each
/// service, the control socket and its clients, stderr while log bytes wait for it, and the
/// wall-clock step watch.
pub(super) const MAX_POLL: usize =
    1 + (2 + MAX_CHECKS) * MAX_SERVICES + 1 + control::MAX_CLIENTS + 1 + 1;

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
pub(super) enum Tag {
    Signals,
    Pidfd(usize),
    Output(usize),
    Check(usize, usize),
    Listener,
    Client(usize),
    Log,
    ClockStep,
}

/// With a pidfd on a pinned process, /proc is read for it every this many ticks only.
pub(super) const CROSS_CHECK: u64 = 10;

impl Supervisor {
    /// One pass of the loop: wait for the nearest event or deadline, then handle everything due.
    pub fn pass(&mut self) -> Option<Exit> {
        self.table_changed = false;
        let now = self.now();
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
            if matches!(s.st.phase, Phase::Running { .. }) {
                for c in &s.checks {
                    deadline = deadline.min(c.wake_at());
                }
            }
        }
        let timeout = deadline.saturating_sub(now);

        // The poll set, rebuilt each pass from fixed-size tables.
        let mut fds: heapless::Vec<libc::pollfd, MAX_POLL> = heapless::Vec::new();
        let mut tags: heapless::Vec<Tag, MAX_POLL> = heapless::Vec::new();
        let mut add = |fd: i32, events: i16, tag: Tag| {
            if fds
                .push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                })
                .is_ok()
            {
                let _ = tags.push(tag);
            }
        };
        add(self.signals.as_fd().as_raw_fd(), libc::POLLIN, Tag::Signals);
        if let Some(w) = &self.step_watch {
            add(w.as_fd().as_raw_fd(), libc::POLLIN, Tag::ClockStep);
        }
        if let Some(c) = &self.control {
            c.poll_set(now, |fd, ev, k| {
                add(fd, ev, k.map_or(Tag::Listener, Tag::Client))
            });
        }
        for (i, s) in self.svcs.iter().enumerate() {
            if let Some(p) = &s.pidfd {
                add(p.as_fd().as_raw_fd(), libc::POLLIN, Tag::Pidfd(i));
            }
            add(s.out.as_fd().as_raw_fd(), libc::POLLIN, Tag::Output(i));
            for (j, c) in s.checks.iter().enumerate() {
                if let InFlight::Net(p) = &c.inflight {
                    add(p.as_fd().as_raw_fd(), p.events(), Tag::Check(i, j));
                }
            }
        }
        if let Some(fd) = crate::logger::pending() {
            add(fd, libc::POLLOUT, Tag::Log);
        }
        // Round up so a wake-up never comes a hair before its deadline.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of fds.len() pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                error!("poll failed: {e}");
            }
        }
        let now = self.now();

        // Signals first: SIGCHLD reaps, so deaths carry their exit status.
        if fds[0].revents != 0 {
            while let Some(sig) = self.signals.pending() {
                match sig {
                    libc::SIGCHLD => {}
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
        }
        // A step of the wall clock: said before anything is judged in this pass.
        let set = fds
            .iter()
            .zip(tags.iter())
            .any(|(fd, tag)| matches!(tag, Tag::ClockStep) && fd.revents != 0)
            && self.step_watch.as_ref().is_some_and(|w| w.stepped());
        self.watch_wall_clock(set, now);
        // Reap on every pass: cheap, and a SIGCHLD coalesced with another is never lost.
        self.reap(now);

        for (fd, tag) in fds.iter().zip(tags.iter()).skip(1) {
            if self.table_changed {
                // Level-triggered: whatever is still ready shows up again in the next poll.
                break;
            }
            if fd.revents == 0 {
                continue;
            }
            match *tag {
                Tag::Signals | Tag::ClockStep => {}
                Tag::Pidfd(i) if i < self.svcs.len() => self.pidfd_ready(i, now),
                Tag::Output(i) if i < self.svcs.len() => {
                    let s = &mut self.svcs[i];
                    let name = &s.cfg.name;
                    s.out.drain(now, |line| info!("{name}: | {line}"));
                }
                Tag::Listener => {
                    if let Some(c) = &mut self.control {
                        c.accept(now);
                    }
                }
                Tag::Log => crate::logger::flush(),
                Tag::Client(k) => {
                    let ready = match &mut self.control {
                        Some(c) => c.ready(k, now),
                        None => Ready::Nothing,
                    };
                    if let Ready::Request(k, req) = ready {
                        self.request(k, req, now);
                    }
                }
                Tag::Check(i, j) => {
                    let done = match self.svcs.get_mut(i).and_then(|s| s.checks.get_mut(j)) {
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
                _ => {}
            }
        }

        for i in 0..self.svcs.len() {
            if matches!(self.svcs[i].st.phase, Phase::Clearing { .. }) {
                self.leftovers_gone(i, now);
            }
            if self.svcs[i].st.deadline().is_some_and(|d| d <= now) {
                self.feed(i, Event::Deadline, now);
            }
        }

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
            if tick {
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
            self.keeper.sweep();
            if (self.keeper.pid().is_none() || self.keeper_stale)
                && now.saturating_sub(self.keeper_started) >= Duration::from_secs(1)
            {
                self.renew_keeper(now);
            }
        }
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
        let end = self.now();
        self.pet(now, end);
        None
    }
}

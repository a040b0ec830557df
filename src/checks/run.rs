//! One check's run-time state: what is in flight, when the next run is due, and the kinds that
//! are decided at once (program spawn, memory, fds, heartbeat, CPU).

use std::io;
use std::path::Path;
use std::time::Duration;

use super::probe::NetProbe;
use super::resources::{cpu_ticks, fd_count, heartbeat_meta, rss_bytes, Stamp};
use super::tracker::{aligned, Tracker};
use super::Failure;
use crate::clock::Mono;
use crate::config::CheckConfig;

/// A check's work in progress.
pub enum InFlight {
    Idle,
    /// Boxed: its reply buffer (6 KiB) exists only while a probe is in flight.
    Net(Box<NetProbe>),
    /// A `program` check runs as this process group leader until the deadline.
    Program {
        pid: i32,
        deadline: Mono,
    },
}

/// One check's run-time state, reset each time its service's process is pinned.
pub struct CheckRt {
    pub tracker: Tracker,
    /// Failed runs since the check was set up (for the metrics).
    pub failed_total: u32,
    pub next_due: Mono,
    pub inflight: InFlight,
    /// Last CPU sample (time, utime+stime ticks) and since when usage has been over the limit.
    cpu_sample: Option<(Mono, u64)>,
    cpu_over_since: Option<Mono>,
    /// The heartbeat file as last seen, and since when (boot clock) it has looked so.
    beat: Option<(Stamp, Mono)>,
}

impl CheckRt {
    pub fn new() -> CheckRt {
        CheckRt {
            failed_total: 0,
            tracker: Tracker::pinned(Duration::ZERO, Duration::ZERO),
            next_due: Duration::ZERO,
            inflight: InFlight::Idle,
            cpu_sample: None,
            cpu_over_since: None,
            beat: None,
        }
    }

    /// A new process was pinned: start over, grace first, first probe now.
    pub fn reset(&mut self, cfg: &CheckConfig, now: Mono) {
        self.tracker = Tracker::pinned(now, cfg.grace);
        self.next_due = now;
        self.inflight = InFlight::Idle;
        self.cpu_sample = None;
        self.cpu_over_since = None;
        self.beat = None;
    }

    /// The deadline of the work in flight, or when the next probe is due.
    pub fn wake_at(&self) -> Mono {
        match &self.inflight {
            InFlight::Idle => self.next_due,
            InFlight::Net(p) => p.deadline,
            InFlight::Program { deadline, .. } => *deadline,
        }
    }

    /// Starts a probe of the process `pid`. Returns the result at once for the kinds that need
    /// no waiting; `spawn` runs a program check's argv and returns its PID.
    pub fn begin(
        &mut self,
        cfg: &CheckConfig,
        pid: i32,
        now: Mono,
        spawn: impl FnOnce(&crate::config::Argv) -> io::Result<i32>,
    ) -> Option<Result<(), Failure>> {
        use crate::config::CheckKind;
        self.next_due = aligned(now, cfg.every);
        let deadline = now + cfg.timeout;
        match &cfg.kind {
            CheckKind::Http {
                addr,
                path,
                status,
                expect,
            } => {
                match NetProbe::start(addr, Some((path, *status, expect.as_deref())), deadline) {
                    Ok(p) => self.inflight = InFlight::Net(Box::new(p)),
                    Err(f) => return Some(Err(f)),
                }
                None
            }
            CheckKind::Tcp { addr } => {
                match NetProbe::start(addr, None, deadline) {
                    Ok(p) => self.inflight = InFlight::Net(Box::new(p)),
                    Err(f) => return Some(Err(f)),
                }
                None
            }
            CheckKind::Program { argv } => match spawn(argv) {
                Ok(pid) => {
                    self.inflight = InFlight::Program { pid, deadline };
                    None
                }
                Err(e) => Some(Err(Failure::ProgramSpawn(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))),
            },
            CheckKind::Memory { max_bytes } => Some(match rss_bytes(pid) {
                None => Err(Failure::ProcGone),
                Some(rss) if rss > *max_bytes => Err(Failure::Memory {
                    rss,
                    max: *max_bytes,
                }),
                Some(_) => Ok(()),
            }),
            CheckKind::Fds { max } => Some(match fd_count(pid) {
                None => Err(Failure::ProcGone),
                Some(n) if n > *max => Err(Failure::Fds {
                    count: n,
                    max: *max,
                }),
                Some(_) => Ok(()),
            }),
            CheckKind::Heartbeat { path, max_age } => self.heartbeat(path, *max_age, now),
            CheckKind::Cpu { max_percent, over } => self.cpu(pid, *max_percent, *over, now),
        }
    }

    /// Whether the heartbeat file at `path` changed within `max_age`.
    fn heartbeat(
        &mut self,
        path: &Path,
        max_age: Duration,
        now: Mono,
    ) -> Option<Result<(), Failure>> {
        let stamp = match heartbeat_meta(path) {
            Ok(m) => Stamp::of(&m),
            Err(f) => {
                self.beat = None;
                return Some(Err(f));
            }
        };
        let age = self.beat_age(stamp, now);
        Some(if age > max_age {
            Err(Failure::HeartbeatOld { age, max: max_age })
        } else {
            Ok(())
        })
    }

    /// The CPU use of `pid` since the last sample; a failure once it has been over
    /// `max_percent` for `over`.
    fn cpu(
        &mut self,
        pid: i32,
        max_percent: f64,
        over: Duration,
        now: Mono,
    ) -> Option<Result<(), Failure>> {
        let Some(ticks) = cpu_ticks(pid) else {
            return Some(Err(Failure::ProcGone));
        };
        let prev = self.cpu_sample.replace((now, ticks));
        let Some((t0, k0)) = prev else {
            return Some(Ok(()));
        };
        let secs = now.saturating_sub(t0).as_secs_f64();
        if secs <= 0.0 {
            return Some(Ok(()));
        }
        let used = ticks.saturating_sub(k0) as f64 / crate::procs::ticks_per_second() as f64;
        let percent = used / secs * 100.0;
        if percent <= max_percent {
            self.cpu_over_since = None;
            return Some(Ok(()));
        }
        let since = *self.cpu_over_since.get_or_insert(t0);
        if now.saturating_sub(since) >= over {
            Some(Err(Failure::Cpu {
                percent,
                max: max_percent,
                over,
            }))
        } else {
            Some(Ok(()))
        }
    }
}

impl CheckRt {
    /// How long the heartbeat file has looked like `stamp`, on the boot clock. Any change of
    /// its timestamps, size or inode is a beat, whatever the dates say: the wall clock that
    /// wrote them may have been stepped either way. A file first looked at counts from now.
    pub fn beat_age(&mut self, stamp: Stamp, now: Mono) -> Duration {
        let since = match self.beat {
            Some((seen, since)) if seen == stamp => since,
            _ => now,
        };
        self.beat = Some((stamp, since));
        now.saturating_sub(since)
    }
}

impl Default for CheckRt {
    fn default() -> Self {
        CheckRt::new()
    }
}

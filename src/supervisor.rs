//! The one event loop and the effectors. Each pass blocks in exactly one poll(2) — over the
//! signalfd, the pidfds of pinned processes and the script output pipes — with a timeout set to
//! the nearest deadline on the monotonic clock. Every decision is the core's; this file only
//! turns actions into syscalls and logs each with its cause.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::boot::{self, Begin, BootLog, End, GateVerdict};
use crate::checks::{CheckRt, Failure, InFlight, Verdict};
use crate::clock::step::StepWatch;
use crate::clock::{Dur, Mono};
use crate::config::{
    self, BootConfig, CheckAction, Config, Identify, ServiceConfig, WatchdogConfig,
};
use crate::control::{self, Access, ControlServer, Ready, Request};
use crate::core::{
    Absent, Action, Cause, Event, Note, Observation, Phase, PidfileNotRegular, Pin, Policy,
    RestartWhy, Script, ServiceState, SigName,
};
use crate::files::Kind as FileKind;
use crate::keeper::Keeper;
use crate::limits::{MAX_CHECKS, MAX_LEFTOVERS, MAX_SERVICES};
use crate::pidfd::{self, PidFd};
use crate::pins;
use crate::procs::{self, PinState};
use crate::record::{self, Kind, Record};
use crate::scripts::{self, OutputPipe};
use crate::signals::Signals;
use crate::watchdog::{BootStatus, Options, Watchdog};

/// Fds in one poll: the signalfd, plus a pidfd, an output pipe and the check sockets of each
/// service, the control socket and its clients, stderr while log bytes wait for it, and the
/// wall-clock step watch.
const MAX_POLL: usize = 1 + (2 + MAX_CHECKS) * MAX_SERVICES + 1 + control::MAX_CLIENTS + 1 + 1;

/// What a polled fd belongs to.
#[derive(Clone, Copy)]
enum Tag {
    Signals,
    Pidfd(usize),
    Output(usize),
    Check(usize, usize),
    Listener,
    Client(usize),
    Log,
    ClockStep,
}
/// Children reaped per batch (deaths are handled before script exits within a batch).
const REAP_BATCH: usize = 32;
/// With a pidfd on a pinned process, /proc is read for it every this many ticks only.
const CROSS_CHECK: u64 = 10;
/// Events one event may lead to (a failed spawn feeds one back).
const EVENT_QUEUE: usize = 4;

/// One supervised service: its config, the core's state, and the kernel objects that go with it.
pub struct Svc {
    pub cfg: ServiceConfig,
    policy: Policy,
    pub st: ServiceState,
    pidfd: Option<PidFd>,
    /// The script that runs now, and which one it is.
    script: Option<(i32, Script)>,
    /// Scripts whose group was killed and that are not reaped yet: their exit is not news.
    killed: heapless::Vec<i32, 8>,
    out: OutputPipe,
    checks: heapless::Vec<CheckRt, MAX_CHECKS>,
    /// Said once that a traced process is held back from check actions.
    traced_said: bool,
    /// The pidfile is not a regular file (said once per change; shown by `custos status`).
    pidfile_kind: Option<FileKind>,
    /// What custos knows about the service's process beyond its pidfile (identity evidence).
    known: procs::Known,
    /// The pidfile as the last probe read it.
    last_read: Option<procs::PidfileStamp>,
    /// The pinned process's instance (its process group and session), recorded while it lived.
    instance: Option<procs::Instance>,
    /// While its leftovers are being stopped: those the last sweep signalled.
    swept: heapless::Vec<Pin, MAX_LEFTOVERS>,
    /// When custos saw the main process of the instance being cleared dead (boot clock).
    died_by: Mono,
    /// Deaths by cause, for the metrics: 0 exited, -1 cause unknown, else killed by that signal.
    deaths: heapless::Vec<(i32, u32), MAX_DEATH_CAUSES>,
    /// When it last died, on the wall clock (for the metrics only, never for a decision).
    last_death_at: Option<u64>,
    /// The start script this custos runs now, by identity (for the pins file).
    start_script: Option<pins::StartScript>,
    /// A start script an earlier custos ran in this boot that still ran when this one started:
    /// nothing is started until it ends (or outlives its start_timeout and is killed), so that
    /// a custos killed during a start does not make a second copy of the service.
    inherited_start: Option<pins::StartScript>,
}

fn policy_of(cfg: &ServiceConfig) -> Policy {
    Policy {
        restart: cfg.restart.clone(),
        start_timeout: cfg.start_timeout,
        stop_timeout: cfg.stop_timeout,
        has_stop: cfg.stop.is_some(),
        stop_leftovers: cfg.leftovers == config::Leftovers::Stop,
    }
}

/// Causes of death counted apart per service; further signals are counted with the last one.
const MAX_DEATH_CAUSES: usize = 8;

impl Svc {
    /// Counts a death by its cause for the metrics.
    fn count_death(&mut self, cause: Cause) {
        let key = match cause {
            Cause::Exited(_) => 0,
            Cause::Killed { signal, .. } => signal,
            Cause::NotOurChild => -1,
        };
        self.last_death_at = Some(crate::clock::wall_now());
        if let Some(e) = self.deaths.iter_mut().find(|e| e.0 == key) {
            e.1 = e.1.saturating_add(1);
        } else if self.deaths.push((key, 1)).is_err() {
            if let Some(e) = self.deaths.last_mut() {
                e.1 = e.1.saturating_add(1);
            }
        }
    }

    fn new(cfg: ServiceConfig) -> io::Result<Svc> {
        Ok(Svc {
            policy: policy_of(&cfg),
            cfg,
            st: ServiceState::default(),
            pidfd: None,
            script: None,
            start_script: None,
            inherited_start: None,
            killed: heapless::Vec::new(),
            out: OutputPipe::new()?,
            checks: heapless::Vec::new(),
            traced_said: false,
            pidfile_kind: None,
            known: procs::Known::default(),
            last_read: None,
            instance: None,
            swept: heapless::Vec::new(),
            died_by: Duration::ZERO,
            deaths: heapless::Vec::new(),
            last_death_at: None,
        }
        .with_checks())
    }

    /// One run-time check per configured check (at most MAX_CHECKS, checked at load).
    fn with_checks(mut self) -> Svc {
        self.checks.clear();
        for _ in self.cfg.checks.iter().take(MAX_CHECKS) {
            let _ = self.checks.push(CheckRt::new());
        }
        self
    }

    /// Remembers a killed child that is ours to reap, so its exit is not news.
    fn forget_killed(&mut self, pid: i32) {
        if self.killed.is_full() {
            self.killed.remove(0);
        }
        let _ = self.killed.push(pid);
    }

    /// Drops the checks' work in flight (a program check's group is killed).
    fn cancel_checks(&mut self) {
        let mut killed: heapless::Vec<i32, MAX_CHECKS> = heapless::Vec::new();
        for c in self.checks.iter_mut() {
            if let InFlight::Program { pid, .. } = c.inflight {
                if let Ok(false) = scripts::kill_group(pid) {
                    debug!(
                        "{}: check program (pid {pid}) already reaped: its process group is not signalled",
                        self.cfg.name
                    );
                }
                let _ = killed.push(pid);
            }
            c.inflight = InFlight::Idle;
        }
        for pid in killed {
            self.forget_killed(pid);
        }
    }

    /// The pidfile's problem in words ("pidfile /run/x.pid: is a FIFO, not a regular file:
    /// not read"), if it has one.
    fn pidfile_problem(&self) -> Option<String> {
        match (&self.cfg.identify, self.pidfile_kind) {
            (Identify::Pidfile(p), Some(k)) => {
                Some(format!("pidfile {}: {}", p.display(), PidfileNotRegular(k)))
            }
            _ => None,
        }
    }

    /// Says once, when it starts, that the pidfile is not a regular file (every probe finds it
    /// again: a line per tick would flood the log).
    fn watch_pidfile(&mut self, obs: &Observation) {
        let kind = match obs {
            Observation::Absent(Absent::PidfileNotRegular(k)) => Some(*k),
            _ => None,
        };
        if kind != self.pidfile_kind {
            self.pidfile_kind = kind;
            if let Some(problem) = self.pidfile_problem() {
                warn!("{}: {problem}", self.cfg.name);
            }
        }
    }

    /// Records the group and session the live pinned process is in now. A daemon may change
    /// them after its pidfile names it (nginx writes its pidfile as it daemonizes), so this is
    /// read again on every tick while it runs: once it is dead, /proc can no longer tell.
    fn watch_instance(&mut self, pin: Pin) {
        let Some(x) = procs::instance_of(pin) else {
            return;
        };
        if self.instance != Some(x) {
            debug!(
                "{}: pid {} is in process group {} and session {}",
                self.cfg.name, pin.pid, x.pgrp, x.session
            );
            self.instance = Some(x);
        }
    }

    fn how(&self) -> String {
        match &self.cfg.identify {
            Identify::Pidfile(p) => format!("pidfile {}", p.display()),
            Identify::Exe { exe, args: None } => format!("exe {}", exe.display()),
            Identify::Exe { exe, args: Some(a) } => format!("exe {} {a}", exe.display()),
        }
    }
}

/// What the kernel can do for us, probed once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct Facilities {
    pub subreaper: bool,
    pub pidfd: bool,
}

pub struct Supervisor {
    config_path: PathBuf,
    /// The [supervisor] section in force (settings that take effect only at start-up).
    settings: config::SupervisorConfig,
    interval: Duration,
    /// The service table: allocated once with room for MAX_SERVICES and never grown (the
    /// config is checked against that limit). On the heap because it is ~70 KB: as a value it
    /// was copied through main's stack frame, 340 KB of resident stack (scripts/bench).
    pub svcs: Vec<Svc>,
    signals: Signals,
    next_tick: Mono,
    facilities: Facilities,
    watchdog: Option<Watchdog>,
    watchdog_cfg: Option<WatchdogConfig>,
    next_pet: Mono,
    /// `on_exhausted = "reboot"`: petting has stopped; reboot(2) at this time if still alive.
    reboot_at: Option<Mono>,
    control: Option<ControlServer>,
    /// Boot-loop guard tripped: no reboot escalation this boot.
    degraded: bool,
    /// The boots seen in state_dir, apart from the record.
    boots: BootLog,
    /// `[boot]` as custos started with it (a reload changes it at the next start).
    boot_cfg: BootConfig,
    /// What the guard found when custos started in this boot.
    guard: Option<boot::Verdict>,
    /// This boot counts as good from this time on (supervisor clock), unless custos asks for a
    /// reboot first; `None` once marked.
    good_at: Option<Mono>,
    /// Ticks of the /proc poll since start-up.
    ticks: u64,
    /// The service table was replaced (a reload) during this pass: poll results that name
    /// services by index are stale and must not be dispatched.
    table_changed: bool,
    /// The events of this and earlier boots (deaths, actions), kept in state_dir.
    pub record: Record,
    /// Holds the services' output pipes for the daemons that write to them when custos is gone.
    keeper: Keeper,
    /// When the output keeper was last started (it is restarted at most once a second).
    keeper_started: Mono,
    /// The running keeper (if any) does not hold every pipe: starting a new one failed.
    keeper_stale: bool,
    /// `custos shutdown` was run: the system is going down, nothing is started or restarted.
    ending: bool,
    /// This boot's id, for the pins file.
    boot: String,
    /// The wall clock as custos watches it: CLOCK_REALTIME minus CLOCK_BOOTTIME when last
    /// looked at, and since when (boot clock) no step has been seen.
    wall_offset: i128,
    trusted_since: Mono,
    /// After a step back: mtimes that read before this may be older than they read.
    ambiguous_before: Mono,
    /// Said once that the pins file cannot be written.
    pins_warned: bool,
    /// Readable when the wall clock is set (None: timerfd unavailable; steps are then seen by
    /// comparing the clocks each pass).
    step_watch: Option<StepWatch>,
    /// The boot-health gate in this run of custos.
    gate: Gate,
    /// The gate programs' output pipe, made at start-up so that the output keeper holds it too:
    /// the program and what it leaves running never die of SIGPIPE once custos is gone, and
    /// custos drains it on every pass for as long as it runs, not only while the program does.
    gate_out: Option<OutputPipe>,
    /// When this run of custos started (the gate's deadline counts from here).
    started: Mono,
    /// `[metrics] textfile`, as custos started with it (a reload changes it at the next start).
    metrics: Option<crate::metrics::Textfile>,
    /// `[metrics]` as custos started with it.
    metrics_cfg: Option<config::MetricsConfig>,
    /// When the watchdog was last petted.
    last_pet: Option<Mono>,
    /// `[[hook]]`: programs run on events, as custos started with them.
    hooks: crate::hooks::Hooks,
}

/// The boot-health gate (`[boot] healthy_after`): one verdict per boot on the vital services.
enum Gate {
    /// No gate configured.
    Off,
    /// No verdict yet. `since`: every vital service has been healthy since then, with these
    /// pinned PIDs (a new PID is an interruption).
    Pending {
        since: Option<(Mono, heapless::Vec<i32, MAX_SERVICES>)>,
    },
    /// The verdict's program runs (its own process group) and is killed at `kill_at`.
    Running {
        verdict: GateVerdict,
        pid: i32,
        kill_at: Mono,
        timed_out: bool,
    },
    /// Decided in this boot; what came of it, for `status`.
    Done {
        verdict: GateVerdict,
        outcome: String,
    },
}

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Signal(i32),
}

fn cause_of(status: i32) -> Cause {
    if libc::WIFSIGNALED(status) {
        Cause::Killed {
            signal: libc::WTERMSIG(status),
            core: libc::WCOREDUMP(status),
        }
    } else {
        Cause::Exited(libc::WEXITSTATUS(status))
    }
}

/// Signals the pinned process: through its pidfd, or without one by PID right after checking
/// its start time. Never anything else (Rule 1).
fn signal_pin(pidfd: Option<&PidFd>, pin: Pin, signal: i32) -> io::Result<()> {
    // Never init or custos itself, whatever was pinned (pins are refused for them already).
    if pin.pid <= 1 || pin.pid == procs::own_pid() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    match pidfd {
        Some(fd) => fd.send_signal(signal),
        None => match procs::check_pin(pin) {
            PinState::Alive => {
                // SAFETY: kill(2) on a PID just verified to be the pinned process.
                if unsafe { libc::kill(pin.pid, signal) } < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
            _ => Err(io::Error::from_raw_os_error(libc::ESRCH)),
        },
    }
}

/// Signals a leftover of a dead instance, identified by PID and start time: through a pidfd
/// opened and then checked against the start time (a PID reused since cannot be reached), or
/// without pidfds by PID right after the check. `Ok(false)`: it is gone.
fn signal_leftover(p: Pin, signal: i32, pidfd_ok: bool) -> io::Result<bool> {
    if p.pid <= 1 || p.pid == procs::own_pid() {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    if pidfd_ok {
        let fd = match PidFd::open(p.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
            Err(e) => return Err(e),
        };
        return match procs::check_pin(p) {
            PinState::Alive => fd.send_signal(signal).map(|()| true),
            PinState::Unknown => Err(io::Error::from_raw_os_error(libc::EIO)),
            PinState::Zombie | PinState::Gone => Ok(false),
        };
    }
    match signal_pin(None, p, signal) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// PIDs in words: "812 813 (and 3 more)".
struct Pids<'a>(&'a [Pin], usize);

impl std::fmt::Display for Pids<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, p) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", p.pid)?;
        }
        if self.1 > self.0.len() {
            write!(f, " (and {} more)", self.1 - self.0.len())?;
        }
        Ok(())
    }
}

/// Puts every signal custos does not handle back to its default disposition, so that what init
/// left ignored (SIGCHLD ignored would auto-reap children) neither changes custos nor leaks into
/// the scripts. SIGPIPE stays ignored in custos; std restores it for children.
pub fn reset_signal_dispositions() {
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        // SAFETY: setting a default disposition installs no handler; failures (invalid signal
        // numbers) are harmless and ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Makes custos the reaper of orphaned descendants, so double-forked daemons become its
/// children and their exit status reaches it.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag; no memory is involved.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Supervisor {
    /// Sets up the kernel objects and the service table. Fails only on what custos cannot run
    /// without (the signalfd, a pipe).
    pub fn new(config_path: &Path, config: Config) -> io::Result<Supervisor> {
        reset_signal_dispositions();
        let signals = Signals::new()?;
        let subreaper = match become_subreaper() {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    "cannot become child subreaper ({e}; qemu-user and pre-3.4 kernels lack it): \
                     deaths of daemonized services will show 'cause unknown'"
                );
                false
            }
        };
        let pidfd = match pidfd::supported() {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    "pidfd_open unavailable ({e}; Linux < 5.3): deaths are found by polling /proc \
                     every {}; signals go by PID after a start-time check",
                    Dur(config.supervisor.interval)
                );
                false
            }
        };
        // After the signal mask is set (its writer thread inherits it), and before the watchdog
        // is armed: reading the record may take long on a slow disk.
        let (record, warnings) = Record::open(&config.supervisor.state_dir);
        for w in warnings {
            warn!("{w}");
        }
        let (boots, warnings) = BootLog::open(&config.supervisor.state_dir);
        for w in warnings {
            warn!("{w}");
        }
        let access = Access {
            gid: config.supervisor.control_group.as_ref().map(|g| g.1),
        };
        let control = match ControlServer::bind(&config.supervisor.control_socket, access) {
            Ok(c) => Some(c),
            Err(e) => {
                error!(
                    "control: cannot listen on {}: {e}; custos runs without its control socket",
                    config.supervisor.control_socket.display()
                );
                None
            }
        };
        let mut svcs = Vec::with_capacity(MAX_SERVICES);
        // Checked at load: the config never holds more than MAX_SERVICES.
        for cfg in config.services.into_iter().take(MAX_SERVICES) {
            svcs.push(Svc::new(cfg)?);
        }
        let mut sup = Supervisor {
            config_path: config_path.to_path_buf(),
            settings: config.supervisor.clone(),
            interval: config.supervisor.interval,
            svcs,
            signals,
            next_tick: Duration::ZERO,
            facilities: Facilities { subreaper, pidfd },
            boot: record::read_boot_id().to_string(),
            wall_offset: crate::clock::wall_minus_boot(),
            trusted_since: crate::clock::boottime(),
            ambiguous_before: Duration::ZERO,
            pins_warned: false,
            step_watch: match StepWatch::new() {
                Ok(w) => Some(w),
                Err(e) => {
                    warn!("cannot watch for wall-clock steps ({e}): they are found by comparing the clocks on each pass of the loop");
                    None
                }
            },
            gate: if config.boot.gate.is_some() {
                Gate::Pending { since: None }
            } else {
                Gate::Off
            },
            gate_out: config
                .boot
                .gate
                .as_ref()
                .and_then(|_| OutputPipe::new().ok()),
            started: crate::clock::boottime(),
            // After the signal mask is set, like the record's writer.
            metrics: config.metrics.as_ref().and_then(|m| {
                crate::metrics::Textfile::start(m, crate::clock::boottime())
                    .map_err(|e| {
                        error!(
                            "metrics: cannot write {}: {e}; custos runs without it",
                            m.textfile.display()
                        )
                    })
                    .ok()
            }),
            last_pet: None,
            hooks: crate::hooks::Hooks::new(config.hooks, &record::read_boot_id()),
            metrics_cfg: config.metrics.clone(),
            watchdog: None,
            watchdog_cfg: config.watchdog,
            next_pet: Duration::ZERO,
            reboot_at: None,
            control,
            record,
            degraded: false,
            boots,
            good_at: Some(crate::clock::boottime() + config.boot.good_after),
            boot_cfg: config.boot,
            guard: None,
            table_changed: false,
            ticks: 0,
            keeper: Keeper::new(),
            keeper_started: Duration::ZERO,
            keeper_stale: false,
            ending: false,
        };
        sup.load_pins();
        sup.renew_keeper(crate::clock::boottime());
        // Last: from here on the loop must pet in time, and nothing above may delay it.
        sup.watchdog = sup
            .watchdog_cfg
            .as_ref()
            .and_then(|w| match Watchdog::open(w) {
                Ok(wd) => Some(wd),
                Err(e) if e.error.raw_os_error() == Some(libc::EBUSY) => {
                    // Another watchdog daemon (watchdogd, watchdog, busybox watchdog): loudly,
                    // with who it is, since the board is then protected by that daemon's
                    // idea of health, not custos's.
                    let held = crate::watchdog::HoldersText(&crate::watchdog::holders(&e.device))
                        .to_string();
                    error!(
                        "watchdog: {e}: {held}; supervising WITHOUT the hardware watchdog: remove the other watchdog daemon from the image (only one process may open a watchdog)"
                    );
                    None
                }
                Err(e) => {
                    error!("watchdog: {e}; supervising without a hardware watchdog");
                    None
                }
            });
        Ok(sup)
    }

    /// Forks an output keeper holding every service's pipe (and the retired ones), replacing
    /// the one that runs.
    fn renew_keeper(&mut self, now: Mono) {
        let mut live: heapless::Vec<i32, { MAX_SERVICES + 2 }> = heapless::Vec::new();
        for s in &self.svcs {
            let _ = live.push(s.out.as_fd().as_raw_fd());
        }
        if let Some(o) = &self.gate_out {
            let _ = live.push(o.as_fd().as_raw_fd());
        }
        if let Some(o) = self.hooks.out() {
            let _ = live.push(o.as_fd().as_raw_fd());
        }
        self.keeper_started = now;
        match self.keeper.renew(&live) {
            Ok(pid) => {
                self.keeper_stale = false;
                debug!("output keeper runs as pid {pid}");
            }
            Err(e) => {
                // Tried again on each tick, at most once a second, until it works.
                if !self.keeper_stale {
                    warn!(
                        "cannot start the output keeper: {e}: a daemon that writes to the stdout its start script gave it may die when custos exits; trying again every second"
                    );
                }
                self.keeper_stale = true;
            }
        }
    }

    /// Reads the pins file of an earlier run: in this boot, the processes to adopt again and
    /// the wall clock as it was watched; from an earlier boot, the pidfiles it left behind.
    fn load_pins(&mut self) {
        let now = self.now();
        let saved = match pins::load(&self.settings.state_dir) {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.save_pins();
                return;
            }
            Err(e) => {
                warn!("pins: {e}; ignored: every pidfile is judged afresh");
                self.save_pins();
                return;
            }
        };
        let same_boot = !self.boot.is_empty() && saved.boot == self.boot;
        for s in self.svcs.iter_mut() {
            let name = s.cfg.name.as_str();
            let last = saved.last.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
            let old = saved.old.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
            if same_boot {
                s.known.last = last;
                s.known.earlier_boot = old;
                let start = saved
                    .starts
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| *p);
                if let Some(st) = start {
                    // Never init or custos, whatever the pins file says: its group is killed
                    // after start_timeout, and kill(-1) would signal every process.
                    if st.pid > 1
                        && st.pid != procs::own_pid()
                        && procs::check_pin(procs::pin(st.pid, st.start_ticks)) == PinState::Alive
                    {
                        info!(
                            "{name}: the start script an earlier custos ran (pid {}) still runs: starting nothing until it ends, or until {} after it began (then its process group is killed)",
                            st.pid,
                            Dur(s.cfg.start_timeout)
                        );
                        s.inherited_start = Some(st);
                    }
                }
            } else {
                s.known.earlier_boot = last.and_then(|p| p.stamp).or(old);
            }
        }
        if same_boot {
            // Slewing moves the offset by at most 500 ppm of the time since it was written.
            let since = now.saturating_sub(saved.written_at);
            let tolerance = 1_000_000_000i128 + (since.as_nanos() / 2000) as i128;
            let step = self.wall_offset - saved.offset_ns;
            self.ambiguous_before = saved.ambiguous_before;
            if step.abs() <= tolerance {
                self.trusted_since = saved.trusted_since.min(now);
            } else {
                self.stepped(step, now);
                warn!(
                    "wall clock stepped {} while custos was not running: a stale-looking pidfile written before now is held, not trusted",
                    StepText(step)
                );
            }
            let n = self.svcs.iter().filter(|s| s.known.last.is_some()).count();
            info!("pins: {n} process(es) pinned earlier in this boot will be adopted again if their pidfiles still name them");
        }
        self.save_pins();
    }

    /// Compares the wall clock with the boot clock: a step (`set`: the timerfd saw the clock
    /// set; or a jump of the offset beyond what slewing does in a pass) is logged once, recorded,
    /// and ends the time during which custos knows the wall clock to be continuous.
    fn watch_wall_clock(&mut self, set: bool, now: Mono) {
        let offset = crate::clock::wall_minus_boot();
        let step = offset - self.wall_offset;
        self.wall_offset = offset;
        if !set && step.abs() < 1_000_000_000 {
            return;
        }
        self.stepped(step, now);
        if step.abs() < 1_000_000 {
            debug!("wall clock set (by {}ns)", step);
        } else {
            let text = format!(
                "wall clock stepped {}: no timer, age or identity of custos depends on it (they use the boot clock); a stale-looking pidfile written before now is held, not trusted",
                StepText(step)
            );
            warn!("{text}");
            self.note(Kind::ClockStep, "", &text);
        }
        self.save_pins();
    }

    /// What a step of the wall clock by `step` ns, seen at `now`, changes: from now on the
    /// clock is known continuous; after a step back, mtimes that read before now + the step
    /// may have been written before it.
    fn stepped(&mut self, step: i128, now: Mono) {
        self.trusted_since = now;
        if step < 0 {
            let back = Duration::from_nanos(u64::try_from(-step).unwrap_or(u64::MAX));
            self.ambiguous_before = self.ambiguous_before.max(now.saturating_add(back));
        }
    }

    /// Writes the pins file (the last pin of every service, the clock watch).
    fn save_pins(&mut self) {
        let saved = pins::Saved {
            boot: self.boot.clone(),
            offset_ns: self.wall_offset,
            trusted_since: self.trusted_since,
            ambiguous_before: self.ambiguous_before,
            written_at: self.now(),
            last: self
                .svcs
                .iter()
                .filter_map(|s| s.known.last.map(|p| (s.cfg.name.clone(), p)))
                .collect(),
            old: self
                .svcs
                .iter()
                .filter_map(|s| s.known.earlier_boot.map(|p| (s.cfg.name.clone(), p)))
                .collect(),
            starts: self
                .svcs
                .iter()
                .filter_map(|s| {
                    let running = match (s.script, s.start_script) {
                        (Some((pid, Script::Start)), Some(st)) if st.pid == pid => Some(st),
                        _ => None,
                    };
                    running
                        .or(s.inherited_start)
                        .map(|st| (s.cfg.name.clone(), st))
                })
                .collect(),
        };
        // Through the record's writer thread: a slow disk must not delay the loop.
        let r = self
            .record
            .write_side(pins::FILE_NAME, saved.render().into_bytes());
        self.pins_written(r);
    }

    /// Says once that the pins file cannot be written, and again once it can after that.
    fn pins_written(&mut self, r: io::Result<()>) {
        match r {
            Err(e) if !self.pins_warned => {
                self.pins_warned = true;
                warn!(
                    "pins: cannot write {}: {e}; a respawned custos will judge every pidfile afresh",
                    pins::path(&self.settings.state_dir).display()
                );
            }
            Err(_) => {}
            Ok(()) => self.pins_warned = false,
        }
    }

    fn now(&self) -> Mono {
        crate::clock::boottime()
    }

    /// Runs until SIGTERM or SIGINT. Services are left running on exit.
    pub fn run(&mut self) -> Exit {
        info!(
            "supervising {} service(s), polling every {}; child subreaper: {}; pidfd: {}",
            self.svcs.len(),
            Dur(self.interval),
            if self.facilities.subreaper {
                "yes"
            } else {
                "no"
            },
            if self.facilities.pidfd { "yes" } else { "no" },
        );
        if let (Some(wd), Some(cfg)) = (&self.watchdog, &self.watchdog_cfg) {
            match wd.options() {
                Some(options) => info!(
                    "watchdog: {}: \"{}\" (options: {}), timeout {} (asked {}), petting every {}",
                    wd.device.display(),
                    wd.identity,
                    Options(options),
                    Dur(wd.timeout),
                    Dur(cfg.timeout),
                    Dur(cfg.pet_every)
                ),
                None => warn!(
                    "watchdog: {} is not a watchdog device (no watchdog ioctls): keepalives are written to it as bytes; petting every {}",
                    wd.device.display(),
                    Dur(cfg.pet_every)
                ),
            }
            if wd.options().is_some() {
                let boot = BootStatus(wd.boot_status);
                if wd.boot_status & crate::watchdog::WDIOF_CARDRESET != 0 {
                    warn!("watchdog: boot status: {boot}");
                } else {
                    info!("watchdog: boot status: {boot}");
                }
            }
            if let Some(note) = &wd.note {
                warn!("watchdog: {note}");
            }
            if cfg.pet_every > wd.timeout / 3 {
                warn!(
                    "watchdog: pet_every {} is not well below the driver's timeout {}: petting every {} instead",
                    Dur(cfg.pet_every),
                    Dur(wd.timeout),
                    Dur(wd.timeout / 3)
                );
            }
        }
        let started = format!(
            "custos {} started with {} service(s)",
            env!("CARGO_PKG_VERSION"),
            self.svcs.len()
        );
        self.note(Kind::CustosStart, "", &started);
        if let Some(wd) = &self.watchdog {
            if wd.boot_status & crate::watchdog::WDIOF_CARDRESET != 0 {
                let text = BootStatus(wd.boot_status).to_string();
                self.note(Kind::WatchdogReset, "", &text);
                self.hooks.raise(
                    "watchdog-reset",
                    None,
                    &text,
                    None,
                    crate::clock::boottime(),
                );
            }
        }
        self.begin_boot();
        if let Some(c) = &self.control {
            info!("control: listening on {}", c.path.display());
        }
        let exit = loop {
            if let Some(e) = self.pass() {
                break e;
            }
        };
        self.close_watchdog();
        self.boots.end(End::Orderly);
        let Exit::Signal(sig) = exit;
        self.note(
            Kind::CustosStop,
            "",
            &format!("custos stopped by {}", SigName(sig)),
        );
        self.finish_writes();
        exit
    }

    /// Before an exit or a reboot: both writer threads get what changed, and custos waits for
    /// both together at most FINAL_WRITE_WAIT.
    fn finish_writes(&mut self) {
        let start = self.now();
        self.boots.hand_over_now(start);
        if let Some(w) = self.record.finish(start, record::FINAL_WRITE_WAIT) {
            warn!("{w}");
        }
        let left = record::FINAL_WRITE_WAIT.saturating_sub(self.now().saturating_sub(start));
        if let Some(w) = self.boots.finish(self.now(), left) {
            warn!("{w}");
        }
    }

    /// Settles how the previous boot ended, adds this one to the boots in state_dir, and asks
    /// the boot-loop guard. With or without a watchdog: the guard counts boots.
    fn begin_boot(&mut self) {
        let cardreset = self
            .watchdog
            .as_ref()
            .is_some_and(|wd| wd.boot_status & crate::watchdog::WDIOF_CARDRESET != 0);
        let id = self.record.boot_id().to_string();
        let shown = if id.is_empty() {
            "(no boot id)"
        } else {
            id.as_str()
        };
        match self.boots.begin(&id, crate::clock::wall_now(), cardreset) {
            Begin::Again => info!("boot: custos restarted within this boot ({shown})"),
            Begin::New(None) => info!("boot: this is boot {shown}; no earlier boot is known"),
            Begin::New(Some(prev)) => {
                let line = format!(
                    "boot: this is boot {shown}; the previous boot ({}) {}{}",
                    prev.id,
                    prev.end,
                    if prev.good && prev.end != End::Orderly {
                        ", after it had counted as good"
                    } else {
                        ""
                    }
                );
                if prev.bad() {
                    warn!("{line}");
                } else {
                    info!("{line}");
                }
            }
        }
        if self.boots.current().is_some_and(|b| b.good) {
            // Found good by an earlier custos in this boot.
            self.good_at = None;
        }
        if let (Some(v), Gate::Pending { .. }) =
            (self.boots.current().and_then(|b| b.gate), &self.gate)
        {
            info!(
                "boot health: {} already in this boot (an earlier custos reached the verdict): its program is not run again",
                v.as_str()
            );
            self.gate = Gate::Done {
                verdict: v,
                outcome: "reached by an earlier custos in this boot".to_string(),
            };
        }
        let v = self.boots.verdict(&self.boot_cfg);
        self.guard = Some(v);
        let cfg = &self.boot_cfg;
        if v.tripped {
            self.degraded = true;
            self.boots.set_degraded();
            error!(
                "boot-loop guard: {} recent boot(s) ended badly (a reboot custos requested, or a watchdog reset or an unexplained end within good_after {}), more than max_resets = {}: DEGRADED MODE: on_exhausted = \"reboot\" will not reboot this boot; services are still supervised; clears after {} good boot(s) in a row",
                v.bad,
                Dur(cfg.good_after),
                cfg.max_resets,
                cfg.clear_after
            );
        } else {
            info!(
                "boot-loop guard: clear: {} recent boot(s) ended badly (trips above max_resets = {})",
                v.bad, cfg.max_resets
            );
        }
        self.flush_boots(self.now());
    }

    fn flush_boots(&mut self, now: Mono) {
        if let Some(w) = self.boots.flush(now) {
            warn!("{w}");
        }
    }

    /// Records an event (deaths, actions: what `custos events` and `custos why` show, across
    /// reboots) and sends it to `events --follow` clients.
    fn note(&mut self, kind: Kind, service: &str, text: &str) {
        let now = self.now();
        let entry = record::Entry::new(
            crate::clock::wall_now(),
            self.record.boot_id(),
            service,
            kind,
            text,
        );
        if let Some(c) = self.control.as_mut().filter(|c| c.has_followers()) {
            c.broadcast(&entry.to_string(), &entry_json(&entry));
        }
        self.record.push(entry, now);
    }

    /// Orderly exit: disarm the watchdog only when configured and supported; otherwise say
    /// when the board will reset.
    fn close_watchdog(&mut self) {
        let (Some(wd), Some(cfg)) = (self.watchdog.take(), &self.watchdog_cfg) else {
            return;
        };
        let timeout = wd.timeout;
        let supported = wd
            .options()
            .is_none_or(|o| o & crate::watchdog::WDIOF_MAGICCLOSE != 0);
        match wd.close(cfg.magic_close) {
            Ok(true) => info!("watchdog: magic close: disarmed"),
            Ok(false) => {
                if cfg.magic_close && !supported {
                    warn!("watchdog: magic_close is set but the driver does not support it");
                }
                warn!(
                    "watchdog: left armed: the board resets in {} unless custos is started again",
                    Dur(timeout)
                );
            }
            Err(e) => error!(
                "watchdog: magic close failed ({e}): left armed: the board resets in {} unless custos is started again",
                Dur(timeout)
            ),
        }
    }

    /// Pets the watchdog when it is due and this pass of the loop was healthy (Rule 4: only
    /// here, never from a thread or a timer).
    fn pet(&mut self, pass_started: Mono, now: Mono) {
        let (Some(wd), Some(cfg)) = (&mut self.watchdog, &self.watchdog_cfg) else {
            return;
        };
        if self.reboot_at.is_some() || now < self.next_pet {
            return;
        }
        // The driver may have chosen a shorter timeout than asked: never pet slower than a third
        // of the timeout in force.
        let every = cfg.pet_every.min(wd.timeout / 3);
        let work = now.saturating_sub(pass_started);
        if work > every {
            warn!(
                "watchdog: not petting: this pass of the loop took {}, longer than pet_every {}",
                Dur(work),
                Dur(every)
            );
            self.next_pet = now;
            return;
        }
        match wd.keepalive() {
            Ok(()) if wd.pets == 1 => {
                self.last_pet = Some(now);
                info!("watchdog: first keepalive")
            }
            Ok(()) => {
                self.last_pet = Some(now);
                debug!("watchdog: keepalive")
            }
            Err(e) => error!("watchdog: keepalive failed: {e}"),
        }
        self.next_pet = now + every;
    }

    /// `on_exhausted = "reboot"`: stop petting and let the watchdog reset the board; reboot(2)
    /// ourselves if it has not within twice its timeout (or at once without a watchdog).
    fn request_reboot(&mut self, name: &str, now: Mono) {
        if self.reboot_at.is_some() {
            return;
        }
        if self.degraded {
            error!("{name}: on_exhausted = \"reboot\": not rebooting: the boot-loop guard is on (degraded mode)");
            return;
        }
        self.boots.end(End::Reboot);
        self.good_at = None;
        self.flush_boots(now);
        // SAFETY: sync(2) takes no arguments.
        unsafe { libc::sync() };
        match &self.watchdog {
            Some(wd) => {
                error!(
                    "{name}: on_exhausted = \"reboot\": synced; no longer petting the watchdog: the board resets within {}",
                    Dur(wd.timeout)
                );
                self.reboot_at = Some(now + wd.timeout * 2);
            }
            None => {
                error!(
                    "{name}: on_exhausted = \"reboot\": synced; rebooting (no watchdog configured)"
                );
                self.reboot_at = Some(now);
            }
        }
    }

    fn reboot_if_due(&mut self, now: Mono) {
        if self.reboot_at.is_some_and(|t| now >= t) {
            error!("reboot: the board has not been reset: calling reboot(2)");
            // Petting has stopped on purpose: the loop may wait, bounded, for the record.
            self.finish_writes();
            // SAFETY: sync(2) and reboot(2) take no pointers.
            unsafe { libc::sync() };
            if unsafe { libc::reboot(libc::RB_AUTOBOOT) } < 0 {
                error!("reboot(2) failed: {}", io::Error::last_os_error());
            }
            self.reboot_at = None;
        }
    }

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

    /// Times out checks in flight and starts those that are due, for a running service.
    fn run_checks(&mut self, i: usize, now: Mono) {
        for j in 0..self.svcs[i].checks.len() {
            let s = &mut self.svcs[i];
            let Some(pin) = s.st.pin() else { return };
            if !matches!(s.st.phase, Phase::Running { .. }) {
                return;
            }
            let Some(cfg) = s.cfg.checks.get(j) else {
                return;
            };
            let c = &mut s.checks[j];
            let mut killed = None;
            let result = match c.inflight {
                InFlight::Idle if now >= c.next_due => {
                    let out = &s.out;
                    let name = s.cfg.name.as_str();
                    c.begin(cfg, pin.pid, now, |argv| scripts::spawn(argv, name, out))
                }
                InFlight::Net(ref p) if now >= p.deadline => {
                    c.inflight = InFlight::Idle;
                    Some(Err(Failure::Timeout(cfg.timeout)))
                }
                InFlight::Program { pid, deadline } if now >= deadline => {
                    c.inflight = InFlight::Idle;
                    let _ = scripts::kill_group(pid);
                    killed = Some(pid);
                    Some(Err(Failure::Timeout(cfg.timeout)))
                }
                _ => None,
            };
            if let Some(pid) = killed {
                s.forget_killed(pid);
            }
            if let Some(r) = result {
                self.finish_check(i, j, r, now);
            }
        }
    }

    /// A check finished: count it, log it, and act when it has failed often enough.
    fn finish_check(&mut self, i: usize, j: usize, r: Result<(), Failure>, now: Mono) {
        let s = &mut self.svcs[i];
        let Some(cfg) = s.cfg.checks.get(j) else {
            return;
        };
        let Some(c) = s.checks.get_mut(j) else { return };
        c.inflight = InFlight::Idle;
        if s.st.pin().is_none() {
            return; // the process went away meanwhile; a result about it is moot
        }
        let name = s.cfg.name.as_str();
        if r.is_err() {
            c.failed_total = c.failed_total.saturating_add(1);
        }
        let verdict = c.tracker.result(cfg, r, now);
        match verdict {
            Verdict::Quiet => {}
            Verdict::Recovered { after } => {
                info!("{name}: check {cfg} passed again after {after} failure(s)")
            }
            Verdict::InGrace { failure } => info!(
                "{name}: check {cfg} failed within the grace after a start (not counted yet): {failure}"
            ),
            Verdict::Counted { n, of, failure } => {
                warn!("{name}: check {cfg} failed ({n}/{of}): {failure}")
            }
            Verdict::Act { n, failure } => {
                warn!("{name}: check {cfg} failed ({n}/{}): {failure}", cfg.failures);
                if cfg.action == CheckAction::Log {
                    info!("{name}: check action is \"log\": nothing else done");
                    return;
                }
                let Some(pin) = s.st.pin() else { return };
                if let Some(tracer) = procs::tracer_pid(pin.pid).filter(|&t| t != 0) {
                    if !s.traced_said {
                        s.traced_said = true;
                        warn!(
                            "{name}: pid {} is being traced by pid {tracer} (a debugger is attached): \
                             checks will not restart or signal it while it is traced",
                            pin.pid
                        );
                    }
                    return;
                }
                s.traced_said = false;
                let why = RestartWhy::CheckFailed {
                    check: j as u8,
                    failures: n,
                };
                self.feed(i, Event::RestartRequested(why), now);
            }
        }
    }

    /// Checks a pinned process, or looks for the service's process, and tells the core.
    fn probe(&mut self, i: usize, now: Mono) {
        let s = &self.svcs[i];
        if let Some(pin) = s.st.pin() {
            match procs::check_pin(pin) {
                PinState::Alive => {}
                PinState::Unknown => debug!(
                    "{}: /proc/{} unreadable for now; pin kept",
                    s.cfg.name, pin.pid
                ),
                PinState::Zombie => self.pin_exited(i, pin, now),
                PinState::Gone => self.feed(
                    i,
                    Event::Observed(Observation::Absent(Absent::PinGone)),
                    now,
                ),
            }
        } else if s.st.wants_probe() {
            let obs = match &s.cfg.identify {
                Identify::Pidfile(p) => {
                    let taken = self.taken(i);
                    let ctx = procs::Context {
                        subreaper: self.facilities.subreaper,
                        trusted_since: self.trusted_since,
                        ambiguous_before: self.ambiguous_before,
                        taken: &taken,
                    };
                    let (obs, stamp) = procs::probe_pidfile(p, &s.known, &ctx, now);
                    self.svcs[i].last_read = stamp;
                    obs
                }
                Identify::Exe { exe, args } => {
                    procs::probe_exe(exe, args.as_deref(), &self.taken(i))
                }
            };
            self.svcs[i].watch_pidfile(&obs);
            if self.inherited_start_runs(i, &obs, now) {
                return;
            }
            self.feed(i, Event::Observed(obs), now);
        }
    }

    /// Whether service `i` must wait for a start script an earlier custos ran: while it runs,
    /// "not running" means "being started", and a start now would make a second copy. It ends
    /// when the script exits (the next pass looks for what it started) or when it outlives
    /// start_timeout since its spawn: its process group is then killed, as custos kills its own
    /// hung start scripts (the script is verified by PID and start time, and leads its group).
    fn inherited_start_runs(&mut self, i: usize, obs: &Observation, now: Mono) -> bool {
        let s = &mut self.svcs[i];
        let Some(st) = s.inherited_start else {
            return false;
        };
        let name = s.cfg.name.as_str();
        if !matches!(obs, Observation::Absent(_)) {
            // Something is there: judged as usual.
            s.inherited_start = None;
            return false;
        }
        match procs::check_pin(procs::pin(st.pid, st.start_ticks)) {
            PinState::Alive | PinState::Unknown => {
                if now < st.spawned_at.saturating_add(s.cfg.start_timeout) {
                    return true;
                }
                // (Never init or custos: refused when the pins file was read, and the start
                // time checked below keeps it that same process.)
                // SAFETY: getpgid(2) on a verified PID; no memory is involved.
                let leads = unsafe { libc::getpgid(st.pid) } == st.pid;
                if leads && procs::check_pin(procs::pin(st.pid, st.start_ticks)) == PinState::Alive
                {
                    warn!(
                        "{name}: killing the process group of the start script an earlier custos ran (pid {}): still running after {}",
                        st.pid,
                        Dur(s.cfg.start_timeout)
                    );
                    // Not custos's child (the earlier custos was its parent), so not
                    // scripts::kill_group, which signals only a group whose leader custos has
                    // not reaped and sends nothing otherwise. The leader was verified alive by
                    // PID and start time just now, and a live leader's PID cannot name another
                    // group.
                    // SAFETY: kill(2) with a negative pid signals a process group.
                    if unsafe { libc::kill(-st.pid, libc::SIGKILL) } < 0 {
                        let e = io::Error::last_os_error();
                        warn!("{name}: kill of process group {} failed: {e}", st.pid);
                    }
                }
            }
            PinState::Zombie | PinState::Gone => {
                info!(
                    "{name}: the start script an earlier custos ran (pid {}) has ended: looking for what it started",
                    st.pid
                );
            }
        }
        s.inherited_start = None;
        self.save_pins();
        // This pass's look may predate the script's end: look again next pass.
        true
    }

    /// PIDs custos runs for something other than service `i`: the other services' pins, and
    /// every script and check program.
    fn taken(&self, i: usize) -> heapless::Vec<i32, { MAX_SERVICES * (3 + MAX_CHECKS + 8) + 1 }> {
        let mut v = heapless::Vec::new();
        if let Some(k) = self.keeper.pid() {
            let _ = v.push(k);
        }
        for (k, s) in self.svcs.iter().enumerate() {
            if k != i {
                if let Some(p) = s.st.pin() {
                    let _ = v.push(p.pid);
                }
            }
            if let Some((p, _)) = s.script {
                let _ = v.push(p);
            }
            for p in &s.killed {
                let _ = v.push(*p);
            }
            for c in &s.checks {
                if let InFlight::Program { pid, .. } = c.inflight {
                    let _ = v.push(pid);
                }
            }
        }
        v
    }

    /// The pinned process's pidfd is readable: it exited.
    fn pidfd_ready(&mut self, i: usize, now: Mono) {
        let Some(pin) = self.svcs[i].st.pin() else {
            self.svcs[i].pidfd = None;
            return;
        };
        self.pin_exited(i, pin, now);
        // A pidfd stays readable once its process has exited. If the pin survived (no exit
        // could be confirmed), polling that pidfd again would return at once, every pass: the
        // loop would spin. Watch the pin through /proc on every tick instead.
        let s = &mut self.svcs[i];
        if s.pidfd.is_some() && s.st.pin() == Some(pin) {
            s.pidfd = None;
            warn!(
                "{}: pid {}'s pidfd says it exited, but no exit can be confirmed: watching it through /proc",
                s.cfg.name, pin.pid
            );
        }
    }

    /// The pinned process seems to have exited: reap it, and tell the core how it died.
    fn pin_exited(&mut self, i: usize, pin: Pin, now: Mono) {
        if let Some(cause) = self.reap_pin(i, pin) {
            self.feed(
                i,
                Event::Died {
                    pid: pin.pid,
                    cause,
                },
                now,
            );
        }
    }

    /// Reaps the pinned process if it has exited: its cause when it was our child, "not our
    /// child" when another parent got it. `None` when it has not exited after all (a spurious
    /// wake-up): a live process is never reported dead.
    fn reap_pin(&mut self, i: usize, pin: Pin) -> Option<Cause> {
        if let Some(fd) = &self.svcs[i].pidfd {
            // waitid(P_PIDFD) names exactly this process, never a reuser of its PID.
            // SAFETY: siginfo_t is plain data; waitid fills it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid pidfd, valid siginfo pointer.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    fd.as_fd().as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG,
                )
            };
            // SAFETY: after a successful waitid, si_pid/si_status are the fields it set.
            if rc == 0 && unsafe { info.si_pid() } == pin.pid {
                let status = unsafe { info.si_status() };
                return Some(match info.si_code {
                    libc::CLD_EXITED => Cause::Exited(status),
                    libc::CLD_DUMPED => Cause::Killed {
                        signal: status,
                        core: true,
                    },
                    _ => Cause::Killed {
                        signal: status,
                        core: false,
                    },
                });
            }
            if rc == 0 {
                // Our child, and waitid has no exit for it: alive (a spurious wake-up), or a
                // zombie it cannot see because a tracer holds it.
                return self.held_by_tracer(i, pin);
            }
            // ECHILD: not our child. EINVAL: Linux 5.3 has pidfd_open but not P_PIDFD.
        }
        // By PID, which is safe only while the process is still there (alive or a zombie: its
        // PID cannot be reused until it is reaped).
        match procs::check_pin(pin) {
            PinState::Alive | PinState::Unknown => None,
            PinState::Gone => Some(Cause::NotOurChild),
            PinState::Zombie => {
                let mut status = 0;
                // SAFETY: waitpid with a valid status pointer, on a zombie we verified.
                let rc = unsafe { libc::waitpid(pin.pid, &mut status, libc::WNOHANG) };
                if rc == pin.pid {
                    Some(cause_of(status))
                } else if rc == 0 {
                    // Our child, a zombie, and not collectable: a tracer holds it.
                    self.held_by_tracer(i, pin)
                } else {
                    Some(Cause::NotOurChild)
                }
            }
        }
    }

    /// The pinned process is our child but wait says it has not exited. A traced process's
    /// zombie is visible only to its tracer until that one collects it or detaches, which a
    /// stopped or careless tracer may never do: the process is dead all the same, so its death
    /// is reported now, with the exit status read from /proc/PID/stat (the tracer reaps it, or
    /// custos does later as an orphan). `None` when it is not a traced zombie: a live process
    /// (a thread-group leader that exited while its other threads run on shows as a zombie
    /// too) is never reported dead.
    fn held_by_tracer(&self, i: usize, pin: Pin) -> Option<Cause> {
        if procs::check_pin(pin) != PinState::Zombie {
            return None;
        }
        let tracer = procs::tracer_pid(pin.pid).filter(|&t| t != 0)?;
        let status = procs::exit_status(pin.pid);
        info!(
            "{}: pid {} has exited, but its tracer (pid {tracer}) has not collected it{}",
            self.svcs[i].cfg.name,
            pin.pid,
            if status.is_some() {
                ": exit status read from /proc"
            } else {
                ""
            }
        );
        Some(status.map_or(Cause::NotOurChild, cause_of))
    }

    /// Reaps every exited child: pinned services, scripts, and orphans adopted as subreaper.
    fn reap(&mut self, now: Mono) {
        loop {
            let mut batch: heapless::Vec<(i32, Cause), REAP_BATCH> = heapless::Vec::new();
            while !batch.is_full() {
                let mut status = 0;
                // SAFETY: waitpid with a valid status pointer.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid > 0 {
                    let _ = batch.push((pid, cause_of(status)));
                    continue;
                }
                if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break; // 0: none exited yet; ECHILD: no children
            }
            let full = batch.is_full();
            // Deaths of pinned processes first, so a stop script's exit finds them settled.
            let mut others: heapless::Vec<(i32, Cause), REAP_BATCH> = heapless::Vec::new();
            for &(pid, cause) in &batch {
                match self.keeper.reaped(pid) {
                    Some(true) => {
                        warn!("output keeper (pid {pid}) {cause}: starting another");
                        continue;
                    }
                    Some(false) => {
                        debug!("replaced output keeper (pid {pid}) reaped: {cause}");
                        continue;
                    }
                    None => {}
                }
                if matches!(self.gate, Gate::Running { pid: p, .. } if p == pid) {
                    self.gate_exited(cause, now);
                    continue;
                }
                if self.hooks.reaped(pid, cause, now) {
                    continue;
                }
                // A child custos spawned (script, check program, killed script) owns its PID:
                // a pinned non-child that died may have had the same PID before it was reused.
                let ours = self.svcs.iter().any(|s| {
                    s.script.is_some_and(|(p, _)| p == pid)
                        || s.killed.contains(&pid)
                        || s.checks.iter().any(
                            |c| matches!(c.inflight, InFlight::Program { pid: p, .. } if p == pid),
                        )
                });
                let pinned = if ours {
                    None
                } else {
                    self.svcs
                        .iter()
                        .position(|s| s.st.pin().is_some_and(|p| p.pid == pid))
                };
                match pinned {
                    Some(i) => self.feed(i, Event::Died { pid, cause }, now),
                    None => {
                        let _ = others.push((pid, cause));
                    }
                }
            }
            for &(pid, cause) in &others {
                self.script_exited(pid, cause, now);
            }
            if !full {
                break;
            }
        }
    }

    fn script_exited(&mut self, pid: i32, cause: Cause, now: Mono) {
        for i in 0..self.svcs.len() {
            let s = &mut self.svcs[i];
            if let Some((spid, kind)) = s.script {
                if spid == pid {
                    s.script = None;
                    let name = &s.cfg.name;
                    s.out.end_of_script(now, |line| info!("{name}: | {line}"));
                    let what = if kind == Script::Start {
                        "start"
                    } else {
                        "stop"
                    };
                    if cause == Cause::Exited(0) {
                        debug!("{name}: {what} script (pid {pid}) exited with status 0");
                    } else {
                        warn!("{name}: {what} script (pid {pid}) {cause}");
                    }
                    self.feed(
                        i,
                        Event::ScriptExited {
                            script: kind,
                            cause,
                        },
                        now,
                    );
                    return;
                }
            }
            let program = s
                .checks
                .iter()
                .position(|c| matches!(c.inflight, InFlight::Program { pid: p, .. } if p == pid));
            if let Some(j) = program {
                let r = if cause == Cause::Exited(0) {
                    Ok(())
                } else {
                    Err(Failure::Program(cause))
                };
                self.finish_check(i, j, r, now);
                return;
            }
            if let Some(k) = s.killed.iter().position(|&p| p == pid) {
                s.killed.swap_remove(k);
                debug!("{}: killed script (pid {pid}) reaped: {cause}", s.cfg.name);
                return;
            }
            if matches!(s.st.phase, Phase::Clearing { .. }) && s.swept.iter().any(|p| p.pid == pid)
            {
                info!("{}: leftover pid {pid} {cause}", s.cfg.name);
                return;
            }
        }
        debug!("reaped orphan pid {pid}: {cause}");
    }

    /// Gives the core one event for service `i` and carries out what it decides.
    fn feed(&mut self, i: usize, event: Event, now: Mono) {
        let mut queue: heapless::Deque<Event, EVENT_QUEUE> = heapless::Deque::new();
        let _ = queue.push_back(event);
        while let Some(ev) = queue.pop_front() {
            let s = &mut self.svcs[i];
            let actions = s.st.decide(&s.policy, ev, now);
            for a in actions {
                if let Some(next) = self.apply(i, a, now) {
                    let _ = queue.push_back(next);
                }
            }
        }
    }

    /// Carries out one action; may return an event to feed back (a failed spawn).
    fn apply(&mut self, i: usize, action: Action, now: Mono) -> Option<Event> {
        let pidfd_ok = self.facilities.pidfd;
        let s = &mut self.svcs[i];
        let name = s.cfg.name.as_str();
        match action {
            Action::Start {
                attempt,
                after,
                why,
            } => {
                let text = match after {
                    Some(d) => format!(
                        "starting (attempt {attempt}, after {} backoff): {why}",
                        Dur(d)
                    ),
                    None => format!("starting (attempt {attempt}): {why}"),
                };
                info!("{name}: {text}");
                let name = name.to_string();
                self.note(Kind::Started, &name, &text);
                if matches!(
                    why,
                    crate::core::StartWhy::Died(_)
                        | crate::core::StartWhy::Failed(_)
                        | crate::core::StartWhy::Restart(_)
                ) {
                    let cause = match &why {
                        crate::core::StartWhy::Died(c) => Some(c.to_string()),
                        _ => None,
                    };
                    self.hooks
                        .raise("restarting", Some((i, &name)), &text, cause.as_deref(), now);
                }
                let s = &mut self.svcs[i];
                let name = s.cfg.name.as_str();
                // What the start script's process will be verified by: started after this
                // moment, named by a pidfile that changed since.
                let before = match &s.cfg.identify {
                    Identify::Pidfile(p) => procs::pidfile_stamp(p),
                    Identify::Exe { .. } => None,
                };
                s.known.spawned = Some(procs::Spawned {
                    at: crate::clock::boottime(),
                    before,
                });
                match scripts::spawn(&s.cfg.start, name, &s.out) {
                    Ok(pid) => {
                        debug!("{name}: `{}` runs as pid {pid}", s.cfg.start);
                        s.script = Some((pid, Script::Start));
                        // Kept in the pins file while it runs: a custos respawned meanwhile
                        // waits for it instead of starting a second copy.
                        s.start_script = procs::stat(pid).map(|st| pins::StartScript {
                            pid,
                            start_ticks: st.start_ticks,
                            spawned_at: crate::clock::boottime(),
                        });
                        self.save_pins();
                    }
                    Err(e) => {
                        error!("{name}: cannot run `{}`: {e}", s.cfg.start);
                        return Some(Event::SpawnFailed(e.raw_os_error().unwrap_or(libc::EIO)));
                    }
                }
            }
            Action::RunStop { pin, why: _ } => {
                let Some(stop) = &s.cfg.stop else {
                    return Some(Event::ScriptExited {
                        script: Script::Stop,
                        cause: Cause::Exited(127),
                    });
                };
                // A stopped process (SIGSTOP: the hang a check found) cannot act on the stop
                // script's SIGTERM until it is continued: wake the verified pin first, or the
                // script's wait-then-SIGKILL is all that can end it.
                if procs::stat(pin.pid).is_some_and(|st| st.state == 'T') {
                    info!(
                        "{name}: pid {} is stopped: sending SIGCONT so that its stop script can stop it",
                        pin.pid
                    );
                    let _ = signal_pin(s.pidfd.as_ref(), pin, libc::SIGCONT);
                }
                info!("{name}: running stop script `{stop}` for pid {}", pin.pid);
                match scripts::spawn(stop, name, &s.out) {
                    Ok(pid) => s.script = Some((pid, Script::Stop)),
                    Err(e) => {
                        error!("{name}: cannot run `{stop}`: {e}");
                        return Some(Event::ScriptExited {
                            script: Script::Stop,
                            cause: Cause::Exited(127),
                        });
                    }
                }
            }
            Action::Signal { pin, signal, why } => {
                info!(
                    "{name}: sending {} to pid {}: {why}",
                    SigName(signal),
                    pin.pid
                );
                match signal_pin(s.pidfd.as_ref(), pin, signal) {
                    Err(e) => warn!(
                        "{name}: {} not sent to pid {}: {e} (already gone)",
                        SigName(signal),
                        pin.pid
                    ),
                    // A stopped process (SIGSTOP, or a hang a check found) acts on SIGTERM only
                    // once continued: wake it so that the graceful stop can work.
                    Ok(())
                        if signal == libc::SIGTERM
                            && procs::stat(pin.pid).is_some_and(|st| st.state == 'T') =>
                    {
                        info!(
                            "{name}: pid {} is stopped: sending SIGCONT so it can act on SIGTERM",
                            pin.pid
                        );
                        let _ = signal_pin(s.pidfd.as_ref(), pin, libc::SIGCONT);
                    }
                    Ok(()) => {}
                }
            }
            Action::KillScript(kind) => {
                if let Some((pid, k)) = s.script {
                    if k == kind {
                        let (what, limit) = match kind {
                            Script::Start => ("start", s.cfg.start_timeout),
                            Script::Stop => ("stop", s.cfg.stop_timeout),
                        };
                        warn!("{name}: killing the {what} script's process group (pid {pid}): still running after {}", Dur(limit));
                        match scripts::kill_group(pid) {
                            Ok(true) => {}
                            Ok(false) => debug!("{name}: {what} script (pid {pid}) already reaped: its process group is not signalled"),
                            Err(e) => warn!("{name}: kill of process group {pid} failed: {e}"),
                        }
                        s.script = None;
                        s.forget_killed(pid);
                    }
                }
            }
            Action::Pinned { pin, adopted } => {
                if pidfd_ok {
                    s.pidfd = None;
                    match PidFd::open(pin.pid) {
                        // Re-check after opening: the pidfd must name the pinned process.
                        Ok(fd) => match procs::check_pin(pin) {
                            PinState::Alive => s.pidfd = Some(fd),
                            PinState::Unknown => {
                                warn!("{name}: cannot verify pid {} after pidfd_open; watching it by polling", pin.pid)
                            }
                            PinState::Zombie | PinState::Gone => {
                                return Some(Event::Observed(Observation::Absent(Absent::PinGone)))
                            }
                        },
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                            return Some(Event::Observed(Observation::Absent(Absent::PinGone)))
                        }
                        // Out of fds, or the like: polling /proc still watches it.
                        Err(e) => warn!(
                            "{name}: pidfd_open({}) failed: {e}; watching it by polling",
                            pin.pid
                        ),
                    }
                }
                for (c, cfg) in s.checks.iter_mut().zip(s.cfg.checks.iter()) {
                    c.reset(cfg, now);
                }
                s.traced_said = false;
                s.pidfile_kind = None;
                s.known.last = Some(procs::LastPin {
                    pid: pin.pid,
                    start_ticks: pin.start_ticks,
                    stamp: s.last_read.filter(|st| st.pid == pin.pid),
                });
                s.known.earlier_boot = None;
                let how = s.how();
                if adopted {
                    info!(
                        "{name}: found running as pid {} ({how}); watching it",
                        pin.pid
                    );
                } else {
                    info!("{name}: running as pid {} ({how})", pin.pid);
                }
                // Its group and session, for its leftovers once it is gone.
                self.svcs[i].instance = None;
                self.svcs[i].watch_instance(pin);
                self.save_pins();
            }
            Action::Sweep { pin, signal } => {
                return Some(Event::Leftovers(self.sweep(i, pin, signal, now)));
            }
            Action::Reboot => {
                let name = s.cfg.name.clone();
                self.note(Kind::Reboot, &name, "on_exhausted = \"reboot\"");
                let _ = self.record.flush_now(now);
                self.request_reboot(&name, now);
            }
            Action::Unpin => {
                s.pidfd = None;
                s.cancel_checks();
            }
            Action::Log(note) => {
                match note {
                    Note::Died { .. }
                    | Note::StartFailed(_)
                    | Note::SurvivesKill { .. }
                    | Note::StopDropped
                    | Note::LeftoversSurvive { .. }
                    | Note::LeftAlone(_)
                    | Note::Held { .. }
                    | Note::CrashLooping { .. } => {
                        warn!("{name}: {note}")
                    }
                    Note::GivenUp { .. } | Note::Ambiguous(_) => error!("{name}: {note}"),
                    _ => info!("{name}: {note}"),
                }
                let kind = match note {
                    // A stop that ended as asked is still a death, with its cause, in the record.
                    Note::Died { .. } | Note::StoppedAsAsked { .. } => Some(Kind::Died),
                    Note::StartFailed(_) => Some(Kind::StartFailed),
                    Note::GivenUp { .. } => Some(Kind::GaveUp),
                    Note::Held { .. } => Some(Kind::Held),
                    Note::Restarting(RestartWhy::OperatorStop)
                    | Note::Stopped
                    | Note::Unmonitored => Some(Kind::Stopped),
                    Note::Restarting(_) => Some(Kind::Restarted),
                    _ => None,
                };
                if let Some(kind) = kind {
                    let name = name.to_string();
                    self.note(kind, &name, &note.to_string());
                }
                let (event, cause) = match &note {
                    Note::Died { cause, .. } => (Some("died"), Some(cause.to_string())),
                    Note::StartFailed(_) => (Some("start-failed"), None),
                    Note::GivenUp { .. } => (Some("given-up"), None),
                    Note::Held { .. } => (Some("held"), None),
                    Note::CrashLooping { .. } => (Some("crash-looping"), None),
                    Note::Restarting(why @ RestartWhy::CheckFailed { .. }) => {
                        (Some("check-failed"), Some(why.to_string()))
                    }
                    Note::Restarting(RestartWhy::OperatorStop) | Note::Stopped => {
                        (Some("stopped"), None)
                    }
                    _ => (None, None),
                };
                if let Some(event) = event {
                    let name = self.svcs[i].cfg.name.clone();
                    self.hooks.raise(
                        event,
                        Some((i, &name)),
                        &note.to_string(),
                        cause.as_deref(),
                        now,
                    );
                }
                if let Note::Died { cause, .. } | Note::StoppedAsAsked { cause, .. } = note {
                    self.svcs[i].count_death(cause);
                }
            }
        }
        None
    }

    /// Finds the leftovers of service `i`'s dead instance whose main process was `pin`, and
    /// sends each `signal`, logging why and how many. Returns how many were signalled and are
    /// still there (0: nothing to wait for).
    fn sweep(&mut self, i: usize, pin: Pin, signal: i32, now: Mono) -> u16 {
        let pidfd_ok = self.facilities.pidfd;
        let taken = self.taken(i);
        let guarded: heapless::Vec<procs::Instance, MAX_SERVICES> = self
            .svcs
            .iter()
            .enumerate()
            .filter(|&(k, s)| k != i && s.st.pin().is_some())
            .filter_map(|(_, s)| s.instance)
            .collect();
        let s = &mut self.svcs[i];
        let name = s.cfg.name.clone();
        let Some(inst) = s.instance.filter(|x| x.pin == pin) else {
            s.swept.clear();
            debug!(
                "{name}: no process group recorded for pid {}: no leftovers looked for",
                pin.pid
            );
            return 0;
        };
        if signal == libc::SIGTERM {
            // The first sweep comes in the pass that saw the death: nothing started after now
            // belongs to the dead instance.
            s.died_by = now;
        }
        let found = match procs::find_leftovers(&inst, s.died_by, &taken, &guarded, &mut s.swept) {
            Ok(n) => n,
            Err(why) => {
                s.swept.clear();
                if signal == libc::SIGTERM {
                    info!(
                        "{name}: leftovers of pid {} are not looked for: {why}",
                        pin.pid
                    );
                }
                return 0;
            }
        };
        if found == 0 {
            if signal == libc::SIGTERM {
                debug!(
                    "{name}: pid {} left no processes in its process group {}",
                    pin.pid, inst.pgrp
                );
            } else {
                info!("{name}: leftovers of pid {} gone", pin.pid);
            }
            return 0;
        }
        let text = if signal == libc::SIGTERM {
            format!(
                "stopping {found} leftover process(es) of pid {} (same process group {}, started after it, custos's descendants): sending SIGTERM to pid {}",
                pin.pid,
                inst.pgrp,
                Pids(&s.swept, found)
            )
        } else {
            format!(
                "{found} leftover process(es) of pid {} still running {} after SIGTERM: sending SIGKILL to pid {}",
                pin.pid,
                Dur(s.policy.stop_timeout.min(crate::core::LEFTOVERS_GRACE)),
                Pids(&s.swept, found)
            )
        };
        warn!("{name}: {text}");
        let mut left: heapless::Vec<Pin, MAX_LEFTOVERS> = heapless::Vec::new();
        for p in s.swept.iter() {
            match signal_leftover(*p, signal, pidfd_ok) {
                Ok(true) => {
                    let _ = left.push(*p);
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(
                        "{name}: {} not sent to leftover pid {}: {e}",
                        SigName(signal),
                        p.pid
                    );
                    let _ = left.push(*p);
                }
            }
        }
        // Found but not held (over MAX_LEFTOVERS): the SIGKILL sweep finds them again.
        let more = found.saturating_sub(s.swept.len());
        let still = left.len() + more;
        s.swept = left;
        self.note(Kind::Stopped, &name, &text);
        u16::try_from(still).unwrap_or(u16::MAX)
    }

    /// A service clearing its dead instance's leftovers: tells the core once all that were
    /// signalled are gone (each is checked by PID and start time; a zombie has gone).
    fn leftovers_gone(&mut self, i: usize, now: Mono) {
        let s = &mut self.svcs[i];
        if !matches!(s.st.phase, Phase::Clearing { .. }) {
            s.swept.clear();
            return;
        }
        s.swept
            .retain(|p| matches!(procs::check_pin(*p), PinState::Alive | PinState::Unknown));
        if s.swept.is_empty() {
            if let Phase::Clearing { pin, .. } = s.st.phase {
                info!("{}: leftovers of pid {} gone", s.cfg.name, pin.pid);
            }
            self.feed(i, Event::Leftovers(0), now);
        }
    }

    /// SIGHUP: load the config again. An invalid one is rejected whole and the running config
    /// stays; unchanged services keep their pins; removed ones are left running, unwatched.
    fn reload(&mut self, now: Mono) -> Result<String, String> {
        info!("reloading {}", self.config_path.display());
        let new = match config::load(&self.config_path) {
            Ok(c) => {
                for w in c.warning_lines(&self.config_path) {
                    warn!("{w}");
                }
                c
            }
            Err(errors) => {
                let text = errors.to_string();
                for line in text.lines() {
                    error!("{line}");
                }
                error!("reload rejected: the running config stays in force");
                return Err(format!(
                    "{text}\nreload rejected: the running config stays in force"
                ));
            }
        };
        let mut old = std::mem::take(&mut self.svcs);
        let mut table: Vec<Svc> = Vec::with_capacity(MAX_SERVICES);
        let mut pipes_changed = false;
        for cfg in new.services {
            let svc = match old.iter().position(|s| s.cfg.name == cfg.name) {
                Some(k) => {
                    let mut s = old.swap_remove(k);
                    if s.cfg != cfg {
                        info!("{}: config changed", cfg.name);
                        if s.cfg.identify != cfg.identify {
                            s.st.forget_identity();
                            s.pidfd = None;
                            s.known = procs::Known::default();
                            s.last_read = None;
                        }
                        s.policy = policy_of(&cfg);
                        s.cancel_checks();
                        s.cfg = cfg;
                        s = s.with_checks();
                        if s.st.pin().is_some() {
                            for (c, cc) in s.checks.iter_mut().zip(s.cfg.checks.iter()) {
                                c.reset(cc, now);
                            }
                        }
                    }
                    if s.st.phase == Phase::GivenUp {
                        info!(
                            "{}: given up before; the reload gives it a fresh start",
                            s.cfg.name
                        );
                        s.st = ServiceState::default();
                    }
                    s
                }
                None => {
                    info!("{}: new service", cfg.name);
                    pipes_changed = true;
                    match Svc::new(cfg) {
                        Ok(s) => s,
                        Err(e) => {
                            error!("cannot set up a new service: {e}");
                            continue;
                        }
                    }
                }
            };
            if table.len() == MAX_SERVICES {
                break; // checked at load
            }
            table.push(svc);
        }
        for s in old.drain(..) {
            info!(
                "{}: removed from the config: no longer supervised; left running",
                s.cfg.name
            );
            // Its daemon may still write to the stdout its start script gave it.
            if let Some(old) = self.keeper.retire(s.out.into_read(), &s.cfg.name) {
                warn!(
                    "{old}: removed earlier; its output pipe is let go ({} removed services' pipes are kept): a daemon of it that still writes to its stdout may die of SIGPIPE",
                    crate::keeper::MAX_RETIRED
                );
            }
            pipes_changed = true;
        }
        let (old, new_s) = (&self.settings, &new.supervisor);
        if old.log != new_s.log
            || old.control_socket != new_s.control_socket
            || old.control_group != new_s.control_group
            || old.state_dir != new_s.state_dir
        {
            warn!("[supervisor] log, control_socket, control_group and state_dir take effect when custos is restarted");
        }
        if new.boot != self.boot_cfg {
            warn!("boot: [boot] changed: the new settings take effect when custos is restarted");
        }
        if new.watchdog != self.watchdog_cfg {
            warn!("watchdog: [watchdog] changed: the new settings take effect when custos is restarted");
        }
        if new.hooks != self.hooks.config() {
            warn!("hooks: [[hook]] changed: the new hooks take effect when custos is restarted");
        }
        if new.metrics != self.metrics_cfg {
            warn!(
                "metrics: [metrics] changed: the new settings take effect when custos is restarted"
            );
        }
        self.svcs = table;
        self.hooks.services_changed();
        for s in &mut self.svcs {
            s.st.ending = self.ending;
        }
        self.table_changed = true;
        if pipes_changed {
            self.renew_keeper(now);
        }
        self.interval = new.supervisor.interval;
        self.next_tick = now;
        let msg = format!("reload done: {} service(s)", self.svcs.len());
        info!("{msg}");
        self.note(Kind::Reload, "", &msg);
        Ok(msg)
    }
}

/// A step of the wall clock (ns, signed), in words: "forward by 8760h", "back by 1.5s".
struct StepText(i128);

impl std::fmt::Display for StepText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let way = if self.0 < 0 { "back" } else { "forward" };
        let d = Duration::from_nanos(u64::try_from(self.0.unsigned_abs()).unwrap_or(u64::MAX));
        write!(f, "{way} by {}", Dur(d))
    }
}

/// One recorded event as a JSON object.
fn entry_json(e: &record::Entry) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"time\":");
    crate::text::json_str(&mut s, &record::Utc(e.time).to_string());
    s.push_str(",\"boot\":");
    crate::text::json_str(&mut s, &e.boot);
    s.push_str(",\"service\":");
    crate::text::json_str(&mut s, &e.service);
    s.push_str(",\"kind\":");
    crate::text::json_str(&mut s, e.kind.as_str());
    s.push_str(",\"text\":");
    crate::text::json_str(&mut s, &e.text);
    s.push('}');
    s
}

/// A service's state in one word for `custos status` and `why`: its phase, or "crash-looping"
/// while failures in a row keep it at backoff_max.
fn state_word(s: &Svc) -> &'static str {
    if crash_looping(s) {
        "crash-looping"
    } else {
        phase_word(&s.st.phase)
    }
}

/// Crash-looping and still being tried (not given up, stopped or unmonitored).
fn crash_looping(s: &Svc) -> bool {
    matches!(
        s.st.phase,
        Phase::Waiting { .. } | Phase::Starting { .. } | Phase::Running { .. }
    ) && s.st.crash_looping(&s.policy.restart)
}

/// What `status` and `why` add for a crash-looping service: how long, and how it ends.
fn crash_loop_words(s: &Svc) -> String {
    let r = &s.policy.restart;
    let end = match r.max_restarts {
        None => "never gives up".to_string(),
        Some(n) => format!("gives up after {n} restarts within {}", Dur(r.window)),
    };
    format!(
        "{} failures in a row, none ran {}; retried every {}; {end}",
        s.st.fails,
        Dur(r.stable_after),
        Dur(r.backoff_max)
    )
}

/// The `"schema"` of `status --json` (schema/status.schema.json): the number goes up when a
/// field changes meaning or goes away, not when one is added.
const STATUS_SCHEMA: &str = "custos.status/1";
/// The `"schema"` of `events --json` and `why --json` (schema/events.schema.json).
const EVENTS_SCHEMA: &str = "custos.events/1";

/// Every word `state_word` says, for the metrics.
const STATE_WORDS: [&str; 11] = [
    "unknown",
    "running",
    "waiting",
    "starting",
    "stopping",
    "clearing",
    "given-up",
    "ambiguous",
    "held",
    "unmonitored",
    "crash-looping",
];

/// A phase in one word, for `custos status`.
fn phase_word(p: &Phase) -> &'static str {
    match p {
        Phase::Unknown => "unknown",
        Phase::Running { .. } => "running",
        Phase::Waiting { .. } => "waiting",
        Phase::Starting { .. } => "starting",
        Phase::Stopping { .. } => "stopping",
        Phase::Clearing { .. } => "clearing",
        Phase::GivenUp => "given-up",
        Phase::Ambiguous(_) => "ambiguous",
        Phase::Held { .. } => "held",
        Phase::Unmonitored => "unmonitored",
    }
}

impl Supervisor {
    /// Answers one control request.
    fn request(&mut self, k: usize, req: Request, now: Mono) {
        use crate::control::Command;
        let cmd = req.cmd.name();
        let name = req.name.as_str();
        let reply = match req.cmd {
            Command::Service(op) => match self.svcs.iter().position(|s| s.cfg.name == name) {
                None => control::reply_text(false, &format!("no service named `{name}`")),
                Some(i) => {
                    info!("control: {cmd} {name}: asked by the operator");
                    self.feed(i, Event::Operator(op), now);
                    let st = &self.svcs[i].st;
                    control::reply_text(
                        true,
                        &format!("{name}: {cmd}: now {}", phase_word(&st.phase)),
                    )
                }
            },
            Command::Status => {
                if req.prometheus {
                    control::reply_text(true, self.prometheus(now).trim_end())
                } else if req.json {
                    self.status_json(now)
                } else {
                    control::reply_text(true, &self.status_text(now))
                }
            }
            Command::Shutdown => {
                // Init runs the shutdown sequence before its SIGTERM reaches custos, and that
                // sequence may unmount state_dir: the end is written now. The sequence also
                // stops the services (rcK): from now on custos logs their deaths but starts
                // and restarts nothing; it goes on petting until it is stopped.
                info!("control: shutdown: this boot is ending in order; custos starts and restarts nothing from now on");
                self.ending = true;
                for s in &mut self.svcs {
                    s.st.ending = true;
                }
                self.boots.end(End::Orderly);
                self.good_at = None;
                self.flush_boots(now);
                control::reply_text(
                    true,
                    "boot: this boot is recorded as ending in order; custos starts and restarts nothing from now on, and goes on petting the watchdog until it is stopped",
                )
            }
            Command::Reload => match self.reload(now) {
                Ok(msg) => control::reply_text(true, &msg),
                Err(msg) => control::reply_text(false, &msg),
            },
            Command::Events | Command::Why => {
                let for_one = req.cmd == Command::Why;
                if for_one
                    && !self.svcs.iter().any(|s| s.cfg.name == name)
                    && self.record.for_service(name).next().is_none()
                {
                    control::reply_text(
                        false,
                        &format!("no service named `{name}` and no record of one"),
                    )
                } else {
                    let entries: Vec<&record::Entry> = if for_one {
                        let mut v: Vec<_> = self.record.for_service(name).collect();
                        v.reverse();
                        v
                    } else {
                        self.record.iter().collect()
                    };
                    let looping = self
                        .svcs
                        .iter()
                        .find(|s| for_one && s.cfg.name == name && crash_looping(s));
                    if req.json {
                        let mut s = String::from("{\"ok\":true,");
                        if let Some(v) = looping {
                            s.push_str("\"now\":");
                            crate::text::json_str(
                                &mut s,
                                &format!("crash-looping: {}", crash_loop_words(v)),
                            );
                            s.push(',');
                        }
                        s.push_str("\"events\":[");
                        for (n, e) in entries.iter().enumerate() {
                            if n > 0 {
                                s.push(',');
                            }
                            s.push_str(&entry_json(e));
                        }
                        s.push_str("],\"schema\":\"");
                        s.push_str(EVENTS_SCHEMA);
                        s.push_str("\"}\n");
                        s
                    } else {
                        let mut t = String::new();
                        if let Some(v) = looping {
                            use std::fmt::Write as _;
                            let _ =
                                writeln!(t, "{name}: now crash-looping: {}", crash_loop_words(v));
                        }
                        let boot = self.record.boot_id().to_string();
                        for e in &entries {
                            use std::fmt::Write as _;
                            let before = if !boot.is_empty() && e.boot.as_str() != boot {
                                " (earlier boot)"
                            } else {
                                ""
                            };
                            let _ = writeln!(t, "{e}{before}");
                        }
                        if entries.is_empty() {
                            t.push_str("no events recorded\n");
                        }
                        if for_one && self.degraded {
                            t.push_str(&self.guard_text());
                        }
                        control::reply_text(true, t.trim_end())
                    }
                }
            }
        };
        let follow = req.cmd == Command::Events && req.follow;
        if let Some(c) = &mut self.control {
            c.reply(k, reply, !follow);
            if follow {
                c.follow(k, req.json);
            }
        }
    }

    fn status_text(&self, now: Mono) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        for s in &self.svcs {
            let _ = write!(t, "{:<20} {:<11}", s.cfg.name, state_word(s));
            if let Some(pin) = s.st.pin() {
                let _ = write!(
                    t,
                    " pid {} up {}",
                    pin.pid,
                    Dur(now.saturating_sub(pin.started))
                );
            }
            if let Phase::Waiting { until, why } = s.st.phase {
                let _ = write!(
                    t,
                    " next start in {} ({why})",
                    Dur(until.saturating_sub(now))
                );
            }
            let _ = write!(t, " restarts {}", s.st.total_restarts);
            if let Some(c) = s.st.last_death {
                let _ = write!(t, " last death: {c}");
            }
            if let Phase::Held { pin, doubt } = s.st.phase {
                let _ = write!(
                    t,
                    "\n    held: pid {} cannot be verified: {doubt}; `custos start {name}` if it is not the service, `custos adopt {name}` if it is",
                    pin.pid,
                    name = s.cfg.name
                );
            }
            t.push('\n');
            if crash_looping(s) {
                let _ = writeln!(t, "    crash-looping: {}", crash_loop_words(s));
            }
            if let Some(problem) = s.pidfile_problem() {
                let _ = writeln!(t, "    {problem}");
            }
            for (c, cfg) in s.checks.iter().zip(s.cfg.checks.iter()) {
                let state = if c.tracker.failures > 0 {
                    format!("failing ({} in a row)", c.tracker.failures)
                } else if c.tracker.passed {
                    "passing".to_string()
                } else {
                    "not passed yet".to_string()
                };
                let _ = writeln!(t, "    check {cfg}: {state}");
            }
        }
        match (&self.watchdog, &self.watchdog_cfg) {
            (Some(wd), Some(cfg)) => {
                let _ = writeln!(
                    t,
                    "watchdog {}: timeout {}, petted every {}, {} keepalives, boot status: {}",
                    wd.device.display(),
                    Dur(wd.timeout),
                    Dur(cfg.pet_every),
                    wd.pets,
                    BootStatus(wd.boot_status)
                );
            }
            (None, Some(cfg)) => {
                let _ = writeln!(
                    t,
                    "watchdog {}: NOT open (see the log)",
                    cfg.device.display()
                );
            }
            _ => t.push_str("watchdog: none configured\n"),
        }
        t.push_str(&self.guard_text());
        t.push_str(&self.gate_text(now));
        t.trim_end().to_string()
    }

    /// The boot-health gate in one line, for `status`.
    fn gate_text(&self, now: Mono) -> String {
        let Some(cfg) = &self.boot_cfg.gate else {
            return String::new();
        };
        match &self.gate {
            Gate::Off => String::new(),
            Gate::Pending { since } => format!(
                "boot health: pending: vital services {} for {} of healthy_after {}; unhealthy if not reached by {} after custos started ({} left)\n",
                if since.is_some() { "healthy" } else { "not all healthy" },
                Dur(since.as_ref().map_or(Duration::ZERO, |(t, _)| now.saturating_sub(*t))),
                Dur(cfg.healthy_after),
                Dur(cfg.deadline),
                Dur((self.started + cfg.deadline).saturating_sub(now))
            ),
            Gate::Running { verdict, pid, .. } => format!(
                "boot health: {}: its program runs (pid {pid})\n",
                verdict.as_str()
            ),
            Gate::Done { verdict, outcome } => {
                format!("boot health: {}: {outcome}\n", verdict.as_str())
            }
        }
    }

    /// When the gate next needs the loop: the end of healthy_after, the deadline, the
    /// program's timeout; a running program's output is drained every pass anyway.
    fn gate_due(&self) -> Option<Mono> {
        let cfg = self.boot_cfg.gate.as_ref()?;
        match &self.gate {
            Gate::Pending { since } => {
                let d = self.started + cfg.deadline;
                Some(
                    since
                        .as_ref()
                        .map_or(d, |(t, _)| d.min(*t + cfg.healthy_after)),
                )
            }
            Gate::Running {
                kill_at, timed_out, ..
            } => (!timed_out).then_some(*kill_at),
            _ => None,
        }
    }

    /// The vital services' pinned PIDs if every one is running and none of its checks is
    /// failing (each has passed since the process was pinned).
    fn vital_healthy(&self) -> Option<heapless::Vec<i32, MAX_SERVICES>> {
        let mut pins = heapless::Vec::new();
        for s in self.svcs.iter().filter(|s| s.cfg.vital) {
            let Phase::Running { pin } = &s.st.phase else {
                return None;
            };
            if s.checks
                .iter()
                .any(|c| c.tracker.failures > 0 || !c.tracker.passed)
            {
                return None;
            }
            let _ = pins.push(pin.pid);
        }
        Some(pins)
    }

    /// One pass of the gate: judge, run the verdict's program, bound it. Never waits.
    fn gate_pass(&mut self, now: Mono) {
        let Some((healthy_after, deadline, timeout)) = self
            .boot_cfg
            .gate
            .as_ref()
            .map(|g| (g.healthy_after, g.deadline, g.timeout))
        else {
            return;
        };
        if let Some(o) = &mut self.gate_out {
            o.drain(now, |line| info!("boot health: | {line}"));
        }
        match &mut self.gate {
            Gate::Pending { .. } => {
                let healthy = self.vital_healthy();
                let Gate::Pending { since } = &mut self.gate else {
                    return;
                };
                let verdict = match (healthy, since.as_ref()) {
                    (None, _) => {
                        *since = None;
                        None
                    }
                    (Some(p), Some((t, q))) if p == *q => {
                        (now.saturating_sub(*t) >= healthy_after).then_some(GateVerdict::Healthy)
                    }
                    (Some(p), _) => {
                        *since = Some((now, p));
                        healthy_after.is_zero().then_some(GateVerdict::Healthy)
                    }
                };
                let verdict = verdict
                    .or_else(|| (now >= self.started + deadline).then_some(GateVerdict::Unhealthy));
                if let Some(v) = verdict {
                    // Once per run of custos: the argv are cloned here only.
                    if let Some(cfg) = self.boot_cfg.gate.clone() {
                        self.gate_verdict(v, &cfg, now);
                    }
                }
            }
            Gate::Running {
                pid,
                kill_at,
                timed_out,
                ..
            } => {
                if !*timed_out && now >= *kill_at {
                    *timed_out = true;
                    warn!(
                        "boot health: its program (pid {pid}) still runs after timeout {}: killing its process group",
                        Dur(timeout)
                    );
                    if let Err(e) = scripts::kill_group(*pid) {
                        warn!("boot health: cannot kill process group {pid}: {e}");
                    }
                }
            }
            Gate::Off | Gate::Done { .. } => {}
        }
    }

    /// The verdict: kept in the boots file first (a custos started again in this boot does
    /// not run a program twice), logged, recorded; then its program starts.
    fn gate_verdict(&mut self, v: GateVerdict, cfg: &config::GateConfig, now: Mono) {
        self.boots.set_gate(v);
        self.flush_boots(now);
        let vital: Vec<&str> = self
            .svcs
            .iter()
            .filter(|s| s.cfg.vital)
            .map(|s| s.cfg.name.as_str())
            .collect();
        let (why, argv, key) = match v {
            GateVerdict::Healthy => (
                format!(
                    "every vital service ({}) ran and passed its checks for {} without a break",
                    vital.join(", "),
                    Dur(cfg.healthy_after)
                ),
                cfg.on_healthy.as_ref(),
                "on_healthy",
            ),
            GateVerdict::Unhealthy => (
                format!(
                    "the vital services ({}) did not run healthy for {} within the deadline {}",
                    vital.join(", "),
                    Dur(cfg.healthy_after),
                    Dur(cfg.deadline)
                ),
                cfg.on_unhealthy.as_ref(),
                "on_unhealthy",
            ),
        };
        let line = format!("boot health: {}: {why}", v.as_str());
        let event = match v {
            GateVerdict::Healthy => "boot-healthy",
            GateVerdict::Unhealthy => "boot-unhealthy",
        };
        self.hooks.raise(event, None, &why, None, now);
        match v {
            GateVerdict::Healthy => info!("{line}"),
            GateVerdict::Unhealthy => error!("{line}"),
        }
        let started = match argv {
            None => Err(format!("no {key} program is configured")),
            Some(argv) => self
                .gate_out
                .as_ref()
                .ok_or_else(|| io::Error::other("no output pipe"))
                .and_then(|out| scripts::spawn(argv, "boot-health", out))
                .map_err(|e| format!("{key} `{argv}` cannot be started: {e}")),
        };
        let text = match started {
            Ok(pid) => {
                info!(
                    "boot health: running {key} (pid {pid}): `{}`",
                    argv.map_or(String::new(), |a| a.to_string())
                );
                self.gate = Gate::Running {
                    verdict: v,
                    pid,
                    kill_at: now + cfg.timeout,
                    timed_out: false,
                };
                format!("{}; {key} started (pid {pid})", v.as_str())
            }
            Err(e) => {
                warn!("boot health: {e}");
                self.gate = Gate::Done {
                    verdict: v,
                    outcome: e.clone(),
                };
                format!("{}; {e}", v.as_str())
            }
        };
        self.note(Kind::BootHealth, "", &text);
    }

    /// The verdict's program ended (reaped): logged with its status, recorded, shown.
    fn gate_exited(&mut self, cause: Cause, now: Mono) {
        let Gate::Running {
            verdict,
            pid,
            timed_out,
            ..
        } = std::mem::replace(&mut self.gate, Gate::Off)
        else {
            return;
        };
        if let Some(o) = &mut self.gate_out {
            o.drain(now, |line| info!("boot health: | {line}"));
        }
        let key = match verdict {
            GateVerdict::Healthy => "on_healthy",
            GateVerdict::Unhealthy => "on_unhealthy",
        };
        let outcome = if timed_out {
            format!("{key} (pid {pid}) was killed after its timeout: {cause}")
        } else {
            format!("{key} (pid {pid}) {cause}")
        };
        if cause == Cause::Exited(0) && !timed_out {
            info!("boot health: {outcome}");
        } else {
            warn!("boot health: {outcome}");
        }
        self.note(Kind::BootHealth, "", &outcome);
        self.gate = Gate::Done { verdict, outcome };
    }

    /// The boot-loop guard in one line (`status`; `why` too when it is on).
    fn guard_text(&self) -> String {
        let bad = self.guard.map_or(0, |v| v.bad);
        let cfg = &self.boot_cfg;
        if self.degraded {
            format!(
                "DEGRADED: the boot-loop guard is on: {bad} recent boot(s) ended badly, more than max_resets = {}: no reboot escalation this boot; clears after {} good boot(s) in a row\n",
                cfg.max_resets, cfg.clear_after
            )
        } else {
            format!(
                "boot-loop guard: clear: {bad} recent boot(s) ended badly (trips above max_resets = {})\n",
                cfg.max_resets
            )
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4), for the textfile
    /// and `custos status --prometheus`. Memory only.
    pub fn prometheus(&self, now: Mono) -> String {
        use crate::metrics::{head, sample};
        let mut t = String::with_capacity(4096);
        let t = &mut t;
        head(t, "info", "gauge", "custos's version; always 1.");
        sample(t, "info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
        head(
            t,
            "service_up",
            "gauge",
            "1 if the service's process is running and identified, else 0.",
        );
        for v in &self.svcs {
            sample(
                t,
                "service_up",
                &[("service", &v.cfg.name)],
                u64::from(v.st.pin().is_some()),
            );
        }
        head(
            t,
            "service_state",
            "gauge",
            "1 for the state the service is in (as custos status says it), 0 for the others.",
        );
        for v in &self.svcs {
            let now_in = state_word(v);
            for w in STATE_WORDS {
                sample(
                    t,
                    "service_state",
                    &[("service", &v.cfg.name), ("state", w)],
                    u64::from(w == now_in),
                );
            }
        }
        head(t, "service_restarts_total", "counter", "Restarts custos made of the service since it started (or since the service's config last changed).");
        for v in &self.svcs {
            sample(
                t,
                "service_restarts_total",
                &[("service", &v.cfg.name)],
                v.st.total_restarts.into(),
            );
        }
        head(
            t,
            "service_deaths_total",
            "counter",
            "Deaths of the service's process by cause (exited, killed, unknown) and signal.",
        );
        for v in &self.svcs {
            for &(key, n) in &v.deaths {
                let sig = crate::core::SigName(key).to_string();
                let (cause, sig) = match key {
                    0 => ("exited", ""),
                    -1 => ("unknown", ""),
                    _ => ("killed", sig.as_str()),
                };
                sample(
                    t,
                    "service_deaths_total",
                    &[("service", &v.cfg.name), ("cause", cause), ("signal", sig)],
                    n.into(),
                );
            }
        }
        head(
            t,
            "service_last_death_timestamp_seconds",
            "gauge",
            "When the service's process last died (Unix time).",
        );
        for v in &self.svcs {
            if let Some(at) = v.last_death_at {
                sample(
                    t,
                    "service_last_death_timestamp_seconds",
                    &[("service", &v.cfg.name)],
                    at,
                );
            }
        }
        head(
            t,
            "check_failures_total",
            "counter",
            "Failed runs of the service's check.",
        );
        for v in &self.svcs {
            for (c, cfg) in v.checks.iter().zip(v.cfg.checks.iter()) {
                sample(
                    t,
                    "check_failures_total",
                    &[("service", &v.cfg.name), ("check", &cfg.to_string())],
                    c.failed_total.into(),
                );
            }
        }
        if let Some(wd) = &self.watchdog {
            head(
                t,
                "watchdog_last_pet_age_seconds",
                "gauge",
                "Seconds since custos last petted the hardware watchdog.",
            );
            if let Some(at) = self.last_pet {
                sample(
                    t,
                    "watchdog_last_pet_age_seconds",
                    &[],
                    now.saturating_sub(at).as_secs(),
                );
            }
            head(
                t,
                "watchdog_pets_total",
                "counter",
                "Keepalives custos sent to the hardware watchdog.",
            );
            sample(t, "watchdog_pets_total", &[], wd.pets);
        }
        head(t, "boots", "gauge", "Boots in custos's boot history (state_dir/boots) by how they ended; running is this one.");
        for end in [
            End::Running,
            End::Orderly,
            End::Reboot,
            End::Watchdog,
            End::Unexplained,
        ] {
            let n = self.boots.iter().filter(|b| b.end == end).count();
            sample(t, "boots", &[("end", end.as_str())], n as u64);
        }
        head(
            t,
            "degraded",
            "gauge",
            "1 while the boot-loop guard is on (no reboot escalation), else 0.",
        );
        sample(t, "degraded", &[], self.degraded.into());
        std::mem::take(t)
    }

    fn status_json(&self, now: Mono) -> String {
        use std::fmt::Write as _;
        let mut s = String::from("{\"ok\":true,\"services\":[");
        for (n, v) in self.svcs.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push_str("{\"name\":");
            crate::text::json_str(&mut s, &v.cfg.name);
            s.push_str(",\"state\":");
            crate::text::json_str(&mut s, state_word(v));
            s.push_str(",\"phase\":");
            crate::text::json_str(&mut s, phase_word(&v.st.phase));
            let _ = write!(
                s,
                ",\"crash_looping\":{},\"failures_in_a_row\":{}",
                crash_looping(v),
                v.st.fails
            );
            match v.st.pin() {
                Some(pin) => {
                    let _ = write!(
                        s,
                        ",\"pid\":{},\"uptime_ms\":{}",
                        pin.pid,
                        now.saturating_sub(pin.started).as_millis()
                    );
                }
                None => s.push_str(",\"pid\":null,\"uptime_ms\":null"),
            }
            let _ = write!(s, ",\"restarts\":{}", v.st.total_restarts);
            if let Phase::Held { pin, doubt } = v.st.phase {
                let _ = write!(s, ",\"held_pid\":{},\"held_why\":", pin.pid);
                crate::text::json_str(&mut s, &doubt.to_string());
            }
            match v.st.phase {
                Phase::Waiting { until, .. } => {
                    let _ = write!(
                        s,
                        ",\"next_start_ms\":{}",
                        until.saturating_sub(now).as_millis()
                    );
                }
                _ => s.push_str(",\"next_start_ms\":null"),
            }
            s.push_str(",\"problem\":");
            match v.pidfile_problem() {
                Some(p) => crate::text::json_str(&mut s, &p),
                None => s.push_str("null"),
            }
            s.push_str(",\"last_death\":");
            match v.st.last_death {
                Some(c) => crate::text::json_str(&mut s, &c.to_string()),
                None => s.push_str("null"),
            }
            s.push_str(",\"checks\":[");
            for (m, (c, cfg)) in v.checks.iter().zip(v.cfg.checks.iter()).enumerate() {
                if m > 0 {
                    s.push(',');
                }
                s.push_str("{\"check\":");
                crate::text::json_str(&mut s, &cfg.to_string());
                let _ = write!(
                    s,
                    ",\"failures\":{},\"passed\":{}}}",
                    c.tracker.failures, c.tracker.passed
                );
            }
            s.push_str("]}");
        }
        s.push_str("],\"watchdog\":");
        match (&self.watchdog, &self.watchdog_cfg) {
            (Some(wd), Some(_)) => {
                s.push_str("{\"device\":");
                crate::text::json_str(&mut s, &wd.device.display().to_string());
                let _ = write!(
                    s,
                    ",\"timeout_s\":{},\"keepalives\":{},\"boot_status\":",
                    wd.timeout.as_secs(),
                    wd.pets
                );
                crate::text::json_str(&mut s, &BootStatus(wd.boot_status).to_string());
                s.push('}');
            }
            _ => s.push_str("null"),
        }
        let _ = write!(
            s,
            ",\"degraded\":{},\"boot\":{{\"bad_boots\":{},\"max_resets\":{},\"clear_after\":{},\"good\":{}",
            self.degraded,
            self.guard.map_or(0, |v| v.bad),
            self.boot_cfg.max_resets,
            self.boot_cfg.clear_after,
            self.boots.current().is_some_and(|b| b.good)
        );
        s.push_str(",\"boot_id\":");
        crate::text::json_str(&mut s, self.record.boot_id());
        s.push_str(",\"gate\":");
        match &self.gate {
            Gate::Off => s.push_str("null"),
            Gate::Pending { .. } => s.push_str("{\"verdict\":\"pending\"}"),
            Gate::Running { verdict, pid, .. } => {
                let _ = write!(
                    s,
                    "{{\"verdict\":\"{}\",\"running_pid\":{pid}}}",
                    verdict.as_str()
                );
            }
            Gate::Done { verdict, outcome } => {
                let _ = write!(s, "{{\"verdict\":\"{}\",\"outcome\":", verdict.as_str());
                crate::text::json_str(&mut s, outcome);
                s.push('}');
            }
        }
        s.push_str("},\"schema\":\"");
        s.push_str(STATUS_SCHEMA);
        s.push_str("\"}\n");
        s
    }
}

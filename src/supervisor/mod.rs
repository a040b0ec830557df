//! The one event loop and the effectors. Each pass blocks in exactly one poll(2) — over the
//! signalfd, the pidfds of pinned processes and the script output pipes — with a timeout set to
//! the nearest deadline on the monotonic clock. Every decision is the core's; this module only
//! turns actions into syscalls and logs each with its cause.
//!
//! One file per responsibility: `pass` (the loop: deadline, poll set, dispatch, tick), `svc`
//! (a service slot), `effect` (actions of the core carried out), `reap` (deaths), `probe`
//! (finding a service's process), `health` (checks), `leftovers`, `reload` (a pure merge plan,
//! then applying it), `guard` (the watchdog), `gate` (the boot), `pins_file` (what a respawned
//! custos reads), `status`, `prometheus` and `requests` (what the control socket answers).
//!
//! Services live in one table of slots. Within a call chain a slot index names a service; the
//! poll set, built before poll(2) and read after, names them by `svc::Handle` (slot plus the
//! table's generation). A reload builds a new table under a new generation, so a handle taken
//! before it resolves to nothing instead of to whatever now sits in that slot.

// Every line the loop logs carries the target `custos::supervisor`, whichever file of this
// module says it: operators and tests grep for it.
macro_rules! debug {
    ($($arg:tt)+) => { log::debug!(target: "custos::supervisor", $($arg)+) };
}
macro_rules! info {
    ($($arg:tt)+) => { log::info!(target: "custos::supervisor", $($arg)+) };
}
macro_rules! warn {
    ($($arg:tt)+) => { log::warn!(target: "custos::supervisor", $($arg)+) };
}
macro_rules! error {
    ($($arg:tt)+) => { log::error!(target: "custos::supervisor", $($arg)+) };
}

mod effect;
mod gate;
mod guard;
mod health;
mod leftovers;
mod pass;
mod pins_file;
mod probe;
mod prometheus;
mod reap;
mod reload;
mod requests;
mod status;
mod svc;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::boot::{self, BootLog, End};
use crate::clock::step::StepWatch;
use crate::clock::{Dur, Mono};
use crate::config::{self, BootConfig, Config, WatchdogConfig};
use crate::control::{Access, ControlServer};
use crate::core::SigName;
use crate::keeper::Keeper;
use crate::limits::MAX_SERVICES;
use crate::record::{self, Kind, Record};
use crate::scripts::OutputPipe;
use crate::signals::Signals;
use crate::sys::epoll::Epoll;
use crate::watchdog::{BootStatus, Watchdog};

use gate::Gate;
use status::entry_json;
use svc::Handle;
pub use svc::Svc;

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
    /// Where the services' pidfds and output pipes are registered once, instead of being
    /// walked by every poll; `None` if it could not be made (they are then polled). After
    /// `svcs`: its registrations are removed before it is closed.
    epoll: Option<Epoll>,
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
    /// The generation of the service table: a reload makes a new one, and `Handle`s taken
    /// under an older one resolve to nothing.
    generation: u32,
    /// The events of this and earlier boots (deaths, actions), kept in state_dir.
    pub record: Record,
    /// Holds the services' output pipes for the daemons that write to them when custos is gone.
    keeper: Keeper,
    /// When the output keeper was last started (it is restarted at most once a second).
    keeper_started: Mono,
    /// The running keeper (if any) does not hold every pipe: starting a new one failed.
    keeper_stale: bool,
    /// A SIGCHLD came since the last reap (and at start, for children of an earlier life).
    reap_due: bool,
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

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Signal(i32),
}

/// Puts every signal custos does not handle back to its default disposition, so that what init
/// left ignored (SIGCHLD ignored would auto-reap children) neither changes custos nor leaks into
/// the scripts. SIGPIPE stays ignored in custos; std restores it for children.
pub fn reset_signal_dispositions() {
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        crate::sys::process::default_disposition(sig);
    }
}

/// Makes custos the reaper of orphaned descendants, so double-forked daemons become its
/// children and their exit status reaches it.
pub fn become_subreaper() -> io::Result<()> {
    crate::sys::process::set_child_subreaper()
}

impl Facilities {
    /// Probes the child subreaper flag (set on success) and pidfd_open, saying what is
    /// missing and what custos does without it.
    fn probe(interval: Duration) -> Facilities {
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
        let pidfd = match crate::sys::pidfd::supported() {
            Ok(()) => true,
            Err(e) => {
                warn!(
                    "pidfd_open unavailable ({e}; Linux < 5.3): deaths are found by polling /proc \
                     every {}; signals go by PID after a start-time check",
                    Dur(interval)
                );
                false
            }
        };
        Facilities { subreaper, pidfd }
    }
}

/// The record and the boots in state_dir, with what was wrong with them said.
fn open_state(state_dir: &Path) -> (Record, BootLog) {
    let (record, warnings) = Record::open(state_dir);
    for w in warnings {
        warn!("{w}");
    }
    let (boots, warnings) = BootLog::open(state_dir);
    for w in warnings {
        warn!("{w}");
    }
    (record, boots)
}

/// The control socket, or none (said) when it cannot be bound: custos runs on without it.
fn bind_control(cfg: &config::SupervisorConfig) -> Option<ControlServer> {
    let access = Access {
        gid: cfg.control_group.as_ref().map(|g| g.1),
    };
    match ControlServer::bind(&cfg.control_socket, access) {
        Ok(c) => Some(c),
        Err(e) => {
            error!(
                "control: cannot listen on {}: {e}; custos runs without its control socket",
                cfg.control_socket.display()
            );
            None
        }
    }
}

/// The wall-clock step watch, or none (said): steps are then found by comparing the clocks.
fn watch_steps() -> Option<StepWatch> {
    match StepWatch::new() {
        Ok(w) => Some(w),
        Err(e) => {
            warn!("cannot watch for wall-clock steps ({e}): they are found by comparing the clocks on each pass of the loop");
            None
        }
    }
}

/// The metrics textfile's writer, or none (said) when it cannot start.
fn start_metrics(m: &config::MetricsConfig) -> Option<crate::metrics::Textfile> {
    crate::metrics::Textfile::start(m, crate::clock::boottime())
        .map_err(|e| {
            error!(
                "metrics: cannot write {}: {e}; custos runs without it",
                m.textfile.display()
            )
        })
        .ok()
}

impl Supervisor {
    /// Sets up the kernel objects and the service table. Fails only on what custos cannot run
    /// without (the signalfd, a pipe).
    pub fn new(config_path: &Path, config: Config) -> io::Result<Supervisor> {
        reset_signal_dispositions();
        let signals = Signals::new()?;
        let facilities = Facilities::probe(config.supervisor.interval);
        // After the signal mask is set (its writer thread inherits it), and before the watchdog
        // is armed: reading the record may take long on a slow disk.
        let (record, boots) = open_state(&config.supervisor.state_dir);
        let control = bind_control(&config.supervisor);
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
            epoll: match Epoll::new() {
                Ok(e) => Some(e),
                Err(e) => {
                    warn!(
                        "cannot make an epoll instance ({e}): every fd is polled on every wake-up"
                    );
                    None
                }
            },
            next_tick: Duration::ZERO,
            facilities,
            boot: record::read_boot_id().to_string(),
            wall_offset: crate::clock::wall_minus_boot(),
            trusted_since: crate::clock::boottime(),
            ambiguous_before: Duration::ZERO,
            pins_warned: false,
            step_watch: watch_steps(),
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
            metrics: config.metrics.as_ref().and_then(start_metrics),
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
            generation: 0,
            ticks: 0,
            keeper: Keeper::new(),
            keeper_started: Duration::ZERO,
            keeper_stale: false,
            reap_due: true,
            ending: false,
        };
        sup.load_pins();
        sup.renew_keeper(crate::clock::boottime());
        // Last: from here on the loop must pet in time, and nothing above may delay it.
        sup.watchdog = sup.watchdog_cfg.as_ref().and_then(guard::open_watchdog);
        Ok(sup)
    }

    /// Forks an output keeper holding every service's pipe (and the retired ones), replacing
    /// the one that runs.
    pub(super) fn renew_keeper(&mut self, now: Mono) {
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

    /// The handle of service slot `i` in the table as it is now.
    fn handle(&self, i: usize) -> Handle {
        Handle::new(i, self.generation)
    }

    /// The slot a handle names, unless a reload has replaced the table since it was taken.
    fn resolve(&self, h: Handle) -> Option<usize> {
        h.resolve(self.generation, self.svcs.len())
    }

    pub(super) fn now(&self) -> Mono {
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
        self.say_watchdog();
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
    pub(super) fn finish_writes(&mut self) {
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

    /// Records an event (deaths, actions: what `custos events` and `custos why` show, across
    /// reboots) and sends it to `events --follow` clients.
    pub(super) fn note(&mut self, kind: Kind, service: &str, text: &str) {
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
}

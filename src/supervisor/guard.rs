//! The watchdog guard: pets /dev/watchdog only from a healthy pass of the loop, closes it on an
//! orderly exit, and stops petting (then calls reboot(2)) when a service asks for a reboot.

use super::Supervisor;
use crate::boot::End;
use crate::clock::{Dur, Mono};
use crate::config::WatchdogConfig;
use crate::watchdog::{BootStatus, Options, Watchdog};

/// Opens and arms the hardware watchdog; none (said loudly) when it cannot be opened.
pub(super) fn open_watchdog(w: &WatchdogConfig) -> Option<Watchdog> {
    match Watchdog::open(w) {
        Ok(wd) => Some(wd),
        Err(e) if e.error.raw_os_error() == Some(libc::EBUSY) => {
            // Another watchdog daemon (watchdogd, watchdog, busybox watchdog): loudly,
            // with who it is, since the board is then protected by that daemon's
            // idea of health, not custos's.
            let held =
                crate::watchdog::HoldersText(&crate::watchdog::holders(&e.device)).to_string();
            error!(
                "watchdog: {e}: {held}; supervising WITHOUT the hardware watchdog: remove the other watchdog daemon from the image (only one process may open a watchdog)"
            );
            None
        }
        Err(e) => {
            error!("watchdog: {e}; supervising without a hardware watchdog");
            None
        }
    }
}

impl Supervisor {
    /// Says at start-up what watchdog custos pets, how, and how the board last booted.
    pub(super) fn say_watchdog(&self) {
        let (Some(wd), Some(cfg)) = (&self.watchdog, &self.watchdog_cfg) else {
            return;
        };
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

    /// Orderly exit: disarm the watchdog only when configured and supported; otherwise say
    /// when the board will reset.
    pub(super) fn close_watchdog(&mut self) {
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

    /// Pets the watchdog when it is due and this pass of the loop was healthy: only here, never
    /// from a thread or a timer, so that a pet means the loop itself runs.
    pub(super) fn pet(&mut self, pass_started: Mono, now: Mono) {
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
    pub(super) fn request_reboot(&mut self, name: &str, now: Mono) {
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
        crate::sys::process::sync();
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

    pub(super) fn reboot_if_due(&mut self, now: Mono) {
        if self.reboot_at.is_some_and(|t| now >= t) {
            error!("reboot: the board has not been reset: calling reboot(2)");
            // Petting has stopped on purpose: the loop may wait, bounded, for the record.
            self.finish_writes();
            crate::sys::process::sync();
            if let Err(e) = crate::sys::process::reboot() {
                error!("reboot(2) failed: {e}");
            }
            self.reboot_at = None;
        }
    }
}

//! Reload: the new config merged into the service table. Which services are kept, changed,
//! added or removed is decided by a pure function (`plan`), apart from what is done about it.

use super::svc::{policy_of, Svc};
use super::Supervisor;
use crate::clock::Mono;
use crate::config;
use crate::core::{Phase, ServiceState};
use crate::limits::MAX_SERVICES;
use crate::procs;
use crate::record::Kind;

impl Supervisor {
    /// SIGHUP: load the config again. An invalid one is rejected whole and the running config
    /// stays; unchanged services keep their pins; removed ones are left running, unwatched.
    pub(super) fn reload(&mut self, now: Mono) -> Result<String, String> {
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
        self.generation = self.generation.wrapping_add(1);
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

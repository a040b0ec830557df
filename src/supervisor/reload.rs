//! Reload: the new config merged into the service table. Which services are kept, changed,
//! added or removed is decided by a pure function ([`plan`]: the running configs and the new
//! ones in, a plan out), apart from what is done about it.
//!
//! The merge rule: a service is the same service when its name is the same. Same name and an
//! equal config: kept as it runs (pin, state, checks). Same name, another config: kept, with
//! the new config and fresh checks; when how it is identified changed, its pin and identity
//! evidence are forgotten. A new name is a new service; a name gone is no longer supervised
//! (its process is left running). The new table is in the new config's order.

use super::svc::{policy_of, Svc};
use super::Supervisor;
use crate::clock::Mono;
use crate::config::{self, Config, ServiceConfig};
use crate::core::{Phase, ServiceState};
use crate::limits::MAX_SERVICES;
use crate::procs;
use crate::record::Kind;

/// What a reload does with one service of the new config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merge {
    /// The running service `old` (its slot), config unchanged: kept as it runs.
    Keep { old: usize },
    /// The running service `old`, config changed; `identity`: how it is identified changed.
    Change { old: usize, identity: bool },
    /// A name the running config does not have.
    Add,
}

/// The whole merge: one entry per service of the new config, in its order, and the slots of
/// the running services it no longer names.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) services: heapless::Vec<Merge, MAX_SERVICES>,
    pub(super) removed: heapless::Vec<usize, MAX_SERVICES>,
}

/// Merges the new services into the running ones by name (see the module doc). At most
/// MAX_SERVICES of the new config are taken (the config is checked against that at load).
/// The removed ones come in the order the table was left in when the others were taken out
/// of it, as the merge has always logged them.
pub(super) fn plan(old: &[&ServiceConfig], new: &[ServiceConfig]) -> Plan {
    let mut left: heapless::Vec<usize, MAX_SERVICES> = heapless::Vec::new();
    for k in 0..old.len() {
        if left.push(k).is_err() {
            break;
        }
    }
    let mut services = heapless::Vec::new();
    for cfg in new.iter().take(MAX_SERVICES) {
        let merge = match left.iter().position(|&k| old[k].name == cfg.name) {
            Some(at) => {
                let k = left.swap_remove(at);
                if old[k] == cfg {
                    Merge::Keep { old: k }
                } else {
                    Merge::Change {
                        old: k,
                        identity: old[k].identify != cfg.identify,
                    }
                }
            }
            None => Merge::Add,
        };
        let _ = services.push(merge);
    }
    Plan {
        services,
        removed: left,
    }
}

impl Supervisor {
    /// SIGHUP: load the config again. An invalid one is rejected whole and the running config
    /// stays; unchanged services keep their pins; removed ones are left running, unwatched.
    pub(super) fn reload(&mut self, now: Mono) -> Result<String, String> {
        info!("reloading {}", self.config_path.display());
        let mut new = self.load_again()?;
        let plan = {
            let mut old_cfgs: heapless::Vec<&ServiceConfig, MAX_SERVICES> = heapless::Vec::new();
            for s in &self.svcs {
                let _ = old_cfgs.push(&s.cfg);
            }
            plan(&old_cfgs, &new.services)
        };
        let mut old = Taken::new(std::mem::take(&mut self.svcs));
        let mut table: Vec<Svc> = Vec::with_capacity(MAX_SERVICES);
        let mut pipes_changed = false;
        for (merge, cfg) in plan.services.iter().zip(std::mem::take(&mut new.services)) {
            let svc = match *merge {
                Merge::Keep { old: k } => old.take(k),
                Merge::Change { old: k, identity } => old.take(k).map(|mut s| {
                    changed(&mut s, cfg, identity, now);
                    s
                }),
                Merge::Add => {
                    info!("{}: new service", cfg.name);
                    pipes_changed = true;
                    match Svc::new(cfg) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            error!("cannot set up a new service: {e}");
                            None
                        }
                    }
                }
            };
            if let Some(mut s) = svc {
                if !matches!(merge, Merge::Add) {
                    fresh_if_given_up(&mut s);
                }
                table.push(s);
            }
        }
        for k in plan.removed {
            if let Some(s) = old.take(k) {
                self.retire(s);
                pipes_changed = true;
            }
        }
        self.warn_restart_only(&new);
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

    /// The config file read and checked again; an invalid one is said line by line.
    fn load_again(&self) -> Result<Config, String> {
        match config::load(&self.config_path) {
            Ok(c) => {
                for w in c.warning_lines(&self.config_path) {
                    warn!("{w}");
                }
                Ok(c)
            }
            Err(errors) => {
                let text = errors.to_string();
                for line in text.lines() {
                    error!("{line}");
                }
                error!("reload rejected: the running config stays in force");
                Err(format!(
                    "{text}\nreload rejected: the running config stays in force"
                ))
            }
        }
    }

    /// A service removed from the config: no longer supervised, its process left running, its
    /// output pipe handed to the output keeper.
    fn retire(&mut self, s: Svc) {
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
    }

    /// Says which changed sections take effect only when custos is restarted.
    fn warn_restart_only(&self, new: &Config) {
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
    }
}

/// The running services while a reload takes them out by their slot in the old table.
struct Taken {
    svcs: Vec<Svc>,
    /// The old slot of each service still in `svcs`, position for position.
    slots: heapless::Vec<usize, MAX_SERVICES>,
}

impl Taken {
    fn new(svcs: Vec<Svc>) -> Taken {
        let mut slots = heapless::Vec::new();
        for k in 0..svcs.len() {
            let _ = slots.push(k);
        }
        Taken { svcs, slots }
    }

    /// The service that was in slot `k`, unless it was taken already.
    fn take(&mut self, k: usize) -> Option<Svc> {
        let at = self.slots.iter().position(|&x| x == k)?;
        self.slots.swap_remove(at);
        Some(self.svcs.swap_remove(at))
    }
}

/// A kept service with a changed config: the new policy and fresh checks (reset now when it
/// runs); its pin and identity evidence forgotten when how it is identified changed.
fn changed(s: &mut Svc, cfg: ServiceConfig, identity: bool, now: Mono) {
    info!("{}: config changed", cfg.name);
    if identity {
        s.st.forget_identity();
        s.pidfd = None;
        s.known = procs::Known::default();
        s.last_read = None;
    }
    s.policy = policy_of(&cfg);
    s.cancel_checks();
    s.cfg = cfg;
    s.renew_checks();
    if s.st.pin().is_some() {
        for (c, cc) in s.checks.iter_mut().zip(s.cfg.checks.iter()) {
            c.reset(cc, now);
        }
    }
}

/// A kept service that had been given up is tried again from the start.
fn fresh_if_given_up(s: &mut Svc) {
    if s.st.phase == Phase::GivenUp {
        info!(
            "{}: given up before; the reload gives it a fresh start",
            s.cfg.name
        );
        s.st = ServiceState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(text: &str) -> Vec<ServiceConfig> {
        config::parse(text).expect("valid config").services
    }

    const A: &str = "[[service]]\nname = \"a\"\npidfile = \"/run/a.pid\"\nstart = [\"/etc/init.d/a\", \"start\"]\n";
    const B: &str = "[[service]]\nname = \"b\"\npidfile = \"/run/b.pid\"\nstart = [\"/etc/init.d/b\", \"start\"]\n";
    const C: &str = "[[service]]\nname = \"c\"\nexe = \"/usr/sbin/c\"\nstart = [\"/etc/init.d/c\", \"start\"]\n";

    fn merged(old: &str, new: &str) -> Plan {
        let old = services(old);
        let refs: Vec<&ServiceConfig> = old.iter().collect();
        plan(&refs, &services(new))
    }

    #[test]
    fn an_unchanged_config_keeps_every_service_in_its_slot() {
        let p = merged(&format!("{A}{B}"), &format!("{A}{B}"));
        assert_eq!(
            p.services.as_slice(),
            [Merge::Keep { old: 0 }, Merge::Keep { old: 1 }]
        );
        assert!(p.removed.is_empty());
    }

    #[test]
    fn services_are_matched_by_name_not_by_position() {
        // The new config lists them the other way round: each keeps its own state.
        let p = merged(&format!("{A}{B}"), &format!("{B}{A}"));
        assert_eq!(
            p.services.as_slice(),
            [Merge::Keep { old: 1 }, Merge::Keep { old: 0 }]
        );
        assert!(p.removed.is_empty());
    }

    #[test]
    fn a_changed_config_is_a_change_and_a_changed_identity_says_so() {
        let b_timeout = B.replace("start = [", "start_timeout = \"7s\"\nstart = [");
        let b_exe = B.replace("pidfile = \"/run/b.pid\"", "exe = \"/usr/sbin/b\"");
        let p = merged(&format!("{A}{B}"), &format!("{A}{b_timeout}"));
        assert_eq!(
            p.services.as_slice(),
            [
                Merge::Keep { old: 0 },
                Merge::Change {
                    old: 1,
                    identity: false
                }
            ]
        );
        let p = merged(&format!("{A}{B}"), &format!("{b_exe}{A}"));
        assert_eq!(
            p.services.as_slice(),
            [
                Merge::Change {
                    old: 1,
                    identity: true
                },
                Merge::Keep { old: 0 }
            ]
        );
    }

    #[test]
    fn new_names_are_added_and_missing_ones_removed() {
        let p = merged(&format!("{A}{B}{C}"), &format!("{C}{A}"));
        assert_eq!(
            p.services.as_slice(),
            [Merge::Keep { old: 2 }, Merge::Keep { old: 0 }]
        );
        assert_eq!(p.removed.as_slice(), [1]);
        let p = merged(A, &format!("{B}{A}{C}"));
        assert_eq!(
            p.services.as_slice(),
            [Merge::Add, Merge::Keep { old: 0 }, Merge::Add]
        );
        assert!(p.removed.is_empty());
        let p = merged(&format!("{A}{B}{C}"), "");
        assert!(p.services.is_empty());
        assert_eq!(p.removed.as_slice(), [0, 1, 2]);
    }
}

//! The metrics in the Prometheus text exposition format, built in memory.

use super::status::{state_word, STATE_WORDS};
use super::Supervisor;
use crate::boot::End;
use crate::clock::Mono;
use crate::metrics::{head, sample};

impl Supervisor {
    /// The metrics in the Prometheus text exposition format (version 0.0.4), for the textfile
    /// and `custos status --prometheus`. Memory only.
    pub fn prometheus(&self, now: Mono) -> String {
        let mut t = String::with_capacity(4096);
        head(&mut t, "info", "gauge", "custos's version; always 1.");
        sample(&mut t, "info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
        self.service_metrics(&mut t);
        self.death_metrics(&mut t);
        self.watchdog_metrics(&mut t, now);
        self.boot_metrics(&mut t);
        t
    }

    /// Each service: up, its state, its restarts.
    fn service_metrics(&self, t: &mut String) {
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
    }

    /// Each service: deaths by cause, the last death, failed checks.
    fn death_metrics(&self, t: &mut String) {
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
    }

    /// The hardware watchdog, when one is open.
    fn watchdog_metrics(&self, t: &mut String, now: Mono) {
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
    }

    /// The boot history and the boot-loop guard.
    fn boot_metrics(&self, t: &mut String) {
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
    }
}

//! Validating `[boot]`: the boot-loop guard, and the boot-health gate.

use std::time::Duration;

use super::read::{Fields, Label};
use super::validate::Validator;
use super::*;
use crate::clock::Dur;

impl Validator<'_> {
    /// `[boot]`. The guard's `max_resets` was once a `[watchdog]` key: it is still read there
    /// when `[boot]` does not set it (`[watchdog] reset_window` is read and ignored: the guard
    /// counts boots, not time).
    pub(super) fn boot(&mut self, top: &Fields) -> BootConfig {
        let d = BootConfig::default();
        let l = Label::new("boot.", "");
        let b = top.table("boot").map(|b| *b.get_ref());
        let legacy = top
            .table("watchdog")
            .and_then(|w| w.get_ref().int("max_resets"));
        let max = crate::limits::MAX_MAX_RESETS;
        let max_resets = match (b.and_then(|b| b.int("max_resets")), legacy) {
            (Some(_), Some(l)) => {
                self.err(
                    Some(l.span()),
                    "watchdog.max_resets",
                    "set in [boot] too: keep boot.max_resets only",
                );
                d.max_resets
            }
            (Some(m), None) => self.count(&Some(m), "boot.max_resets", 0, max, d.max_resets),
            (None, Some(l)) => self.count(&Some(l), "watchdog.max_resets", 0, max, d.max_resets),
            (None, None) => d.max_resets,
        };
        let (clear_after, good_after) = match b {
            None => (d.clear_after, d.good_after),
            Some(b) => (
                self.count_of(b, &l, "clear_after", d.clear_after),
                self.dur(b, &l, "good_after"),
            ),
        };
        BootConfig {
            max_resets,
            clear_after,
            good_after,
            gate: None,
        }
    }

    /// The boot-health gate of `[boot]`: `healthy_after` turns it on; the other keys need it,
    /// and it needs a vital service and a program to run.
    pub(super) fn gate(&mut self, top: &Fields, services: &[ServiceConfig]) -> Option<GateConfig> {
        let b = *top.table("boot")?.get_ref();
        let l = Label::new("boot.", "");
        let Some(h) = b.str("healthy_after") else {
            for key in ["deadline", "on_healthy", "on_unhealthy", "timeout"] {
                if let Some(span) = b.span(key) {
                    self.err(
                        Some(span),
                        &l.key(key),
                        "belongs to the boot-health gate, which needs boot.healthy_after",
                    );
                }
            }
            return None;
        };
        let healthy_after = self.dur_or(b, &l, "healthy_after", Duration::from_secs(60));
        let deadline = self.dur(b, &l, "deadline");
        let timeout = self.dur(b, &l, "timeout");
        if !services.iter().any(|s| s.vital) {
            self.err(
                Some(h.span()),
                "boot.healthy_after",
                "no service is marked `vital = true`: the gate would have nothing to judge",
            );
        }
        if deadline <= healthy_after {
            self.err(
                b.span("deadline").or(Some(h.span())),
                "boot.deadline",
                format!(
                    "{} is not longer than healthy_after {}: no boot could be found healthy in time",
                    Dur(deadline),
                    Dur(healthy_after)
                ),
            );
        }
        if b.span("on_healthy").is_none() && b.span("on_unhealthy").is_none() {
            self.err(
                Some(h.span()),
                "boot.healthy_after",
                "neither on_healthy nor on_unhealthy is set: the verdict would do nothing",
            );
        }
        let on_healthy = b
            .strings("on_healthy")
            .map(|v| self.argv(&v, "boot.on_healthy"));
        let on_unhealthy = b
            .strings("on_unhealthy")
            .map(|v| self.argv(&v, "boot.on_unhealthy"));
        Some(GateConfig {
            healthy_after,
            deadline,
            on_healthy,
            on_unhealthy,
            timeout,
        })
    }
}

//! What survives a respawn of custos within a boot: the pins file (last pins, a start script
//! that still runs) and the watch on the wall clock (steps make old pidfile mtimes doubtful).

use std::io;
use std::time::Duration;

use super::Supervisor;
use crate::clock::{Dur, Mono};
use crate::core::Script;
use crate::pins;
use crate::procs::{self, PinState};
use crate::record::Kind;

/// A step of the wall clock (ns, signed), in words: "forward by 8760h", "back by 1.5s".
pub(super) struct StepText(i128);

impl std::fmt::Display for StepText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let way = if self.0 < 0 { "back" } else { "forward" };
        let d = Duration::from_nanos(u64::try_from(self.0.unsigned_abs()).unwrap_or(u64::MAX));
        write!(f, "{way} by {}", Dur(d))
    }
}

impl Supervisor {
    /// Reads the pins file of an earlier run: in this boot, the processes to adopt again and
    /// the wall clock as it was watched; from an earlier boot, the pidfiles it left behind.
    pub(super) fn load_pins(&mut self) {
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
    pub(super) fn watch_wall_clock(&mut self, set: bool, now: Mono) {
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
    pub(super) fn stepped(&mut self, step: i128, now: Mono) {
        self.trusted_since = now;
        if step < 0 {
            let back = Duration::from_nanos(u64::try_from(-step).unwrap_or(u64::MAX));
            self.ambiguous_before = self.ambiguous_before.max(now.saturating_add(back));
        }
    }

    /// Writes the pins file (the last pin of every service, the clock watch).
    pub(super) fn save_pins(&mut self) {
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
    pub(super) fn pins_written(&mut self, r: io::Result<()>) {
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
}

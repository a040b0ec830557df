//! When checks run (`aligned`) and what a result means (`Tracker`: consecutive failures, the
//! grace after a start, when to act). Pure.

use std::time::Duration;

use super::Failure;
use crate::clock::Mono;
use crate::config::CheckConfig;

/// What the tracker says about one result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Passed, as before: nothing to log.
    Quiet,
    /// Passed after failures: log the recovery.
    Recovered { after: u32 },
    /// Failed, counted `n` of `of`: log it.
    Counted { n: u32, of: u32, failure: Failure },
    /// Failed within the grace after a start, before any pass: logged, not counted.
    InGrace { failure: Failure },
    /// Failed `n` times in a row: act.
    Act { n: u32, failure: Failure },
}

/// Consecutive failures and the grace after a start. Pure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracker {
    /// Consecutive failures since the last pass.
    pub failures: u32,
    /// Passed once since the process was pinned (ends the grace at once).
    pub passed: bool,
    pub grace_until: Mono,
}

impl Tracker {
    /// A fresh tracker for a process pinned at `now`.
    pub fn pinned(now: Mono, grace: Duration) -> Tracker {
        Tracker {
            failures: 0,
            passed: false,
            grace_until: now + grace,
        }
    }

    pub fn result(&mut self, cfg: &CheckConfig, r: Result<(), Failure>, now: Mono) -> Verdict {
        match r {
            Ok(()) => {
                self.passed = true;
                let after = core::mem::take(&mut self.failures);
                if after > 0 {
                    Verdict::Recovered { after }
                } else {
                    Verdict::Quiet
                }
            }
            Err(failure) => {
                if !self.passed && now < self.grace_until {
                    return Verdict::InGrace { failure };
                }
                self.failures = self.failures.saturating_add(1);
                // Count in rounds of `failures`: act at the end of each round, so a check whose
                // action is "log" reports every round, and the consecutive total stays known.
                let of = cfg.failures.max(1);
                let n = (self.failures - 1) % of + 1;
                if n == of {
                    Verdict::Act { n, failure }
                } else {
                    Verdict::Counted { n, of, failure }
                }
            }
        }
    }
}

/// The next multiple of `every` on the supervisor clock after `now`: checks with the same
/// period run in the same pass of the loop, however their services were started, so that 20
/// services cost one wake-up a period instead of 20 (measured: the idle CPU of custos with 20
/// HTTP checks).
pub fn aligned(now: Mono, every: Duration) -> Mono {
    // In u64 nanoseconds (584 years): a 128-bit division is a long routine on 32-bit ARM. A
    // time or period beyond that range puts the next multiple beyond it too: the end.
    let (Ok(now_ns), Ok(every_ns)) = (
        u64::try_from(now.as_nanos()),
        u64::try_from(every.as_nanos()),
    ) else {
        return Duration::from_nanos(u64::MAX);
    };
    let every_ns = every_ns.max(1);
    let next = (now_ns / every_ns)
        .checked_add(1)
        .and_then(|q| q.checked_mul(every_ns));
    Duration::from_nanos(next.unwrap_or(u64::MAX))
}

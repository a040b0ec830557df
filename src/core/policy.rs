//! How a service is restarted: the policy a config sets, and the backoff arithmetic.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhausted {
    GiveUp,
    /// Sync, stop petting the watchdog, and reboot(2) if it has not reset the board in time.
    Reboot,
}

/// How a service is restarted after deaths and failed starts.
///
/// Defaults are for a board nobody attends: a death after `stable_after` of running is
/// started again at once; failures in a row back off from `backoff`, doubling, up to
/// `backoff_max`; and there is no limit (`max_restarts` is `None`): a crash loop is retried at
/// `backoff_max` for as long as it lasts, shown as crash-looping. A limit, and with it
/// `on_exhausted`, applies only when the config asks for one.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
    /// Restarts within `window` before `on_exhausted`; `None`: never exhausted.
    pub max_restarts: Option<u32>,
    pub window: Duration,
    pub on_exhausted: OnExhausted,
}

/// The limit a config gets when it writes `window` or `on_exhausted` but not `max_restarts`:
/// the default before there was "unlimited", so that such a config keeps its meaning.
pub const IMPLIED_MAX_RESTARTS: u32 = 10;

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(10),
            max_restarts: None,
            window: Duration::from_secs(600),
            on_exhausted: OnExhausted::GiveUp,
        }
    }
}

/// backoff × 2^(fails−1), capped at backoff_max.
pub fn backoff(r: &RestartPolicy, fails: u32) -> Duration {
    let shift = fails.saturating_sub(1).min(31);
    r.backoff
        .checked_mul(1u32 << shift)
        .map_or(r.backoff_max, |d| d.min(r.backoff_max))
}

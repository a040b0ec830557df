//! Time as custos keeps it. Every timer, age, window and identity is on CLOCK_BOOTTIME (`Mono`):
//! it counts from boot, includes suspend, never steps. The wall clock is read only to date log
//! and record lines and to convert file timestamps; `step` notices when someone sets it.

use core::fmt;
use std::time::Duration;

pub mod step;

/// Time on CLOCK_BOOTTIME (since boot, counting suspend): the clock /proc start times use.
pub type Mono = Duration;

/// Formats a duration the way configs write it: "500ms", "5s", "2m30s", "1h".
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole seconds and milliseconds apart, in u64: the same figures as from the u128
        // `as_millis()`, without 128-bit divisions (3 KB of code on 32-bit ARM).
        let (s, ms) = (self.0.as_secs(), self.0.subsec_millis());
        if s == 0 {
            return write!(f, "{ms}ms");
        }
        if s < 60 {
            return if ms == 0 {
                write!(f, "{s}s")
            } else {
                write!(f, "{s}.{}s", ms / 100)
            };
        }
        let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
        if h > 0 {
            write!(f, "{h}h")?;
            if m > 0 {
                write!(f, "{m}m")?;
            }
            return Ok(());
        }
        write!(f, "{m}m")?;
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

/// One clock's reading.
pub fn read(id: libc::clockid_t) -> Duration {
    let ts = crate::sys::time::clock_gettime(id);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// CLOCK_REALTIME minus CLOCK_BOOTTIME, in nanoseconds: the wall clock's reading of the
/// moment of boot. Slewing moves it slowly (at most 500 ppm); a step moves it at once.
pub fn wall_minus_boot() -> i128 {
    let wall = read(libc::CLOCK_REALTIME).as_nanos() as i128;
    let boot = read(libc::CLOCK_BOOTTIME).as_nanos() as i128;
    wall - boot
}

/// Now on CLOCK_BOOTTIME: the supervisor's clock.
pub fn boottime() -> Duration {
    read(libc::CLOCK_BOOTTIME)
}

/// Now on the wall clock, in seconds since the epoch (0 if the clock is before 1970). Only to
/// date what custos writes (record and boot lines, metrics, hook events): no decision uses it.
pub fn wall_now() -> u64 {
    read(libc::CLOCK_REALTIME).as_secs()
}

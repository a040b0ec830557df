//! One entry of the record: what happened (`Kind`), to which service, when (wall-clock UTC
//! seconds, written as `Utc`), in which boot; and this boot's id.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Read;

use heapless::String as HString;

use super::{BootId, ServiceName, Text, BOOT_ID_LEN, TIME_LEN};
use crate::text::Cut;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A service's process died (text: the cause, pid and uptime).
    Died,
    /// A service's process was identified after a start (or adopted).
    Started,
    /// A start attempt failed (script status, timeout, no process).
    StartFailed,
    /// A service was stopped on purpose.
    Stopped,
    /// A restart was asked (failed check, operator).
    Restarted,
    /// Too many restarts: custos gave up on the service.
    GaveUp,
    /// The previous boot ended in a hardware watchdog reset (WDIOC_GETBOOTSTATUS).
    WatchdogReset,
    CustosStart,
    CustosStop,
    /// The config was reloaded.
    Reload,
    /// custos asked for a reboot (`on_exhausted = "reboot"`).
    Reboot,
    /// A pidfile names a live process that can be neither verified nor ruled out: held.
    Held,
    /// The wall clock was stepped (the times of the entries around it jump).
    ClockStep,
    /// The boot-health gate's verdict on this boot, and what its program did.
    BootHealth,
}

pub(super) const KINDS: [(Kind, &str); 14] = [
    (Kind::Died, "died"),
    (Kind::Started, "started"),
    (Kind::StartFailed, "start-failed"),
    (Kind::Stopped, "stopped"),
    (Kind::Restarted, "restarted"),
    (Kind::GaveUp, "gave-up"),
    (Kind::WatchdogReset, "watchdog-reset"),
    (Kind::CustosStart, "custos-start"),
    (Kind::CustosStop, "custos-stop"),
    (Kind::Reload, "reload"),
    (Kind::Reboot, "reboot"),
    (Kind::Held, "held"),
    (Kind::ClockStep, "clock-step"),
    (Kind::BootHealth, "boot-health"),
];

impl Kind {
    /// The word written in the file.
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("unknown", |(_, s)| s)
    }

    pub fn parse(s: &str) -> Option<Kind> {
        KINDS.iter().find(|(_, w)| *w == s).map(|(k, _)| *k)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Wall-clock time, seconds since the Unix epoch (UTC).
    pub time: u64,
    /// The boot it happened in; empty when the kernel did not say.
    pub boot: BootId,
    /// Empty for custos-wide events.
    pub service: ServiceName,
    pub kind: Kind,
    pub text: Text,
}

impl Entry {
    /// An entry; `service` and `text` are cut at a char boundary to fit.
    pub fn new(time: u64, boot: &str, service: &str, kind: Kind, text: impl fmt::Display) -> Entry {
        let mut e = Entry {
            time,
            boot: HString::new(),
            service: HString::new(),
            kind,
            text: HString::new(),
        };
        let _ = Cut(&mut e.boot).write_str(boot);
        let _ = Cut(&mut e.service).write_str(service);
        let _ = write!(Cut(&mut e.text), "{text}");
        e
    }
}

/// "2024-11-25T08:22:07Z sshd died: killed by SIGKILL (pid 123, up 5s)".
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Utc(self.time))?;
        if !self.service.is_empty() {
            write!(f, " {}", self.service)?;
        }
        write!(f, " {}: {}", self.kind, self.text)
    }
}

/// Seconds since the epoch written as "YYYY-MM-DDThh:mm:ssZ".
pub struct Utc(pub u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 / 86_400;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The inverse of `civil_from_days`, for dates from 1970 on.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

pub(crate) fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != TIME_LEN
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d)?;
    let t = days * 86_400 + h * 3600 + mi * 60 + sec;
    // Reject dates that do not exist (Feb 30): they do not come back the same.
    (civil_from_days(days) == (y, mo, d)).then_some(t)
}

/// This boot's id, from /proc/sys/kernel/random/boot_id; empty when unreadable.
///
/// A debug build (tests only: `cargo test` builds custos this way) takes the id from the
/// environment variable `CUSTOS_TEST_BOOT_ID` when it is set, so that the tests can run custos
/// against one state_dir as in several boots. A release build (what `scripts/build` makes and
/// boards run) has no such code: its boot id comes from the kernel alone.
pub fn read_boot_id() -> BootId {
    let mut id = BootId::new();
    let mut buf = [0u8; 64];
    #[cfg_attr(not(debug_assertions), allow(unused_mut))]
    let mut n = File::open("/proc/sys/kernel/random/boot_id")
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var_os("CUSTOS_TEST_BOOT_ID") {
        let v = v.as_encoded_bytes();
        n = v.len().min(buf.len());
        buf[..n].copy_from_slice(&v[..n]);
    }
    if let Ok(s) = std::str::from_utf8(&buf[..n]) {
        let s = s.trim();
        if s.len() == BOOT_ID_LEN && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            let _ = id.push_str(s);
        }
    }
    id
}

//! Boot facts: one line per boot, kept apart from the record of service events, in
//! `<state_dir>/boots`, and the boot-loop guard that reads them.
//!
//! Each boot is known by its boot id (/proc/sys/kernel/random/boot_id). When custos starts in a
//! boot it has not seen, it settles how the previous boot ended and adds a line for this one:
//!
//! - `orderly`: custos was stopped by SIGTERM or SIGINT (init's shutdown sends SIGTERM) and was
//!   not started again in that boot;
//! - `reboot`: custos asked for the reboot itself (`on_exhausted = "reboot"`);
//! - `watchdog-reset`: neither, and the watchdog driver reports this boot began with a watchdog
//!   reset (WDIOC_GETBOOTSTATUS has CARDRESET);
//! - `unexplained`: none of these. A hang reset by a watchdog whose driver does not report it
//!   (softdog, many SoC drivers), a power cut, a kernel panic with `panic=N` and a reboot by
//!   someone else all look the same here; they cannot be told apart from the boot id alone.
//!
//! A boot is also marked `good` once custos has run `good_after` in it without asking for a
//! reboot (a boot that lasted is not part of a boot loop, however it ended).
//!
//! The guard's rule (`verdict`): walk the ended boots newest first. An ended boot is *bad* when
//! it ended in a reboot custos requested, or ended in a watchdog reset or unexplained without
//! being marked good; it is *good* otherwise (orderly, or marked good). Count the bad boots, and
//! stop at the first run of `clear_after` good boots in a row (those and older ones do not
//! count). The guard trips when the count is more than `max_resets`. No wall clock is involved.
//!
//! The file is written at most a few times per boot (when custos starts, when the boot is found
//! good, when custos stops or asks for a reboot), atomically, by a writer thread like the
//! record's: the loop never waits for the disk except, bounded, right before it exits or
//! reboots. Format, version 1 (→ is a tab; the time is the wall clock, for people only):
//!
//! ```text
//! custos-boots v1 entries=2 bytes=147 crc32=18d1b3d9
//! 1970-01-01T00:00:07Z→0f3c4e2a-9b1d-4c55-8e0a-3f6f1a2b7c9d→unexplained→-
//! 1970-01-01T00:00:06Z→5b2f8c1e-7a3d-4e9b-9c1f-2d4e6f8a0b1c→running→degraded
//! ```
//!
//! Oldest first; the last field is `-` or a comma-separated list of `good`, `degraded` (the
//! guard was on in that boot), and `healthy` or `unhealthy` (the boot-health gate's verdict,
//! kept before its program runs: at most one run per boot). At most `MAX_BOOTS` lines; the
//! file is at most about 3.5 KiB.
//!
//! Here: the boots, the guard's rule and the log the loop keeps; `file`: the file's bytes,
//! parsed and written.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heapless::Deque;

use crate::clock::Dur;
use crate::config::BootConfig;
use crate::limits::MAX_BOOTS;
use crate::record::{usable_dir, BootId, Names, Writer, BOOT_ID_LEN};

mod file;

pub use file::{load, parse};
use file::{read_file, serialize};

pub const FILE_NAME: &str = "boots";
pub const TEMP_NAME: &str = "boots.tmp";
pub const CORRUPT_NAME: &str = "boots.corrupt";
const NAMES: Names = Names {
    file: FILE_NAME,
    temp: TEMP_NAME,
    thread: c"custos-boots",
    volatile: false,
};
const VERSION: u32 = 1;
/// "2024-11-25T08:22:01Z\t<36>\twatchdog-reset\tgood,degraded,unhealthy\n"
const MAX_LINE: usize = 20 + 1 + BOOT_ID_LEN + 1 + 14 + 1 + 23 + 1;
pub const MAX_FILE_BYTES: usize = 96 + MAX_BOOTS * MAX_LINE;
/// When the loop finds the writer's mailbox locked, it tries again this soon.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The boot custos runs in, or one it has not settled yet.
    Running,
    Orderly,
    Reboot,
    Watchdog,
    Unexplained,
}

const ENDS: [(End, &str); 5] = [
    (End::Running, "running"),
    (End::Orderly, "orderly"),
    (End::Reboot, "reboot"),
    (End::Watchdog, "watchdog-reset"),
    (End::Unexplained, "unexplained"),
];

impl End {
    pub fn as_str(self) -> &'static str {
        ENDS.iter()
            .find(|(e, _)| *e == self)
            .map_or("running", |(_, w)| w)
    }

    fn parse(s: &str) -> Option<End> {
        ENDS.iter().find(|(_, w)| *w == s).map(|(e, _)| *e)
    }
}

/// "ended in order (custos was stopped by SIGTERM or SIGINT)", as the log says it.
impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Running => "is still running",
            End::Orderly => "ended in order (custos was stopped by SIGTERM or SIGINT, or told by `custos shutdown`)",
            End::Reboot => "ended in a reboot custos requested",
            End::Watchdog => "ended in a watchdog reset (the driver reports CARDRESET)",
            End::Unexplained => "ended unexplained (no orderly stop, no reboot request, no watchdog reset reported: a hang the driver does not report, a power cut, or a reboot by someone else)",
        })
    }
}

/// One boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// When custos first started in it, on the wall clock (for people; never for decisions).
    pub time: u64,
    pub id: BootId,
    pub end: End,
    /// custos ran `good_after` in it without asking for a reboot.
    pub good: bool,
    /// The guard was on in it.
    pub degraded: bool,
    /// The boot-health gate's verdict in it, once reached: kept before its program runs, so
    /// that a custos started again in the same boot never runs a program a second time.
    pub gate: Option<GateVerdict>,
}

/// The boot-health gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    Healthy,
    Unhealthy,
}

impl GateVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            GateVerdict::Healthy => "healthy",
            GateVerdict::Unhealthy => "unhealthy",
        }
    }
}

impl Boot {
    /// Whether the guard counts this (ended) boot against `max_resets`.
    pub fn bad(&self) -> bool {
        match self.end {
            End::Orderly => false,
            End::Reboot => true,
            End::Watchdog | End::Unexplained | End::Running => !self.good,
        }
    }
}

/// What the guard found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Bad boots counted.
    pub bad: usize,
    /// Ended boots looked at (up to and including the run of good ones that ended the count).
    pub looked: usize,
    pub tripped: bool,
}

/// The rule, over ended boots given newest first (see the module doc).
pub fn verdict<'a>(ended: impl Iterator<Item = &'a Boot>, cfg: &BootConfig) -> Verdict {
    let (mut bad, mut looked, mut good_run) = (0, 0, 0);
    for b in ended {
        looked += 1;
        if b.bad() {
            bad += 1;
            good_run = 0;
        } else {
            good_run += 1;
            if good_run >= cfg.clear_after as usize {
                break;
            }
        }
    }
    Verdict {
        bad,
        looked,
        tripped: bad > cfg.max_resets as usize,
    }
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// custos was started again within a boot it had already started in (a respawn).
    Again,
    /// A new boot; the previous one, settled (none on the first boot with this state_dir).
    New(Option<Boot>),
}

/// The ring of boots and its file.
pub struct BootLog {
    dir: Option<PathBuf>,
    writer: Option<Writer>,
    ring: Deque<Boot, MAX_BOOTS>,
    dirty: bool,
    /// When the loop may try again to hand a snapshot over (the mailbox was locked).
    retry_at: Duration,
    failing: bool,
    writes: u64,
}

impl BootLog {
    /// A boot log that is never written.
    pub fn in_memory() -> BootLog {
        BootLog {
            dir: None,
            writer: None,
            ring: Deque::new(),
            dirty: false,
            retry_at: Duration::ZERO,
            failing: false,
            writes: 0,
        }
    }

    /// Loads `<state_dir>/boots` (before the watchdog is opened, like the record) and starts its
    /// writer thread. Never fails: problems come back as lines for the caller to log.
    pub fn open(state_dir: &Path) -> (BootLog, Vec<String>) {
        let mut log = BootLog::in_memory();
        let mut warnings = Vec::new();
        let path = state_dir.join(FILE_NAME);
        let writable = usable_dir(state_dir);
        match read_file(&path) {
            Ok(Ok(ring)) => log.ring = ring,
            Ok(Err(why)) => {
                let aside = state_dir.join(CORRUPT_NAME);
                let moved = writable.is_ok() && fs::rename(&path, &aside).is_ok();
                log.dirty = true;
                warnings.push(format!(
                    "boots: {} is corrupt ({why}){}; starting with no boots known: the boot-loop guard counts from here",
                    path.display(),
                    if moved { format!("; moved to {}", aside.display()) } else { String::new() }
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                log.dirty = true;
                warnings.push(format!(
                    "boots: cannot read {} ({e}); starting with no boots known",
                    path.display()
                ));
            }
        }
        if let Err(e) = writable {
            warnings.push(format!(
                "boots: state_dir {} is not usable ({e}): boot facts are kept in memory only, and the boot-loop guard cannot count boots",
                state_dir.display()
            ));
            return (log, warnings);
        }
        match Writer::start(state_dir, NAMES) {
            Ok(w) => {
                log.dir = Some(state_dir.to_path_buf());
                log.writer = Some(w);
            }
            Err(e) => warnings.push(format!(
                "boots: cannot start its writer thread ({e}): boot facts are kept in memory only"
            )),
        }
        (log, warnings)
    }

    /// custos starts in boot `id`. In a boot not seen before: settles how the previous boot
    /// ended (`watchdog_reset`: the driver reports this boot began with one) and adds this one.
    /// Again in the same boot: it goes on (an orderly stop in between did not end it). An empty
    /// id (no /proc) cannot be told apart: every start of custos is then a new boot.
    pub fn begin(&mut self, id: &str, wall: u64, watchdog_reset: bool) -> Begin {
        if let Some(cur) = self.ring.back_mut() {
            if !id.is_empty() && cur.id.as_str() == id {
                if cur.end == End::Orderly {
                    cur.end = End::Running;
                    self.dirty = true;
                }
                return Begin::Again;
            }
        }
        let prev = self.ring.back_mut().map(|p| {
            if p.end == End::Running {
                p.end = if watchdog_reset {
                    End::Watchdog
                } else {
                    End::Unexplained
                };
            }
            p.clone()
        });
        if self.ring.is_full() {
            self.ring.pop_front();
        }
        let mut boot = BootId::new();
        let _ = boot.push_str(id);
        let _ = self.ring.push_back(Boot {
            time: wall,
            id: boot,
            end: End::Running,
            good: false,
            degraded: false,
            gate: None,
        });
        self.dirty = true;
        Begin::New(prev)
    }

    /// The guard over the boots before this one.
    pub fn verdict(&self, cfg: &BootConfig) -> Verdict {
        verdict(self.ring.iter().rev().skip(1), cfg)
    }

    /// This boot (after `begin`).
    pub fn current(&self) -> Option<&Boot> {
        self.ring.back()
    }

    /// All boots, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Boot> + '_ {
        self.ring.iter()
    }

    fn change(&mut self, f: impl FnOnce(&mut Boot) -> bool) {
        if let Some(cur) = self.ring.back_mut() {
            if f(cur) {
                self.dirty = true;
            }
        }
    }

    pub fn set_degraded(&mut self) {
        self.change(|b| !std::mem::replace(&mut b.degraded, true));
    }

    /// Keeps the gate's verdict for this boot (once: a second verdict changes nothing).
    pub fn set_gate(&mut self, v: GateVerdict) {
        self.change(|b| {
            if b.gate.is_some() {
                return false;
            }
            b.gate = Some(v);
            true
        });
    }

    pub fn mark_good(&mut self) {
        self.change(|b| !std::mem::replace(&mut b.good, true));
    }

    /// This boot ends: `Orderly` (custos stops) or `Reboot` (custos asks for one). A reboot
    /// request stays: an orderly stop after it does not undo it.
    pub fn end(&mut self, end: End) {
        self.change(|b| {
            if b.end == End::Reboot || b.end == end {
                return false;
            }
            b.end = end;
            true
        });
    }

    /// When the loop should call `flush` again: `None` when nothing waits.
    pub fn flush_due(&self) -> Option<Duration> {
        (self.dirty && self.writer.is_some()).then_some(self.retry_at)
    }

    /// Picks up the writer's outcome (a failure is said once) and hands over a snapshot if the
    /// ring changed. Never waits.
    pub fn flush(&mut self, now: Duration) -> Option<String> {
        let warning = self.collect();
        if self.flush_due().is_some_and(|t| t <= now) {
            self.hand_over(now, false);
        }
        warning
    }

    /// Hands over what changed, waiting for the mailbox's lock (held only for a swap) but not
    /// for the disk: before an exit, so that this write runs while custos waits for the record.
    pub fn hand_over_now(&mut self, now: Duration) {
        if self.dirty {
            self.hand_over(now, true);
        }
    }

    /// Before custos exits or reboots: hands over what changed and waits at most `bound`.
    pub fn finish(&mut self, now: Duration, bound: Duration) -> Option<String> {
        if self.dirty {
            self.hand_over(now, true);
        }
        let w = self.writer.as_ref()?;
        if !w.wait_idle(bound) {
            return Some(format!(
                "boots: writing {} did not finish within {}s (a slow disk); this boot's end may not be in it",
                self.path().display(),
                bound.as_secs_f32()
            ));
        }
        self.collect()
    }

    /// Files written so far (as far as the loop has picked up).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(|| PathBuf::from(FILE_NAME), |d| d.join(FILE_NAME))
    }

    fn hand_over(&mut self, now: Duration, wait: bool) {
        let Some(w) = &self.writer else { return };
        if w.post(serialize(&self.ring), wait) {
            self.dirty = false;
        } else {
            self.retry_at = now + LOCK_RETRY;
        }
    }

    fn collect(&mut self) -> Option<String> {
        let (written, outcome) = self.writer.as_ref()?.take_outcome(false)?;
        self.writes += written;
        match outcome? {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) => {
                self.dirty = true;
                if std::mem::replace(&mut self.failing, true) {
                    return None;
                }
                Some(format!(
                    "boots: cannot write {} ({e}); kept in memory and tried again",
                    self.path().display()
                ))
            }
        }
    }
}

/// The guard's settings in words, for `custos check`.
pub fn describe(cfg: &BootConfig, state_dir: &Path) -> String {
    format!(
        "boot-loop guard: counts boots in {} (not wall time); a boot is bad if it ended in a reboot custos requested, or in a watchdog reset or unexplained before custos had run {} in it; more than {} bad boot(s) since the last {} good boot(s) in a row -> no reboot escalation (on_exhausted = \"reboot\") in this boot; works with or without [watchdog]",
        state_dir.join(FILE_NAME).display(),
        Dur(cfg.good_after),
        cfg.max_resets,
        cfg.clear_after
    ) + &describe_gate(cfg)
}

/// The gate's settings in words (a second line), or nothing.
fn describe_gate(cfg: &BootConfig) -> String {
    let Some(g) = &cfg.gate else {
        return String::new();
    };
    let prog = |a: &Option<crate::config::Argv>| {
        a.as_ref()
            .map_or_else(|| "nothing".to_string(), |a| format!("run `{a}`"))
    };
    format!(
        "\nboot-health gate: once per boot: when every service marked vital has run and passed its checks for {} without a break -> healthy: {}; not reached within {} of custos's start -> unhealthy: {}; each program bounded by {} (then its process group is killed); the verdict is kept per boot id, so a custos started again in the same boot does not run a program twice",
        Dur(g.healthy_after),
        prog(&g.on_healthy),
        Dur(g.deadline),
        prog(&g.on_unhealthy),
        Dur(g.timeout)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Entry, Kind, Record};

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("custos-boot-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn open_clean(dir: &Path) -> BootLog {
        let (b, w) = BootLog::open(dir);
        assert!(w.is_empty(), "{w:?}");
        b
    }

    fn settle(b: &mut BootLog) {
        assert!(b.finish(Duration::ZERO, Duration::from_secs(10)).is_none());
    }

    /// Twelve boots, each a crash loop of one service (a give-up cycle: about 25 events in the
    /// record) ended by a watchdog reset. With max_resets = 3 the guard trips at boot 5 (four
    /// earlier boots ended in a reset) and stays on: the record's events never evict boots.
    #[test]
    fn the_guard_trips_at_the_fifth_boot_of_a_crash_loop() {
        let dir = tmpdir("crashloop");
        let mut record = Record::in_memory();
        let cfg = BootConfig::default();
        let mut tripped = Vec::new();
        let mut counts = Vec::new();
        for n in 1..=12 {
            // Each boot is a new custos reading the file the last one left.
            let mut boots = open_clean(&dir);
            let begin = boots.begin(&id(n), 7, n > 1);
            if n > 1 {
                let Begin::New(Some(prev)) = begin else {
                    panic!("boot {n}: {begin:?}")
                };
                assert_eq!(prev.end, End::Watchdog);
                assert_eq!(prev.id.as_str(), id(n - 1));
            }
            let v = boots.verdict(&cfg);
            counts.push(v.bad);
            tripped.push(v.tripped);
            for i in 0..12 {
                let e = |k| Entry::new(i, &id(n), "svc", k, "crash");
                record.push(e(Kind::Died), Duration::ZERO);
                record.push(e(Kind::Started), Duration::ZERO);
            }
            settle(&mut boots);
        }
        assert_eq!(counts, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(
            tripped,
            [false, false, false, false, true, true, true, true, true, true, true, true]
        );
        let text = fs::read_to_string(dir.join(FILE_NAME)).expect("read");
        assert_eq!(text.lines().count(), 13, "{text}");
        let _ = fs::remove_dir_all(&dir);
    }

    fn boot(end: End, good: bool) -> Boot {
        Boot {
            time: 0,
            id: BootId::new(),
            end,
            good,
            degraded: false,
            gate: None,
        }
    }

    #[test]
    fn the_rule_counts_bad_boots_until_enough_good_ones_in_a_row() {
        use End::*;
        let cfg = BootConfig {
            max_resets: 2,
            clear_after: 2,
            good_after: Duration::from_secs(60),
            gate: None,
        };
        // Newest first.
        let v = |list: &[Boot]| verdict(list.iter(), &cfg);
        let bad = boot(Unexplained, false);
        let good = boot(Orderly, false);
        assert_eq!(v(&[]).bad, 0);
        assert!(!v(&[bad.clone(), bad.clone()]).tripped);
        assert!(v(&[bad.clone(), bad.clone(), bad.clone()]).tripped);
        // One good boot does not clear; two in a row do.
        let one = [good.clone(), bad.clone(), bad.clone(), bad.clone()];
        assert_eq!(v(&one).bad, 3);
        assert!(v(&one).tripped);
        let two = [
            good.clone(),
            good.clone(),
            bad.clone(),
            bad.clone(),
            bad.clone(),
        ];
        assert_eq!(
            v(&two),
            Verdict {
                bad: 0,
                looked: 2,
                tripped: false
            }
        );
        // Good boots that are not in a row do not clear.
        let gaps = [
            bad.clone(),
            good.clone(),
            bad.clone(),
            good.clone(),
            bad.clone(),
        ];
        assert!(v(&gaps).tripped);
        // What counts: custos's own reboot requests always; a reset or an unexplained end
        // only before good_after; an orderly end never.
        assert!(boot(Reboot, true).bad());
        assert!(boot(Watchdog, false).bad());
        assert!(!boot(Watchdog, true).bad());
        assert!(!boot(Unexplained, true).bad());
        assert!(!boot(Orderly, false).bad());
        // max_resets = 0: the first bad boot trips.
        let zero = BootConfig {
            max_resets: 0,
            ..cfg.clone()
        };
        assert!(verdict([boot(Reboot, false)].iter(), &zero).tripped);
    }

    #[test]
    fn ends_are_settled_at_the_next_boot_and_a_respawn_is_not_a_boot() {
        let dir = tmpdir("ends");
        let mut b = open_clean(&dir);
        assert_eq!(b.begin(&id(1), 1, false), Begin::New(None));
        b.end(End::Orderly);
        settle(&mut b);
        // custos started again in the same boot: the boot goes on.
        let mut b = open_clean(&dir);
        assert_eq!(b.begin(&id(1), 2, false), Begin::Again);
        assert_eq!(b.current().map(|c| c.end), Some(End::Running));
        b.end(End::Reboot);
        b.end(End::Orderly);
        assert_eq!(
            b.current().map(|c| c.end),
            Some(End::Reboot),
            "a reboot request stays"
        );
        settle(&mut b);
        let mut b = open_clean(&dir);
        let Begin::New(Some(prev)) = b.begin(&id(2), 3, true) else {
            panic!()
        };
        assert_eq!(
            prev.end,
            End::Reboot,
            "custos's reboot, done by the watchdog"
        );
        b.mark_good();
        b.set_degraded();
        b.set_gate(GateVerdict::Healthy);
        // Once per boot: a second verdict changes nothing.
        b.set_gate(GateVerdict::Unhealthy);
        settle(&mut b);
        let mut b = open_clean(&dir);
        let Begin::New(Some(prev)) = b.begin(&id(3), 4, false) else {
            panic!()
        };
        assert_eq!(
            (prev.end, prev.good, prev.degraded, prev.gate),
            (End::Unexplained, true, true, Some(GateVerdict::Healthy))
        );
        settle(&mut b);
        let text = fs::read_to_string(dir.join(FILE_NAME)).expect("read");
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                format!("1970-01-01T00:00:01Z\t{}\treboot\t-", id(1)),
                format!(
                    "1970-01-01T00:00:03Z\t{}\tunexplained\tgood,degraded,healthy",
                    id(2)
                ),
                format!("1970-01-01T00:00:04Z\t{}\trunning\t-", id(3)),
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_ring_is_bounded_and_a_corrupt_file_is_moved_aside() {
        let dir = tmpdir("ring");
        let mut b = open_clean(&dir);
        for n in 0..(MAX_BOOTS as u32 + 5) {
            b.begin(&id(n), 253_402_300_799, true);
            b.mark_good();
            b.set_degraded();
            b.set_gate(GateVerdict::Unhealthy);
        }
        settle(&mut b);
        let data = fs::read(dir.join(FILE_NAME)).expect("read");
        assert!(data.len() <= MAX_FILE_BYTES, "{}", data.len());
        let b = open_clean(&dir);
        assert_eq!(b.iter().count(), MAX_BOOTS);
        assert_eq!(b.iter().next().map(|x| x.id.to_string()), Some(id(5)));
        let mut cut = data.clone();
        cut.truncate(data.len() - 3);
        fs::write(dir.join(FILE_NAME), &cut).expect("write");
        let (b, w) = BootLog::open(&dir);
        assert_eq!(b.iter().count(), 0);
        assert!(w[0].contains("is corrupt (truncated"), "{w:?}");
        assert!(dir.join(CORRUPT_NAME).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("mod.rs");
        let start = doc.find("//! custos-boots v1").expect("example");
        let example: String = doc[start..]
            .lines()
            .take(3)
            .map(|l| format!("{}\n", l.trim_start_matches("//! ").replace('→', "\t")))
            .collect();
        let ring = parse(example.as_bytes()).expect("the example is a valid file");
        assert_eq!(ring.len(), 2);
        assert_eq!(serialize(&ring), example.as_bytes());
    }
}

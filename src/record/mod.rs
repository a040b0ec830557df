//! The death record: the last `MAX_RECORDS` events — deaths, starts, restarts, give-ups,
//! watchdog resets, custos's own start and stop — kept in a fixed ring in memory and in one text
//! file, `<state_dir>/record`, that survives reboots and reads well with `cat`.
//!
//! Flash-friendly: `push` only changes memory. The file is rewritten at most once per
//! `MIN_WRITE_INTERVAL` (the poll loop asks `flush_due` when), or at once before a stop or a
//! reboot. Every write is atomic: a temporary file in the same directory, fsync, rename over the
//! record, fsync of the directory. A crash leaves the old record or the new one.
//!
//! The write budget bounds the wear whatever happens: fsyncs and bytes are earned at a fixed
//! rate (`FSYNCS_PER_HOUR`, `BYTES_PER_HOUR`) and saved up to a small burst (`FSYNC_BURST`,
//! `BYTE_BURST`); `flush` hands a write over only when the budget has it. After a quiet time
//! the next event is on the disk within `MIN_WRITE_INTERVAL`; in a crash loop or under a
//! control client reloading in a loop, a write every 150 s. Events are never dropped for the
//! budget: the next write carries them (while they are still among the last `MAX_RECORDS`).
//! In the file, repeats of one service's event are merged into one line (`serialize`), which
//! keeps a crash loop's record small. The pins file, handed over through `write_side`, spends
//! from the same byte budget. Only the writes before an exit or a reboot (`finish`,
//! `flush_now`) are not held back: they happen once per run of custos, and no control
//! command leads to them.
//!
//! The disk never delays the poll loop, which alone pets the watchdog: writes are done by a
//! writer thread that never pets. `flush` serializes the ring (memory only) and leaves the bytes
//! in a one-slot mailbox; a newer snapshot replaces one the writer has not taken yet. The loop
//! only ever try-locks the mailbox, and the writer holds that lock only to swap a snapshot or an
//! outcome in or out, never across I/O. The writer's outcomes (written, or the error) are picked up
//! by the loop's next `flush`. A slow disk (an fsync taking seconds) thus makes a late record,
//! nothing else. Only `finish`, before an exit or a reboot, waits for the writer, and that within
//! a bound it is given (`FINAL_WRITE_WAIT`).
//!
//! The writer is started by `open`, which must therefore run after the signal mask is set: a
//! thread inherits its creator's mask (pthread_create), so the writer keeps the handled signals
//! blocked and they all reach the signalfd; none can kill custos by landing on the writer. It
//! does not get in the way of forking scripts either: a fork copies only the forking thread, std's
//! `Command` runs only async-signal-safe code between fork (or posix_spawn) and exec, and the
//! writer's files are opened close-on-exec, so none leaks into a script.
//!
//! Nothing here stops custos: a missing, unwritable or corrupt record is a `Warning` the caller
//! logs, and the record then starts empty, or lives in memory only.
//!
//! File format, version 1 (all UTF-8; the header's CRC-32 (IEEE) and byte count cover the body,
//! i.e. everything after the header's newline):
//!
//! ```text
//! custos-record v1 entries=2 bytes=188 crc32=ef4f1e17
//! 2024-11-25T08:22:01Z→0f3c4e2a-9b1d-4c55-8e0a-3f6f1a2b7c9d→→custos-start→custos 0.1.0
//! 2024-11-25T08:22:07Z→0f3c4e2a-9b1d-4c55-8e0a-3f6f1a2b7c9d→sshd→died→killed by SIGKILL (pid 123, up 5s)
//! ```
//!
//! (→ is a tab.) One line per entry, oldest first, five fields separated by one tab: wall-clock
//! time in UTC, boot id, service (empty for custos-wide events), kind, text. In the service and
//! the text a backslash is written `\\`, a tab `\t`, a newline `\n`, a carriage return `\r` and
//! any other control character `\xHH`, so a line never holds a raw tab or newline of its own.
//!
//! Bounds: `MAX_RECORDS` entries; text `MAX_TEXT` bytes (cut at a char boundary); one line at most
//! `MAX_LINE_BYTES`, the file at most `MAX_FILE_BYTES` (about 54 KiB; a typical record of 64
//! entries is 7 to 10 KiB). A larger file is treated as corrupt and never read whole.
//!
//! Here: the ring (`Record`) and its bounds. `entry`: one event and its time stamp; `format`:
//! the file's bytes, written and parsed; `writer`: the writer thread and its atomic writes;
//! `budget`: the flash-write budget.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heapless::{Deque, String as HString, Vec as HVec};

use crate::clock::Mono;
use crate::limits::MAX_NAME;

mod budget;
mod entry;
mod format;
mod writer;

use budget::Budget;
pub(crate) use entry::parse_utc;
pub use entry::{read_boot_id, Entry, Kind, Utc};
pub use format::{crc32, parse, Corruption};
use format::{read_file, serialize};
use writer::RECORD_NAMES;
pub(crate) use writer::{usable_dir, Names, Writer};

/// Entries kept, in memory and in the file; the oldest is dropped when a new one comes.
pub const MAX_RECORDS: usize = 64;
/// Bytes of an entry's text; longer texts are cut at a char boundary.
pub const MAX_TEXT: usize = 160;
/// Characters of a boot id (/proc/sys/kernel/random/boot_id, a UUID).
pub const BOOT_ID_LEN: usize = 36;
/// The file is rewritten at most this often, except by `flush_now`.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(5);
/// The flash-write budget: fsyncs earned per hour (one every 75 s) ...
pub const FSYNCS_PER_HOUR: u64 = 48;
/// ... and how many may be saved up for a burst after a quiet time.
pub const FSYNC_BURST: u64 = 8;
/// Bytes earned per hour (about 0.9 s per byte) ...
pub const BYTES_PER_HOUR: u64 = 40 * 1024;
/// ... and how many may be saved up. A write starts while the byte balance is above zero and
/// may take it below (a record larger than the balance is not held back for ever).
pub const BYTE_BURST: u64 = 8 * 1024;
/// Fsyncs of one record write: the temporary file, the directory after the rename.
const FSYNCS_PER_WRITE: u64 = 2;
/// In the file, an entry is merged into the next one of the same service and kind when that
/// comes within this time: a crash loop or a reload loop becomes one line per kind of event.
pub const MERGE_GAP: u64 = 300;
/// The record's file name in `state_dir`.
pub const FILE_NAME: &str = "record";
/// Where a corrupt record is moved aside (replacing an older one).
pub const CORRUPT_NAME: &str = "record.corrupt";
/// The temporary file of an atomic write.
pub const TEMP_NAME: &str = "record.tmp";
/// How long `finish` waits for the last write before custos exits or reboots. A slower disk
/// loses the newest events; the file on it stays whole (the old record or the new one).
pub const FINAL_WRITE_WAIT: Duration = Duration::from_secs(3);
/// When the loop finds the mailbox locked (the writer is swapping a snapshot, for microseconds),
/// it tries again this soon instead of waiting.
const LOCK_RETRY: Duration = Duration::from_millis(10);
/// The writer thread's stack: it opens, writes, renames and fsyncs; the bytes are on the heap.
const WRITER_STACK: usize = 64 * 1024;

const VERSION: u32 = 1;
/// Longest field after escaping: every byte of a text may become `\xHH`.
const MAX_ESCAPED_TEXT: usize = 4 * MAX_TEXT;
/// Longest kind name ("watchdog-reset").
const MAX_KIND: usize = 16;
/// "2024-11-25T08:22:01Z" (years up to 9999).
const TIME_LEN: usize = 20;
/// One entry line, newline included.
pub const MAX_LINE_BYTES: usize =
    TIME_LEN + 1 + BOOT_ID_LEN + 1 + 4 * MAX_NAME + 1 + MAX_KIND + 1 + MAX_ESCAPED_TEXT + 1;
/// The header line, newline included (generous).
const MAX_HEADER_BYTES: usize = 96;
/// The largest record file custos writes or reads.
pub const MAX_FILE_BYTES: usize = MAX_HEADER_BYTES + MAX_RECORDS * MAX_LINE_BYTES;
const _: () = assert!(
    MAX_FILE_BYTES < 56 * 1024,
    "the bound the module doc states"
);

pub type BootId = HString<BOOT_ID_LEN>;
pub type ServiceName = HString<MAX_NAME>;
pub type Text = HString<MAX_TEXT>;

/// Something the caller should log (as a warning); none of them stops custos.
#[derive(Debug)]
pub enum Warning {
    /// The state directory cannot hold the record: it is kept in memory only and lost at reboot.
    MemoryOnly { dir: PathBuf, error: io::Error },
    /// The file was corrupt: moved aside to `moved_to` (when that worked); the record starts empty.
    Corrupt {
        path: PathBuf,
        why: Corruption,
        moved_to: Option<PathBuf>,
    },
    /// The file could not be read; the record starts empty and will replace it.
    Unreadable { path: PathBuf, error: io::Error },
    /// Writing the record failed; it stays in memory and is retried. Said once until a write
    /// succeeds again.
    WriteFailed { path: PathBuf, error: io::Error },
    /// The writer thread could not be started: the record is kept in memory only.
    NoWriter { error: io::Error },
    /// `finish` gave up waiting for the disk: the newest events may not be in the file.
    Unfinished { path: PathBuf, waited: Duration },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::MemoryOnly { dir, error } => write!(
                f,
                "record: state_dir {} is not usable ({error}): the record of events is kept in memory only and lost at reboot",
                dir.display()
            ),
            Warning::Corrupt {
                path,
                why,
                moved_to,
            } => {
                write!(f, "record: {} is corrupt ({why}); ", path.display())?;
                match moved_to {
                    Some(p) => write!(f, "moved to {}; ", p.display())?,
                    None => f.write_str("it could not be moved aside and will be replaced; ")?,
                }
                f.write_str("starting an empty record")
            }
            Warning::Unreadable { path, error } => write!(
                f,
                "record: cannot read {} ({error}); starting an empty record",
                path.display()
            ),
            Warning::WriteFailed { path, error } => write!(
                f,
                "record: cannot write {} ({error}); kept in memory, retried every {}s or as the write budget allows",
                path.display(),
                MIN_WRITE_INTERVAL.as_secs()
            ),
            Warning::NoWriter { error } => write!(
                f,
                "record: cannot start its writer thread ({error}): the record of events is kept in memory only and lost at reboot"
            ),
            Warning::Unfinished { path, waited } => write!(
                f,
                "record: writing {} did not finish within {}s (a slow disk); the newest events may not be in it",
                path.display(),
                waited.as_secs_f32()
            ),
        }
    }
}

/// The warnings of `open`: at most one about the file and one about the directory or the writer.
pub type OpenWarnings = HVec<Warning, 2>;

/// The ring of the last `MAX_RECORDS` events, and its file.
pub struct Record {
    /// Where the file is; `None` when it cannot be written there.
    dir: Option<PathBuf>,
    /// `None`: memory only.
    writer: Option<Writer>,
    entries: Deque<Entry, MAX_RECORDS>,
    boot: BootId,
    /// Changed since the last snapshot handed to the writer (or a write of it failed).
    dirty: bool,
    /// The last hand-over found the mailbox locked and waits for its retry.
    deferred: bool,
    /// A side file that found the mailbox locked, for the next `flush`.
    side_pending: Option<(&'static str, Vec<u8>)>,
    /// The earliest time (supervisor clock) the next snapshot may be handed over.
    next_write: Mono,
    /// The last write failed (and was reported).
    failing: bool,
    writes: u64,
    /// What the writes handed over so far may still spend.
    budget: Budget,
}

impl Record {
    /// A record that is never written.
    pub fn in_memory() -> Record {
        Record {
            dir: None,
            writer: None,
            entries: Deque::new(),
            boot: read_boot_id(),
            dirty: false,
            deferred: false,
            side_pending: None,
            next_write: Duration::ZERO,
            failing: false,
            writes: 0,
            budget: Budget::default(),
        }
    }

    /// Loads `<state_dir>/record` (in the caller's thread: custos does it before it opens the
    /// watchdog) and starts the writer thread, which inherits the caller's signal mask. Creates
    /// `state_dir` when it is missing. Never fails: what went wrong comes back as warnings for the
    /// caller to log.
    pub fn open(state_dir: &Path) -> (Record, OpenWarnings) {
        let mut rec = Record::in_memory();
        let mut warnings = OpenWarnings::new();
        let path = state_dir.join(FILE_NAME);
        if let Err(error) = usable_dir(state_dir) {
            // Still read an existing record (a read-only dir may hold one from before).
            if let Ok(Ok(entries)) = read_file(&path) {
                rec.entries = entries;
            }
            let _ = warnings.push(Warning::MemoryOnly {
                dir: state_dir.to_path_buf(),
                error,
            });
            return (rec, warnings);
        }
        match read_file(&path) {
            Ok(Ok(entries)) => rec.entries = entries,
            Ok(Err(why)) => {
                let aside = state_dir.join(CORRUPT_NAME);
                let moved_to = fs::rename(&path, &aside).ok().map(|_| aside);
                // Not moved: write an empty record over it at the first flush.
                rec.dirty = moved_to.is_none();
                let _ = warnings.push(Warning::Corrupt {
                    path,
                    why,
                    moved_to,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                rec.dirty = true;
                let _ = warnings.push(Warning::Unreadable { path, error });
            }
        }
        match Writer::start(state_dir, RECORD_NAMES) {
            Ok(w) => {
                rec.dir = Some(state_dir.to_path_buf());
                rec.writer = Some(w);
            }
            Err(error) => {
                let _ = warnings.push(Warning::NoWriter { error });
            }
        }
        (rec, warnings)
    }

    /// This boot's id, as entries made by `event` carry it.
    pub fn boot_id(&self) -> &str {
        &self.boot
    }

    /// Whether the record is kept in memory only.
    pub fn memory_only(&self) -> bool {
        self.writer.is_none()
    }

    /// Adds an entry, dropping one when full: the oldest of the same service and kind if there
    /// is one, else the oldest. Memory only: the file follows at `flush`. `now` is the
    /// supervisor clock; it is not stored.
    ///
    /// A repeat replaces the oldest like it, not the oldest entry: under the write budget an
    /// event may wait minutes for the disk, and a loop of one event (a reload loop, a crash
    /// loop) must not push a lone death out of the ring before it is written. The run of
    /// repeats still shows in the file as one merged line.
    pub fn push(&mut self, entry: Entry, now: Mono) {
        let _ = now;
        if self.entries.is_full() {
            let like = self
                .entries
                .iter()
                .position(|e| e.kind == entry.kind && e.service == entry.service)
                .unwrap_or(0);
            // Swapping the oldest with each entry up to the one dropped moves that one to the
            // front and the others one place on, in order; then the front goes.
            let mut it = self.entries.iter_mut();
            if let Some(first) = it.next() {
                for e in it.take(like) {
                    std::mem::swap(first, e);
                }
            }
            self.entries.pop_front();
        }
        // Room was made above.
        let _ = self.entries.push_back(entry);
        self.dirty = true;
    }

    /// Adds an event of this boot, stamped with the wall clock now.
    pub fn event(&mut self, kind: Kind, service: &str, text: impl fmt::Display, now: Mono) {
        let e = Entry::new(crate::clock::wall_now(), &self.boot, service, kind, text);
        self.push(e, now);
    }

    /// When `flush` will hand a snapshot to the writer (on the supervisor clock): `None` when
    /// there is nothing to write. The poll loop sleeps no longer than this.
    ///
    /// A record write waits for the interval and for the write budget; a side file only for
    /// the byte budget (at once after a quiet time), or goes with a record write.
    pub fn flush_due(&self) -> Option<Mono> {
        self.writer.as_ref()?;
        let record = self
            .dirty
            .then(|| self.next_write.max(self.budget.ready(FSYNCS_PER_WRITE)));
        let side = self
            .side_pending
            .as_ref()
            .map(|_| self.budget.bytes_ready());
        match (record, side) {
            (Some(r), Some(s)) => Some(r.min(s)),
            (r, s) => r.or(s),
        }
    }

    /// Picks up what the writer did (a failed write is reported once, and retried after
    /// `MIN_WRITE_INTERVAL`), then hands it a snapshot if the record changed and the last one
    /// was handed over `MIN_WRITE_INTERVAL` ago. Never waits: call it on every pass of the loop.
    pub fn flush(&mut self, now: Mono) -> Option<Warning> {
        let warning = self.collect();
        if self.dirty && self.next_write.max(self.budget.ready(FSYNCS_PER_WRITE)) <= now {
            self.hand_over(now, false);
            // The pins go with it, whatever they cost: one side write per record write.
            self.post_side(now, true);
        } else if self.side_pending.is_some() && self.budget.bytes_ready() <= now {
            self.post_side(now, true);
        }
        warning
    }

    /// Hands the pending side file to the writer and spends its bytes; `charge` false for the
    /// writes before an exit or a reboot, which the budget does not hold back.
    fn post_side(&mut self, now: Mono, charge: bool) {
        let (Some((name, data)), Some(w)) = (self.side_pending.take(), &self.writer) else {
            return;
        };
        let len = data.len() as u64;
        if w.post_side(name, data.clone()) {
            if charge {
                self.budget.spend(now, 0, len);
            }
        } else {
            self.side_pending = Some((name, data));
        }
    }

    /// Has the writer thread write `data` as `state_dir/name` (a temporary file, then a rename;
    /// no fsync), off the loop: a slow disk delays the file, never the loop. The file is handed
    /// over by `flush`, within the write budget like the record (its bytes count, it needs no
    /// fsync), or with the next record write; a newer call replaces one not written yet.
    /// Without a writer (a memory-only record) nothing is written: Err.
    pub fn write_side(&mut self, name: &'static str, data: Vec<u8>) -> io::Result<()> {
        if self.writer.is_none() {
            return Err(io::Error::other("the record is kept in memory only"));
        }
        self.side_pending = Some((name, data));
        Ok(())
    }

    /// The outcome of the last side-file write, once.
    pub fn side_outcome(&mut self) -> Option<io::Result<()>> {
        self.writer.as_ref()?.take_side_outcome()
    }

    /// Like `flush`, ignoring the interval: before a stop or a reboot. Never waits.
    ///
    /// Outside the write budget: it is called only before a reboot custos asks for, which the
    /// boot-loop guard bounds; no control command reaches it.
    pub fn flush_now(&mut self, now: Mono) -> Option<Warning> {
        let warning = self.collect();
        if self.dirty {
            self.hand_over_with(now, false, false);
        }
        self.post_side(now, false);
        warning
    }

    /// Before custos exits or reboots: hands over what changed and waits until the writer has
    /// written everything, for at most `bound`. The only call here that waits.
    ///
    /// Outside the write budget: once per run of custos, before it exits or reboots.
    pub fn finish(&mut self, now: Mono, bound: Duration) -> Option<Warning> {
        if self.dirty {
            self.hand_over_with(now, true, false);
        }
        self.post_side(now, false);
        self.wait_written(bound)
    }

    /// Waits, for at most `bound`, until the writer has no snapshot in hand or in its mailbox;
    /// then picks up its outcome like `flush`.
    ///
    /// A hand-over that found the mailbox locked (the writer swapping) is made now, waiting for
    /// the lock: it was due.
    pub fn wait_written(&mut self, bound: Duration) -> Option<Warning> {
        if self.deferred && self.dirty {
            let now = crate::clock::boottime();
            self.hand_over(now, true);
        }
        let w = self.writer.as_ref()?;
        if !w.wait_idle(bound) {
            let _ = self.collect();
            return Some(Warning::Unfinished {
                path: self.file_path(),
                waited: bound,
            });
        }
        self.collect_with(true)
    }

    /// Files written so far (as far as the loop has picked up the writer's outcomes).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// All entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One service's entries, newest first.
    pub fn for_service<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .rev()
            .filter(move |e| e.service.as_str() == name)
    }

    fn file_path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(|| PathBuf::from(FILE_NAME), |d| d.join(FILE_NAME))
    }

    /// Serializes the ring (memory and CPU only) and leaves it in the writer's mailbox,
    /// replacing a snapshot not taken yet. Without `wait`, a mailbox locked at this instant is
    /// tried again `LOCK_RETRY` later.
    fn hand_over(&mut self, now: Mono, wait: bool) {
        self.hand_over_with(now, wait, true);
    }

    /// `hand_over`; with `charge`, the write is paid from the budget (a failed write too: the
    /// disk may have taken some of it).
    fn hand_over_with(&mut self, now: Mono, wait: bool, charge: bool) {
        let Some(w) = &self.writer else { return };
        let data = serialize(&self.entries);
        let len = data.len() as u64;
        if w.post(data, wait) {
            if charge {
                self.budget.spend(now, FSYNCS_PER_WRITE, len);
            }
            self.dirty = false;
            self.deferred = false;
            self.next_write = now + MIN_WRITE_INTERVAL;
        } else {
            self.deferred = true;
            self.next_write = now + LOCK_RETRY;
        }
    }

    /// The writer's outcomes since the last look (a try-lock: nothing if it is busy swapping).
    fn collect(&mut self) -> Option<Warning> {
        self.collect_with(false)
    }

    /// `collect`; with `wait`, it takes the lock even while the writer is swapping (brief).
    fn collect_with(&mut self, wait: bool) -> Option<Warning> {
        let (written, outcome) = self.writer.as_ref()?.take_outcome(wait)?;
        self.writes += written;
        match outcome? {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(error) => {
                // Retried at the next `flush` after the interval (counted from the hand-over).
                self.dirty = true;
                if self.failing {
                    return None;
                }
                self.failing = true;
                Some(Warning::WriteFailed {
                    path: self.file_path(),
                    error,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::entry::*;
    use super::format::*;
    use super::writer::*;
    use super::*;

    const BOOT: &str = "0f3c4e2a-9b1d-4c55-8e0a-3f6f1a2b7c9d";

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("custos-record-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn entry(i: u64, service: &str, kind: Kind, text: &str) -> Entry {
        Entry::new(1_732_521_600 + i, BOOT, service, kind, text)
    }

    /// Waits (bounded) until the writer thread has written what it was given; its outcome.
    fn settle(r: &mut Record) -> Option<Warning> {
        let w = r.wait_written(Duration::from_secs(10));
        assert!(!matches!(w, Some(Warning::Unfinished { .. })), "{w:?}");
        w
    }

    fn open_clean(dir: &Path) -> Record {
        let (r, w) = Record::open(dir);
        assert!(w.is_empty(), "{:?}", w);
        r
    }

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn utc_dates_round_trip() {
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Utc(1_732_522_921).to_string(), "2024-11-25T08:22:01Z");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        for t in [
            0,
            59,
            86_399,
            951_782_400,
            1_732_522_921,
            4_102_444_800 + 12_345,
        ] {
            assert_eq!(parse_utc(&Utc(t).to_string()), Some(t), "{t}");
        }
        assert_eq!(parse_utc("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_utc("2024-11-25 08:22:01Z"), None);
        assert_eq!(parse_utc("2024-11-25T24:00:00Z"), None);
        assert_eq!(parse_utc("+024-11-25T08:22:01Z"), None);
    }

    #[test]
    fn round_trip_through_the_file() {
        let dir = tmpdir("roundtrip");
        let mut r = open_clean(&dir);
        assert!(r.is_empty() && !r.memory_only());
        assert_eq!(r.flush_due(), None, "nothing to write");
        r.push(entry(0, "", Kind::CustosStart, "custos 0.1.0"), s(1));
        r.push(
            entry(6, "sshd", Kind::Died, "killed by SIGKILL (pid 123, up 5s)"),
            s(1),
        );
        r.push(entry(7, "sshd", Kind::Started, "pid 130"), s(1));
        assert_eq!(
            r.flush_due(),
            Some(Duration::ZERO),
            "first write is due at once"
        );
        assert!(r.flush(s(1)).is_none());
        assert!(settle(&mut r).is_none());
        assert_eq!(r.writes(), 1);
        assert!(!dir.join(TEMP_NAME).exists());
        let text = fs::read_to_string(dir.join(FILE_NAME)).expect("read");
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(
            header.starts_with("custos-record v1 entries=3 bytes="),
            "{header}"
        );
        assert_eq!(
            lines.next(),
            Some(format!("2024-11-25T08:00:00Z\t{BOOT}\t\tcustos-start\tcustos 0.1.0").as_str())
        );
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "2024-11-25T08:00:06Z\t{BOOT}\tsshd\tdied\tkilled by SIGKILL (pid 123, up 5s)"
                )
                .as_str()
            )
        );

        let back = open_clean(&dir);
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            r.iter().collect::<Vec<_>>()
        );
        let sshd: Vec<Kind> = back.for_service("sshd").map(|e| e.kind).collect();
        assert_eq!(sshd, [Kind::Started, Kind::Died], "newest first");
        assert_eq!(back.for_service("").count(), 1);
        assert_eq!(
            back.iter().nth(1).map(|e| e.to_string()).as_deref(),
            Some("2024-11-25T08:00:06Z sshd died: killed by SIGKILL (pid 123, up 5s)")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_ring_drops_the_oldest() {
        let dir = tmpdir("wrap");
        let mut r = open_clean(&dir);
        for i in 0..(MAX_RECORDS as u64 + 5) {
            // Further apart than MERGE_GAP: one line each in the file too.
            let e = entry(
                i * (MERGE_GAP + 1),
                "svc",
                Kind::Died,
                &format!("death {i}"),
            );
            r.push(e, s(0));
        }
        assert_eq!(r.len(), MAX_RECORDS);
        assert_eq!(r.iter().next().map(|e| e.text.as_str()), Some("death 5"));
        assert!(r.flush_now(s(0)).is_none());
        assert!(settle(&mut r).is_none());
        let back = open_clean(&dir);
        assert_eq!(back.len(), MAX_RECORDS);
        assert_eq!(back.iter().next().map(|e| e.text.as_str()), Some("death 5"));
        assert_eq!(
            back.iter().last().map(|e| e.text.as_str()),
            Some(format!("death {}", MAX_RECORDS + 4).as_str())
        );
        let size = fs::metadata(dir.join(FILE_NAME)).expect("meta").len();
        assert!(size as usize <= MAX_FILE_BYTES);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_largest_record_fits_the_stated_bound() {
        let mut entries = Deque::new();
        let worst: String = std::iter::repeat_n('\u{1}', MAX_TEXT).collect();
        let name: String = std::iter::repeat_n('\t', MAX_NAME).collect();
        for i in 0..MAX_RECORDS as u64 {
            // 9999-12-31T23:59:59Z and before, further apart than MERGE_GAP: nothing merges.
            let t = 253_402_300_799 - i * (MERGE_GAP + 1);
            let e = Entry::new(t, BOOT, &name, Kind::WatchdogReset, &worst);
            let _ = entries.push_back(e);
        }
        let data = serialize(&entries);
        assert!(
            data.len() <= MAX_FILE_BYTES,
            "{} > {MAX_FILE_BYTES}",
            data.len()
        );
        assert_eq!(parse(&data).expect("parse").len(), MAX_RECORDS);
    }

    #[test]
    fn a_flipped_byte_is_detected_and_the_file_moved_aside() {
        let dir = tmpdir("corrupt");
        let mut r = open_clean(&dir);
        r.push(entry(0, "sshd", Kind::Died, "exited with status 1"), s(0));
        r.push(entry(1, "sshd", Kind::Started, "pid 9"), s(0));
        r.flush_now(s(0));
        settle(&mut r);
        let path = dir.join(FILE_NAME);
        let mut data = fs::read(&path).expect("read");
        let at = data.len() - 3;
        data[at] ^= 0x01;
        fs::write(&path, &data).expect("write");

        let (r, w) = Record::open(&dir);
        assert!(r.is_empty());
        assert_eq!(w.len(), 1);
        assert!(
            matches!(&w[0], Warning::Corrupt { why: Corruption::BadCrc { .. }, moved_to: Some(p), .. } if *p == dir.join(CORRUPT_NAME)),
            "{:?}",
            w[0]
        );
        let msg = w[0].to_string();
        assert!(
            msg.contains("CRC mismatch") && msg.contains("record.corrupt"),
            "{msg}"
        );
        assert!(!path.exists());
        assert_eq!(fs::read(dir.join(CORRUPT_NAME)).expect("aside"), data);
        // The next open is clean: an empty record until something happens.
        let r = open_clean(&dir);
        assert_eq!(r.flush_due(), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_file_is_detected() {
        let dir = tmpdir("truncated");
        let mut r = open_clean(&dir);
        for i in 0..4 {
            r.push(
                entry(i, "a", Kind::Restarted, "check 1 failed 3 time(s) in a row"),
                s(0),
            );
        }
        r.flush_now(s(0));
        settle(&mut r);
        let path = dir.join(FILE_NAME);
        let data = fs::read(&path).expect("read");
        fs::write(&path, &data[..data.len() / 2]).expect("cut");
        let (r, w) = Record::open(&dir);
        assert!(r.is_empty());
        assert!(
            matches!(
                &w[0],
                Warning::Corrupt {
                    why: Corruption::Length { .. },
                    ..
                }
            ),
            "{:?}",
            w[0]
        );
        // Cut inside the header, and empty.
        for cut in [&data[..10], &b""[..]] {
            fs::write(&path, cut).expect("cut");
            let (r, w) = Record::open(&dir);
            assert!(r.is_empty());
            assert!(
                matches!(
                    &w[0],
                    Warning::Corrupt {
                        why: Corruption::BadHeader,
                        ..
                    }
                ),
                "{:?}",
                w[0]
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_lines_and_counts_are_corruption() {
        let body = format!("2024-11-25T08:00:00Z\t{BOOT}\tsshd\texploded\tboom\n");
        let file = format!(
            "custos-record v1 entries=1 bytes={} crc32={:08x}\n{body}",
            body.len(),
            crc32(body.as_bytes())
        );
        assert_eq!(parse(file.as_bytes()).err(), Some(Corruption::BadLine(2)));
        let body = format!("2024-11-25T08:00:00Z\t{BOOT}\tsshd\tdied\tboom\n");
        let file = format!(
            "custos-record v1 entries=2 bytes={} crc32={:08x}\n{body}",
            body.len(),
            crc32(body.as_bytes())
        );
        assert_eq!(
            parse(file.as_bytes()).err(),
            Some(Corruption::Count {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            parse(b"custos-record v2 entries=0 bytes=0 crc32=00000000\n").err(),
            Some(Corruption::Version(2))
        );
        assert_eq!(
            parse(b"custos-record v1 entries=0 bytes=0 crc32=00000000\n").map(|d| d.len()),
            Ok(0)
        );
    }

    #[test]
    fn an_unusable_state_dir_keeps_the_record_in_memory_and_says_so_once() {
        let dir = tmpdir("notdir");
        let file = dir.join("file-not-dir");
        fs::write(&file, "x").expect("file");
        let state = file.join("state");
        let (mut r, w) = Record::open(&state);
        assert!(r.memory_only());
        assert_eq!(w.len(), 1);
        assert!(
            matches!(&w[0], Warning::MemoryOnly { error, .. } if error.raw_os_error() == Some(libc::ENOTDIR)),
            "{:?}",
            w[0]
        );
        assert!(w[0].to_string().contains("in memory only"), "{}", w[0]);
        r.push(entry(0, "x", Kind::Died, "gone"), s(0));
        assert_eq!(
            r.flush_due(),
            None,
            "never due: nothing to wake the loop for"
        );
        assert!(r.flush(s(10)).is_none());
        assert!(r.flush_now(s(20)).is_none());
        assert_eq!(r.len(), 1);
        assert_eq!(r.writes(), 0);
        // A state_dir that is itself a file.
        let (r, w) = Record::open(&file);
        assert!(r.memory_only() && w.len() == 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_state_dir_is_created() {
        let dir = tmpdir("mkdir");
        let state = dir.join("var/lib/custos");
        let mut r = open_clean(&state);
        assert!(!r.memory_only());
        r.event(Kind::CustosStart, "", "custos 0.1.0", s(0));
        assert!(r.flush(s(0)).is_none());
        assert!(settle(&mut r).is_none());
        let back = open_clean(&state);
        assert_eq!(back.len(), 1);
        assert_eq!(
            back.iter().next().map(|e| e.boot.clone()),
            Some(read_boot_id())
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_write_failure_is_reported_once_and_retried() {
        let dir = tmpdir("writefail");
        let state = dir.join("state");
        let mut r = open_clean(&state);
        r.push(entry(0, "x", Kind::Died, "gone"), s(0));
        // The directory disappears under custos (and a file takes its place).
        fs::remove_dir_all(&state).expect("rm");
        fs::write(&state, "").expect("file");
        assert!(
            r.flush(s(0)).is_none(),
            "handed over: the writer fails later"
        );
        let w = settle(&mut r);
        assert!(
            matches!(&w, Some(Warning::WriteFailed { path, .. }) if *path == state.join(FILE_NAME)),
            "{w:?}"
        );
        assert_eq!(r.flush_due(), Some(s(5)), "retried after the interval");
        assert!(r.flush(s(4)).is_none());
        assert!(r.flush(s(5)).is_none());
        assert!(settle(&mut r).is_none(), "said once");
        assert_eq!(r.flush_due(), Some(s(10)), "retried again");
        fs::remove_file(&state).expect("rm");
        fs::create_dir(&state).expect("mkdir");
        assert!(r.flush(s(10)).is_none());
        assert!(settle(&mut r).is_none());
        assert_eq!(r.flush_due(), None);
        assert_eq!(r.writes(), 1);
        assert_eq!(open_clean(&state).len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    /// The writer's mailbox, as the loop would see it if it waited: (busy, snapshot waiting).
    fn mailbox(r: &Record) -> (bool, Option<Vec<u8>>) {
        let m = lock(&r.writer.as_ref().expect("writer").shared.mailbox);
        (m.busy, m.next.clone())
    }

    #[test]
    fn the_loop_never_waits_for_a_stuck_writer_and_a_newer_snapshot_replaces_an_unwritten_one() {
        let dir = tmpdir("stuck");
        let mut r = open_clean(&dir);
        // The writer's temporary file is a FIFO: its open blocks until a reader comes, as
        // long as any stuck disk.
        let fifo = dir.join(TEMP_NAME);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        r.push(entry(0, "a", Kind::Died, "first"), s(0));
        let first = serialize(&r.entries);
        assert!(r.flush(s(0)).is_none());
        let t0 = std::time::Instant::now();
        while !mailbox(&r).0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the writer never took it"
            );
            std::thread::sleep(Duration::from_millis(5));
            // The writer thread, just started, held the mailbox at the hand-over: it is retried
            // `LOCK_RETRY` later, as the loop would.
            if r.deferred {
                assert!(r.flush(s(0) + LOCK_RETRY).is_none());
            }
        }
        // The writer is stuck; the loop goes on and hands over two more snapshots.
        r.push(entry(1, "a", Kind::Started, "second"), s(1));
        assert!(r.flush_now(s(1)).is_none());
        assert_eq!(r.flush_due(), None);
        r.push(entry(2, "a", Kind::Stopped, "third"), s(2));
        assert_eq!(r.flush_due(), Some(s(6)), "the interval holds");
        assert!(r.flush(s(3)).is_none());
        assert!(r.flush_now(s(3)).is_none());
        let third = serialize(&r.entries);
        assert_eq!(
            mailbox(&r),
            (true, Some(third.clone())),
            "one slot: the third snapshot replaced the second"
        );
        // Waiting is only ever bounded.
        let t1 = std::time::Instant::now();
        let w = r.finish(s(3), Duration::from_millis(200));
        assert!(
            matches!(&w, Some(Warning::Unfinished { waited, .. }) if *waited == Duration::from_millis(200)),
            "{w:?}"
        );
        assert!(t1.elapsed() >= Duration::from_millis(200));
        assert!(
            w.is_some_and(|w| w.to_string().contains("did not finish within 0.2s")),
            "message"
        );
        assert_eq!(r.writes(), 0);

        // A reader unblocks the writer: the first snapshot goes into the FIFO (and its fsync
        // fails there), then the third is written: the second never was.
        assert_eq!(fs::read(&fifo).expect("read the fifo"), first);
        assert!(settle(&mut r).is_none(), "the last write succeeded");
        assert_eq!(r.writes(), 1);
        assert_eq!(mailbox(&r), (false, None));
        assert_eq!(fs::read(dir.join(FILE_NAME)).expect("record"), third);
        let back = open_clean(&dir);
        let texts: Vec<&str> = back.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["first", "second", "third"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn flushes_within_the_interval_write_once() {
        let dir = tmpdir("rate");
        let path = dir.join(FILE_NAME);
        let mut r = open_clean(&dir);
        r.push(entry(0, "a", Kind::Died, "one"), s(100));
        assert!(r.flush(s(100)).is_none());
        settle(&mut r);
        assert_eq!(r.writes(), 1);
        let first = fs::read_to_string(&path).expect("read");
        r.push(entry(1, "a", Kind::Started, "two"), s(101));
        assert_eq!(r.flush_due(), Some(s(105)));
        assert!(r.flush(s(101)).is_none());
        assert!(r.flush(s(104)).is_none());
        settle(&mut r);
        assert_eq!(
            r.writes(),
            1,
            "no second write within {MIN_WRITE_INTERVAL:?}"
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), first);
        assert!(r.flush(s(105)).is_none());
        settle(&mut r);
        assert_eq!(r.writes(), 2);
        assert!(fs::read_to_string(&path).expect("read").contains("\ttwo\n"));
        assert_eq!(r.flush_due(), None);
        assert!(r.flush(s(200)).is_none());
        settle(&mut r);
        assert_eq!(r.writes(), 2, "nothing changed: nothing written");
        // flush_now ignores the interval.
        r.push(entry(2, "a", Kind::Stopped, "three"), s(201));
        assert!(r.flush_now(s(201)).is_none());
        settle(&mut r);
        assert_eq!(r.writes(), 3);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Runs `events` (pushed at each simulated second, with the loop's flush after them) for
    /// an hour of the supervisor clock; returns (record writes, bytes of the files written).
    /// Every record write is two fsyncs (the file, the directory).
    fn an_hour_of(name: &str, mut events: impl FnMut(&mut Record, u64)) -> (u64, u64) {
        let dir = tmpdir(name);
        let path = dir.join(FILE_NAME);
        let mut r = open_clean(&dir);
        let mut bytes = 0;
        for t in 0..3600 {
            events(&mut r, t);
            let before = r.writes();
            assert!(r.flush(s(t)).is_none());
            settle(&mut r);
            if r.writes() > before {
                bytes += fs::metadata(&path).expect("record").len();
            }
        }
        let writes = r.writes();
        let _ = fs::remove_dir_all(&dir);
        (writes, bytes)
    }

    #[test]
    fn a_full_ring_drops_the_oldest_like_the_new_entry_and_keeps_the_order() {
        let dir = tmpdir("ring-like");
        let mut r = open_clean(&dir);
        r.push(entry(0, "x", Kind::Reload, "r0"), s(0));
        r.push(entry(1, "b", Kind::Died, "lone death"), s(0));
        for i in 2..MAX_RECORDS as u64 {
            r.push(entry(i, "", Kind::Reload, &format!("r{i}")), s(0));
        }
        assert_eq!(r.len(), MAX_RECORDS);
        // A reload: the oldest reload ("r2") goes, not "r0" of another service nor the death.
        r.push(entry(99, "", Kind::Reload, "new"), s(0));
        let texts: Vec<String> = r.iter().map(|e| e.text.to_string()).collect();
        let mut want = vec!["r0".to_string(), "lone death".to_string()];
        want.extend((3..MAX_RECORDS).map(|i| format!("r{i}")));
        want.push("new".into());
        assert_eq!(texts, want);
        // Nothing like it: the oldest goes.
        r.push(entry(100, "c", Kind::Started, "other"), s(0));
        assert_eq!(r.iter().next().map(|e| e.text.as_str()), Some("lone death"));
        assert_eq!(r.len(), MAX_RECORDS);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_crash_loop_for_an_hour_stays_within_the_write_budget() {
        // One service dying and started again every second.
        let (writes, bytes) = an_hour_of("budget-crash", |r, t| {
            let text = format!("killed by SIGKILL (pid {}, up 1s)", 1000 + t);
            r.push(entry(t, "web_server", Kind::Died, &text), s(t));
            let text = format!("pid {} (start script)", 1001 + t);
            r.push(entry(t, "web_server", Kind::Started, &text), s(t));
        });
        assert!(
            writes * 2 <= 60 && bytes <= 64 * 1024,
            "{writes} writes ({} fsyncs), {bytes} bytes in an hour",
            writes * 2
        );
    }

    #[test]
    fn a_reload_loop_for_an_hour_stays_within_the_write_budget() {
        // Twenty reloads a second through the control socket.
        let (writes, bytes) = an_hour_of("budget-reload", |r, t| {
            for _ in 0..20 {
                r.push(entry(t, "", Kind::Reload, "config reloaded"), s(t));
            }
        });
        assert!(
            writes * 2 <= 60 && bytes <= 64 * 1024,
            "{writes} writes ({} fsyncs), {bytes} bytes in an hour",
            writes * 2
        );
    }

    #[test]
    fn repeats_are_merged_in_the_file_and_the_newest_is_kept() {
        let mut entries = Deque::new();
        let mut push = |e: Entry| {
            let _ = entries.push_back(e);
        };
        push(entry(0, "", Kind::CustosStart, "custos 0.1.0"));
        for t in 1..=5 {
            push(entry(
                t,
                "web",
                Kind::Died,
                &format!("killed by SIGKILL (pid {t}, up 1s)"),
            ));
            push(entry(t, "web", Kind::Started, &format!("pid {}", t + 1)));
        }
        push(entry(6, "db", Kind::Died, "exit 1"));
        push(entry(7, "web", Kind::Died, "exit 2"));
        // Far from the last one: its own line.
        push(entry(7 + MERGE_GAP + 1, "web", Kind::Died, "much later"));
        let back = parse(&serialize(&entries)).expect("parse");
        let lines: Vec<String> = back
            .iter()
            .map(|e| format!("{} {} {}", e.service, e.kind, e.text))
            .collect();
        assert_eq!(
            lines,
            [
                " custos-start custos 0.1.0",
                "web died 4 more since 2024-11-25T08:00:01Z: killed by SIGKILL (pid 5, up 1s)",
                "web started 4 more since 2024-11-25T08:00:01Z: pid 6",
                "db died exit 1",
                "web died exit 2",
                "web died much later",
            ]
        );
    }

    #[test]
    fn a_death_after_a_quiet_hour_is_written_at_once() {
        let dir = tmpdir("budget-quiet");
        let mut r = open_clean(&dir);
        // A busy start: a few writes spend part of the budget.
        for t in 0..30 {
            r.push(entry(t, "a", Kind::Died, "x"), s(t));
            assert!(r.flush(s(t)).is_none());
            settle(&mut r);
        }
        let n = r.writes();
        // Quiet, then one death: on the disk at the loop's next pass.
        r.push(entry(3630, "a", Kind::Died, "after the quiet"), s(3630));
        assert!(r.flush(s(3630)).is_none());
        settle(&mut r);
        assert_eq!(r.writes(), n + 1);
        assert!(fs::read_to_string(dir.join(FILE_NAME))
            .expect("read")
            .contains("after the quiet"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn texts_are_escaped_and_cut_at_a_char_boundary() {
        let dir = tmpdir("escape");
        let mut r = open_clean(&dir);
        let nasty = "tab\there\nnew line\\back\r\u{1}\u{7f}é";
        r.push(entry(0, "a\tb", Kind::Died, nasty), s(0));
        let long = format!("{}é", "a".repeat(MAX_TEXT - 1));
        r.push(entry(1, "", Kind::Died, &long), s(0));
        r.flush_now(s(0));
        settle(&mut r);
        let text = fs::read_to_string(dir.join(FILE_NAME)).expect("read");
        let line = text.lines().nth(1).expect("line");
        assert_eq!(line.matches('\t').count(), 4, "{line:?}");
        assert!(
            line.ends_with("\ta\\tb\tdied\ttab\\there\\nnew line\\\\back\\r\\x01\\x7fé"),
            "{line:?}"
        );
        let back = open_clean(&dir);
        let e: Vec<&Entry> = back.iter().collect();
        assert_eq!(e[0].text.as_str(), nasty);
        assert_eq!(e[0].service.as_str(), "a\tb");
        assert_eq!(e[1].text.len(), MAX_TEXT - 1, "é did not fit whole");
        assert!(e[1].text.bytes().all(|b| b == b'a'));
        assert_eq!(unescape::<8>("bad\\q"), None);
        assert_eq!(unescape::<8>("end\\"), None);
        assert_eq!(unescape::<2>("abc"), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("mod.rs");
        let start = doc.find("//! custos-record v1").expect("example");
        let example: String = doc[start..]
            .lines()
            .take(3)
            .map(|l| format!("{}\n", l.trim_start_matches("//! ").replace('→', "\t")))
            .collect();
        let entries = parse(example.as_bytes()).expect("the example is a valid record");
        assert_eq!(entries.len(), 2);
        assert_eq!(serialize(&entries), example.as_bytes());
    }

    #[test]
    fn kinds_round_trip() {
        for (k, w) in KINDS {
            assert_eq!(Kind::parse(w), Some(k));
            assert_eq!(k.as_str(), w);
            assert!(w.len() <= MAX_KIND);
        }
    }
}

#[cfg(test)]
mod fifo_tests {
    use super::*;

    #[test]
    fn a_fifo_in_place_of_the_record_is_refused_not_waited_on() {
        let dir = std::env::temp_dir().join(format!("custos-rec-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let fifo = dir.join(FILE_NAME);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_file(&fifo).expect_err("a FIFO");
        assert!(
            e.to_string().contains("is a FIFO, not a regular file"),
            "{e}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

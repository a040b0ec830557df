//! The pins file: what custos pinned in this boot, so that a respawned or upgraded custos adopts
//! exactly those processes again, without asking the wall clock. Kept in `state_dir/pins` with
//! the boot id (/proc/sys/kernel/random/boot_id): in another boot its PIDs mean nothing, but
//! its pidfile stamps still tell a pidfile left over from that boot.
//!
//! ```text
//! custos-pins 1
//! boot 0e5a...-...
//! clock <wall minus boot clock, ns> <trusted since> <ambiguous before> <written at> (boot ns)
//! pin <service> <pid> <start ticks> <pidfile stamp | ->
//! old <service> <pidfile stamp>
//! start <service> <pid> <start ticks> <spawned at> (boot ns)
//! ```
//!
//! A `start` line is a start script that was running when the file was written. A custos
//! killed during a start leaves that script running (scripts never depend on custos staying
//! alive); the respawned custos waits for it rather than start a second copy of the service.
//!
//! A stamp is `pid,dev,ino,size,mtime_s,mtime_ns,ctime_s,ctime_ns`. Written with a temp file
//! and a rename, without fsync: the file is worth nothing after a reboot anyway.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::MAX_SERVICES;
use crate::procs::{LastPin, PidfileStamp};

const MAGIC: &str = "custos-pins 1";
/// Largest pins file custos reads: far more than MAX_SERVICES lines of both kinds.
const MAX_BYTES: u64 = 64 * 1024;

/// What the pins file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub boot: String,
    /// CLOCK_REALTIME minus CLOCK_BOOTTIME when it was written, in ns: a change beyond what
    /// slewing explains is a step of the wall clock.
    pub offset_ns: i128,
    /// Since when (boot clock) custos has seen no step of the wall clock.
    pub trusted_since: Duration,
    /// After a step back: mtimes reading before this (boot clock) may be older.
    pub ambiguous_before: Duration,
    /// When it was written (boot clock).
    pub written_at: Duration,
    /// Per service: the process custos pinned last.
    pub last: Vec<(String, LastPin)>,
    /// Per service: the pidfile as custos saw it in an earlier boot, while not yet replaced.
    pub old: Vec<(String, PidfileStamp)>,
    /// Per service: the start script running when the file was written.
    pub starts: Vec<(String, StartScript)>,
}

/// A start script in flight: its PID and start time (its identity), and when it was spawned
/// (boot clock), from which its start_timeout runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartScript {
    pub pid: i32,
    pub start_ticks: u64,
    pub spawned_at: Duration,
}

fn stamp_text(s: &PidfileStamp) -> String {
    format!(
        "{},{},{},{},{},{},{},{}",
        s.pid, s.dev, s.ino, s.size, s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1
    )
}

fn parse_stamp(t: &str) -> Option<PidfileStamp> {
    let f: Vec<&str> = t.split(',').collect();
    if f.len() != 8 {
        return None;
    }
    Some(PidfileStamp {
        pid: f[0].parse().ok()?,
        dev: f[1].parse().ok()?,
        ino: f[2].parse().ok()?,
        size: f[3].parse().ok()?,
        mtime: (f[4].parse().ok()?, f[5].parse().ok()?),
        ctime: (f[6].parse().ok()?, f[7].parse().ok()?),
    })
}

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

fn dur(t: &str) -> Option<Duration> {
    let n: u128 = t.parse().ok()?;
    Some(Duration::from_nanos(u64::try_from(n).ok()?))
}

impl Saved {
    pub fn render(&self) -> String {
        let mut t = format!(
            "{MAGIC}\nboot {}\nclock {} {} {} {}\n",
            self.boot,
            self.offset_ns,
            ns(self.trusted_since),
            ns(self.ambiguous_before),
            ns(self.written_at)
        );
        for (name, p) in &self.last {
            let stamp = p.stamp.as_ref().map_or("-".to_string(), stamp_text);
            t.push_str(&format!("pin {name} {} {} {stamp}\n", p.pid, p.start_ticks));
        }
        for (name, s) in &self.old {
            t.push_str(&format!("old {name} {}\n", stamp_text(s)));
        }
        for (name, s) in &self.starts {
            t.push_str(&format!(
                "start {name} {} {} {}\n",
                s.pid,
                s.start_ticks,
                ns(s.spawned_at)
            ));
        }
        t
    }

    /// Parses the file strictly: any line out of place makes it unusable (it is then ignored,
    /// with a warning, and custos judges every pidfile afresh).
    pub fn parse(text: &str) -> Result<Saved, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err("not a pins file".into());
        }
        let mut saved = Saved::default();
        let boot = lines.next().and_then(|l| l.strip_prefix("boot "));
        saved.boot = boot.ok_or("no boot line")?.to_string();
        let clock: Vec<&str> = lines
            .next()
            .and_then(|l| l.strip_prefix("clock "))
            .ok_or("no clock line")?
            .split(' ')
            .collect();
        if clock.len() != 4 {
            return Err("bad clock line".into());
        }
        saved.offset_ns = clock[0].parse().map_err(|_| "bad clock offset")?;
        saved.trusted_since = dur(clock[1]).ok_or("bad clock line")?;
        saved.ambiguous_before = dur(clock[2]).ok_or("bad clock line")?;
        saved.written_at = dur(clock[3]).ok_or("bad clock line")?;
        for (n, line) in lines.enumerate() {
            let bad = || format!("line {}: `{line}`", n + 4);
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["pin", name, pid, ticks, stamp] if saved.last.len() < MAX_SERVICES => {
                    let stamp = match *stamp {
                        "-" => None,
                        s => Some(parse_stamp(s).ok_or_else(bad)?),
                    };
                    saved.last.push((
                        name.to_string(),
                        LastPin {
                            pid: pid.parse().map_err(|_| bad())?,
                            start_ticks: ticks.parse().map_err(|_| bad())?,
                            stamp,
                        },
                    ));
                }
                ["old", name, stamp] if saved.old.len() < MAX_SERVICES => {
                    saved
                        .old
                        .push((name.to_string(), parse_stamp(stamp).ok_or_else(bad)?));
                }
                ["start", name, pid, ticks, at] if saved.starts.len() < MAX_SERVICES => {
                    saved.starts.push((
                        name.to_string(),
                        StartScript {
                            pid: pid.parse().map_err(|_| bad())?,
                            start_ticks: ticks.parse().map_err(|_| bad())?,
                            spawned_at: dur(at).ok_or_else(bad)?,
                        },
                    ));
                }
                _ => return Err(bad()),
            }
        }
        Ok(saved)
    }
}

/// The pins file's name in state_dir.
pub const FILE_NAME: &str = "pins";

/// Where the pins file lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the pins file: `Ok(None)` when there is none.
pub fn load(state_dir: &Path) -> Result<Option<Saved>, String> {
    let p = path(state_dir);
    let meta = match std::fs::metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(format!("{}: not a pins file", p.display()));
    }
    let data = crate::files::read_regular(&p, MAX_BYTES as usize)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if data.len() as u64 > MAX_BYTES {
        return Err(format!("{}: not a pins file", p.display()));
    }
    let text = String::from_utf8(data).map_err(|_| format!("{}: not UTF-8", p.display()))?;
    Saved::parse(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// Writes the pins file: a temp file, then a rename over the old one.
pub fn save(state_dir: &Path, saved: &Saved) -> std::io::Result<()> {
    let p = path(state_dir);
    let tmp = state_dir.join("pins.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(saved.render().as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_file_reads_back_what_was_written_and_refuses_garbage() {
        let stamp = PidfileStamp {
            pid: 812,
            dev: 2049,
            ino: 1234,
            size: 4,
            mtime: (-5, 999),
            ctime: (1_700_000_000, 0),
        };
        let saved = Saved {
            boot: "0e5a-1".into(),
            offset_ns: -1_000_000_000_000_000_007,
            trusted_since: Duration::from_millis(1500),
            ambiguous_before: Duration::from_secs(3),
            written_at: Duration::from_secs(9),
            last: vec![
                (
                    "web".into(),
                    LastPin {
                        pid: 812,
                        start_ticks: 345,
                        stamp: Some(stamp),
                    },
                ),
                (
                    "sensord".into(),
                    LastPin {
                        pid: 900,
                        start_ticks: 400,
                        stamp: None,
                    },
                ),
            ],
            old: vec![("web".into(), stamp)],
            starts: vec![(
                "sensord".into(),
                StartScript {
                    pid: 77,
                    start_ticks: 4000,
                    spawned_at: Duration::from_millis(39_990),
                },
            )],
        };
        assert_eq!(Saved::parse(&saved.render()), Ok(saved.clone()));
        for bad in [
            "",
            "custos-pins 2\n",
            "custos-pins 1\nboot x\n",
            "custos-pins 1\nboot x\nclock 1 2 3\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\npin web 1 2\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\npin web x 2 -\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\nold web 1,2,3\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\nmore\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\nstart web 1 2\n",
            "custos-pins 1\nboot x\nclock 1 2 3 4\nstart web 1 2 -3\n",
        ] {
            assert!(Saved::parse(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("custos-pins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(load(&dir), Ok(None));
        save(&dir, &saved).expect("save");
        assert_eq!(load(&dir), Ok(Some(saved)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! A slow disk never costs a watchdog pet: custos's state_dir on a FUSE filesystem whose fsync
//! takes 2.5 s (tests/fixtures/slowfs.py), more than twice the watchdog timeout of 1 s, while a
//! service crash-loops so that the record of events is written again and again. A file stands in
//! for /dev/watchdog (custos writes one byte per pet to it, see tests/watchdog.rs); sampling its
//! length every 10 ms gives the gaps between pets.
//!
//! Needs root, /dev/fuse and python3-fusepy (scripts/setup installs it). Where the filesystem
//! cannot be mounted, the test says SKIP and why.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The tests here run one at a time: each runs custos (under qemu-user, CPU-hungry at start),
/// and the pet timing of one should not measure the start-up of the other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long an fsync takes on the slow filesystem: at least 2 x the watchdog timeout.
const FSYNC_DELAY: &str = "2.5";
const WATCHDOG_TIMEOUT: &str = "1s";
const PET_EVERY: Duration = Duration::from_millis(100);
/// The promise: the largest gap between two pets.
const MAX_PET_GAP: Duration = Duration::from_millis(100 + 250);

/// The slow filesystem, mounted at `mnt` over the directory `root`; unmounted on drop.
struct SlowFs {
    child: Child,
    mnt: PathBuf,
}

fn mounted(mnt: &Path) -> bool {
    let want = mnt.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_ref()) && l.contains(" - fuse"))
}

impl SlowFs {
    /// Mounts it, or says why it cannot (the reason to skip).
    fn mount(root: &Path, mnt: &Path, delay: &str) -> Result<SlowFs, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("no /dev/fuse on this machine".into());
        }
        let python = "/usr/bin/python3";
        if !Path::new(python).exists() {
            return Err(format!("no {python} (Debian's, with python3-fusepy)"));
        }
        fs::create_dir_all(root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
        fs::create_dir_all(mnt).map_err(|e| format!("mkdir {}: {e}", mnt.display()))?;
        let errlog = mnt.with_extension("log");
        let err = fs::File::create(&errlog).map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(python)
            .arg(format!("{FIXTURES}/slowfs.py"))
            .arg(root)
            .arg(mnt)
            .arg(delay)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let mut fs = SlowFs {
            child,
            mnt: mnt.to_path_buf(),
        };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if mounted(mnt) {
                return Ok(fs);
            }
            if let Ok(Some(st)) = fs.child.try_wait() {
                let why = fs::read_to_string(&errlog).unwrap_or_default();
                return Err(format!("slowfs.py exited ({st}): {}", why.trim()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("slowfs.py did not mount within 10 s".into())
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.mnt.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2 with a valid path; a lazy unmount never waits for users.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(path: &Path) -> usize {
    fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn stall_config(dir: &Path, state: &Path) -> String {
    format!(
        r#"[supervisor]
interval = "100ms"
state_dir = "{state}"
control_socket = "{dir}/custos.sock"

{watchdog}
{testd}[service.restart]
backoff = "100ms"

[[service]]
name = "crasher"
pidfile = "{dir}/crash/testd.pid"
start = ["/bin/sh", "{fx}/testd", "start", "{dir}/crash"]
start_timeout = "5s"
[service.restart]
backoff = "100ms"
backoff_max = "100ms"
max_restarts = 64
window = "10m"
"#,
        dir = dir.display(),
        state = state.display(),
        watchdog = watchdog_stand(
            dir,
            WATCHDOG_TIMEOUT,
            &format!("{}ms", PET_EVERY.as_millis())
        ),
        testd = testd_service(dir, "5s"),
        fx = FIXTURES
    )
}

#[test]
fn a_state_dir_whose_fsync_takes_seconds_costs_no_pet() {
    let _serial = one_at_a_time();
    let dir = tempdir("stall-disk");
    let state = dir.join("state");
    let slow = match SlowFs::mount(&dir.join("slow-root"), &state, FSYNC_DELAY) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot mount the slow FUSE filesystem: {why}");
            return;
        }
    };
    // The crash-looping service: its daemon exits with status 1 after 0.3 s, every time.
    fs::create_dir_all(dir.join("crash")).expect("mkdir");
    fs::write(dir.join("crash/exit-code"), "1").expect("exit-code");
    let dev = dir.join("wd");
    fs::write(&dev, "").expect("pet file");

    let mut c = Custos::start(&dir, &stall_config(&dir, &state));
    // Gaps count from the first pet on: start-up is not a pass of the loop.
    let mut sampler = PetSampler::start_realtime(&dev);
    wait_pid(&dir.join("testd.pid"), 20);
    // Meanwhile, the other service is killed: custos starts it again within 1 s.
    std::thread::sleep(Duration::from_secs(3));
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    let starts = lines(&dir.join("starts"));
    let killed = Instant::now();
    kill(pid, libc::SIGKILL);
    while lines(&dir.join("starts")) == starts && killed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let answered = killed.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    sampler.stop();
    let (gap, pets, sampler_late) = (
        sampler.max_gap_after_first_pet(),
        sampler.len(),
        sampler.late(),
    );

    // The slow disk was really in the way: the record on it holds the crash loop.
    let record = slow_record(&dir.join("slow-root/record"), 20);
    let text = c.log_text();
    assert!(
        gap <= MAX_PET_GAP,
        "largest gap between pets: {gap:?} > {MAX_PET_GAP:?} ({pets} pets; the sampler's longest 10 ms sleep: {sampler_late:?}). Log:\n{text}"
    );
    assert!(
        answered <= restart_bound(),
        "the SIGKILL of testd was answered by a start after {answered:?}. Log:\n{text}"
    );
    assert!(!text.contains("not petting"), "{text}");
    assert!(record.contains("\tcrasher\tdied\t"), "{record}");

    // The exit waits for the record, but bounded: 3 s, then custos says the newest events may
    // be lost (a write takes 5 s here: two fsyncs). The process is gone once the kernel has let
    // its writer thread out of the fsync in flight (up to 2.5 s more here: a FUSE request that
    // the filesystem has taken is waited for even by a dying process).
    let t0 = Instant::now();
    assert_eq!(c.stop(), Some(0));
    let took = t0.elapsed();
    eprintln!(
        "slow disk: largest pet gap {gap:?} ({pets} pets; sampler's longest sleep {sampler_late:?}), testd's SIGKILL answered in {answered:?}, exit took {took:?}"
    );
    let text = c.log_text();
    assert!(
        text.contains("/state/record did not finish within 3s (a slow disk); the newest events may not be in it"),
        "{text}"
    );
    assert!(
        took < Duration::from_millis(3000 + 2500 + 1500),
        "exit took {took:?}"
    );
    drop(c);
    drop(slow);
}

/// Waits (bounded) for the record in the slow filesystem's backing directory to show a death of
/// the crash-looping service; returns its text.
fn slow_record(path: &Path, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains("\tcrasher\tdied\t") || Instant::now() > end {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The signals custos's loop takes from its signalfd, blocked in a task's `SigBlk` mask?
fn blocks_handled_signals(status: &str) -> bool {
    let Some(mask) = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
    else {
        return false;
    };
    [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGCHLD]
        .iter()
        .all(|&s| mask & (1 << (s - 1)) != 0)
}

/// Waits (bounded) until the file holds `needle`; its text.
fn wait_file(path: &Path, needle: &str, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "no `{needle}` in {} within {secs}s:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_record_reaches_the_disk_through_the_writer_and_sigterm_flushes_it() {
    let _serial = one_at_a_time();
    let dir = tempdir("record-writer");
    let mut c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: running as pid", 10);
    let record = dir.join("record");
    // The first write is due at once; the next within the 5 s interval.
    wait_file(&record, "\t\tcustos-start\t", 5);
    wait_file(&record, "\ttestd\tstarted\t", 10);

    // The writer is a thread of custos, with the loop's signal mask: a SIGTERM can only reach
    // the signalfd. (Under qemu-user the tasks are qemu's, with qemu's own masks.)
    if !emulated() {
        let pid = c.child.id();
        let mut names = Vec::new();
        for task in fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
            let task = task.expect("task").path();
            let comm = fs::read_to_string(task.join("comm")).unwrap_or_default();
            let status = fs::read_to_string(task.join("status")).unwrap_or_default();
            assert!(
                blocks_handled_signals(&status),
                "task {} ({}) does not block SIGHUP, SIGINT, SIGTERM and SIGCHLD:\n{status}",
                task.display(),
                comm.trim()
            );
            names.push(comm.trim().to_string());
        }
        assert!(
            names.iter().any(|n| n == "custos-record"),
            "no writer thread among {names:?}"
        );
    }

    // A death right after a write waits for the interval; SIGTERM writes it at once.
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    c.wait_log("testd: died:", 10);
    let before = fs::read_to_string(&record).expect("record");
    assert!(
        !before.contains("\ttestd\tdied\t"),
        "written early:\n{before}"
    );
    assert_eq!(c.stop(), Some(0));

    // The file round-trips: custos's own reader finds it whole (header, CRC) and complete.
    let (rec, warnings) = custos::record::Record::open(&dir);
    assert!(warnings.is_empty(), "{warnings:?}");
    let kinds: Vec<(String, custos::record::Kind)> = rec
        .iter()
        .map(|e| (e.service.to_string(), e.kind))
        .collect();
    use custos::record::Kind;
    assert_eq!(
        kinds.first(),
        Some(&(String::new(), Kind::CustosStart)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("testd".to_string(), Kind::Died)),
        "{kinds:?}"
    );
    let last = rec.iter().last().expect("entries");
    assert_eq!(last.kind, Kind::CustosStop);
    assert_eq!(last.text.as_str(), "custos stopped by SIGTERM");
    assert!(!dir.join("record.tmp").exists());
    assert!(!c.log_text().contains("record:"), "{}", c.log_text());
}

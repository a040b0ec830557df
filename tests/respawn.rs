//! A custos killed and started again within one boot, against the real binary: what the new
//! custos does with the work the old one left in flight.

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

/// The PID of the start script an earlier custos wrote into the pins file, waiting (bounded).
fn start_in_pins(dir: &std::path::Path, secs: u64) -> i32 {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = fs::read_to_string(dir.join("pins")).unwrap_or_default();
        if let Some(pid) = text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.first() == Some(&"start") && f.get(1) == Some(&"testd"))
                .then(|| f.get(2).and_then(|p| p.parse::<i32>().ok()))
                .flatten()
        }) {
            return pid;
        }
        if Instant::now() > end {
            panic!("no start line in the pins file within {secs}s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A start script an earlier custos ran that outlives start_timeout is not custos's child: the
/// respawned custos says it kills its process group, and it must really be gone, or it may
/// still start a second copy of the service next to the one custos starts.
#[test]
fn a_hung_start_script_of_an_earlier_custos_is_really_killed() {
    let dir = tempdir("respawn-hung-start");
    fs::write(dir.join("start-hangs"), b"").expect("flag");
    let cfg = testd_config_timeout(&dir, "1500ms", "");
    let mut old = Custos::start(&dir, &cfg);
    old.wait_log("starting (", 10);
    let script = start_in_pins(&dir, 10);
    assert!(alive(script), "the start script {script} runs");
    old.signal(libc::SIGKILL);
    let _ = old.child.wait();
    let _ = fs::rename(dir.join("custos.log"), dir.join("custos-0.log"));
    fs::remove_file(dir.join("start-hangs")).expect("flag");
    let c = Custos::start(&dir, &cfg);
    c.wait_log(
        "killing the process group of the start script an earlier custos ran",
        10,
    );
    let end = Instant::now() + Duration::from_secs(3);
    while alive(script) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still = alive(script);
    // The test's own leftover, whatever custos did.
    kill(script, libc::SIGKILL);
    assert!(
        !still,
        "the start script {script} still runs 3 s after custos said it killed its group. Log:\n{}",
        c.log_text()
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

/// A pins file whose start line names init (damaged, or written by hand): init is never taken
/// for a start script, so nothing waits for it and its group (kill(-1): every process) is never
/// signalled.
#[test]
fn a_pins_start_line_naming_init_is_not_a_start_script() {
    let dir = tempdir("respawn-pins-init");
    let cfg = testd_config_timeout(&dir, "1500ms", "");
    fs::write(dir.join("start-fails"), b"").expect("flag");
    let mut first = Custos::start(&dir, &cfg);
    first.wait_log("start failed", 10);
    assert_eq!(first.stop(), Some(0), "custos exits on SIGTERM");
    drop(first);
    fs::remove_file(dir.join("start-fails")).expect("flag");
    let stat = fs::read_to_string("/proc/1/stat").expect("init's stat");
    let ticks = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(19).map(str::to_string))
        .expect("init's start time");
    let pins: String = fs::read_to_string(dir.join("pins"))
        .expect("pins file")
        .lines()
        .filter(|l| !l.starts_with("start "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(dir.join("pins"), format!("{pins}start testd 1 {ticks} 0\n")).expect("pins file");
    let _ = fs::rename(dir.join("custos.log"), dir.join("custos-0.log"));
    let c = Custos::start(&dir, &cfg);
    c.wait_log("testd: starting (attempt", 10);
    let log = c.log_text();
    assert!(
        !log.contains("earlier custos ran (pid 1)"),
        "init taken for a start script:\n{log}"
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

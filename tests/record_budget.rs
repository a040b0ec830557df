//! The death record under the flash-write budget, against the real binary: a death held back
//! by the budget must still reach the file, whatever else happens meanwhile.

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

/// Sends custos `n` SIGHUPs (a reload each), one every 100 ms, waiting for each reload to be
/// logged (bounded).
fn reloads(c: &Custos, n: usize) {
    let done = c.log_text().matches("reload done").count();
    for k in 1..=n {
        c.signal(libc::SIGHUP);
        c.wait_log_count("reload done", done + k, 10);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A control client (or anything sending SIGHUP) reloading in a loop once the write budget is
/// spent: a death in the middle of it is held back for the budget, and the reloads that follow
/// must not push it out of the record before it is written. The operator must find it in the
/// record file.
#[test]
fn a_death_held_back_by_the_write_budget_is_not_lost_to_a_reload_loop() {
    let dir = tempdir("record-budget-reloads");
    let cfg = testd_config(&dir, "");
    let mut c = Custos::start(&dir, &cfg);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    c.wait_log(&format!("running as pid {pid}"), 10);
    // Spend the budget's burst: reloads for 25 s (a record write at most every 5 s).
    let end = Instant::now() + Duration::from_secs(25);
    while Instant::now() < end {
        reloads(&c, 10);
    }
    kill(pid, libc::SIGKILL);
    c.wait_log("killed by SIGKILL", 10);
    // More reloads than the record holds, before the budget allows the next write.
    reloads(&c, 70);
    assert_eq!(c.stop(), Some(0), "custos exits on SIGTERM");
    let record = fs::read_to_string(dir.join("record")).expect("record file");
    let died: Vec<&str> = record
        .lines()
        .filter(|l| l.contains("testd") && l.contains("died"))
        .collect();
    assert!(
        died.iter().any(|l| l.contains("SIGKILL")),
        "the death of pid {pid} is not in the record file:\n{record}"
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

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
    // (Under qemu-user custos has no subreaper: the cause is unknown there.)
    c.wait_log("testd: died: ", 10);
    // More reloads than the record holds, before the budget allows the next write.
    reloads(&c, 70);
    assert_eq!(c.stop(), Some(0), "custos exits on SIGTERM");
    let record = fs::read_to_string(dir.join("record")).expect("record file");
    let died: Vec<&str> = record
        .lines()
        .filter(|l| l.contains("testd") && l.contains("died"))
        .collect();
    let cause = if emulated() { "died: " } else { "SIGKILL" };
    assert!(
        died.iter().any(|l| l.contains(cause)),
        "the death of pid {pid} is not in the record file:\n{record}"
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

/// Two deaths of one service within minutes, by different causes: the record file merges
/// repeats into one line, and must not lose the first cause to the second (after a reboot the
/// file is all an operator has).
#[test]
fn merged_deaths_in_the_record_file_keep_each_cause() {
    if emulated() {
        eprintln!("SKIP: under qemu-user custos has no subreaper and learns no daemon's cause");
        return;
    }
    let dir = tempdir("record-merge-causes");
    fs::write(dir.join("exit-code"), b"3").expect("flag");
    let cfg = testd_config(&dir, "");
    let mut c = Custos::start(&dir, &cfg);
    c.wait_log("exited with status 3", 10);
    fs::remove_file(dir.join("exit-code")).expect("flag");
    let n = c.log_text().matches("running as pid").count();
    c.wait_log_count("running as pid", n + 1, 15);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    // The pidfile may still name a daemon that exits with status 3: wait for one that stays.
    std::thread::sleep(Duration::from_millis(600));
    let pid = if alive(pid) {
        pid
    } else {
        wait_new_pid(&dir.join("testd.pid"), pid, 10)
    };
    let n = c.log_text().matches("running as pid").count();
    kill(pid, libc::SIGKILL);
    c.wait_log("killed by SIGKILL", 10);
    // Started again after it: the newest start names only the SIGKILL.
    c.wait_log_count("running as pid", n + 1, 15);
    assert_eq!(c.stop(), Some(0), "custos exits on SIGTERM");
    let record = fs::read_to_string(dir.join("record")).expect("record file");
    let died = |what: &str| {
        record
            .lines()
            .any(|l| l.contains("\ttestd\tdied\t") && l.contains(what))
    };
    assert!(
        record.contains("exited with status 3") && died("SIGKILL"),
        "a death's cause is missing from the record file:\n{record}"
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

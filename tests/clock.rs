//! The wall clock decides nothing: heartbeat files dated a day or a year away from now, and
//! pidfiles dated so, with real processes. (This machine's clock is never changed: file
//! timestamps are moved instead, which is what a clock step looks like from the files' side.
//! Real clock steps run on the emulated boards.)

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

/// Sets a file's mtime (and atime) to `secs` since the epoch.
fn set_mtime(path: &Path, secs: i64) {
    #[allow(clippy::useless_conversion)]
    let t = libc::timespec {
        tv_sec: secs.try_into().unwrap_or(0),
        tv_nsec: 0,
    };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let times = [t, t];
    // SAFETY: valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A service whose daemon is a plain `sleep`, started in the background by its start script.
/// Its PID goes to NAME.pid and to `starts` (which the harness cleans up).
fn sleeper(dir: &Path, name: &str, extra: &str) -> String {
    format!(
        r#"
[[service]]
name = "{name}"
pidfile = "{dir}/{name}.pid"
start = ["/bin/sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > {dir}/{name}.pid; echo $! >> {dir}/starts"]
start_timeout = "5s"
stop_timeout = "1s"
{extra}
"#,
        dir = dir.display()
    )
}

fn heartbeat_check(path: &Path) -> String {
    format!(
        "[[service.check]]\nkind = \"heartbeat\"\npath = \"{}\"\nmax_age = \"2s\"\nevery = \"200ms\"\ngrace = \"1ms\"\naction = \"log\"\n",
        path.display()
    )
}

/// Heartbeat files dated a day and a year away from the wall clock: one that stops changing
/// fails within max_age whatever its date says; one that keeps changing passes whatever its
/// date says. (A clock set back made a file dated ahead pass for as long as it was set back;
/// a clock set forward made every heartbeat ancient.)
#[test]
fn a_heartbeat_is_judged_by_when_it_changed_never_by_its_date() {
    let dir = tempdir("hb-dates");
    let offsets = [
        ("ahead1d", DAY),
        ("ahead1y", YEAR),
        ("behind1d", -DAY),
        ("behind1y", -YEAR),
    ];
    let mut cfg = supervisor_section(&dir);
    for (name, _) in offsets {
        for kind in ["still", "beat"] {
            let hb = dir.join(format!("{kind}-{name}.hb"));
            fs::write(&hb, "").expect("write");
            cfg.push_str(&sleeper(
                &dir,
                &format!("{kind}-{name}"),
                &heartbeat_check(&hb),
            ));
        }
    }
    // Dated now + offset, once: these never change again.
    for (name, off) in offsets {
        set_mtime(&dir.join(format!("still-{name}.hb")), wall_now() + off);
    }
    // These change every 300 ms, each time to now + offset + n.
    let stop = Arc::new(AtomicBool::new(false));
    let beater = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                for (name, off) in offsets {
                    set_mtime(&dir.join(format!("beat-{name}.hb")), wall_now() + off + n);
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let c = Custos::start(&dir, &cfg);
    for (name, _) in offsets {
        c.wait_log(&format!("still-{name}: running as pid"), 10);
        c.wait_log(&format!("beat-{name}: running as pid"), 10);
    }
    // The still files fail once they have not changed for 2 s (as custos saw them).
    for (name, _) in offsets {
        c.wait_log(
            &format!(
                "still-{name}: check heartbeat {}",
                dir.join(format!("still-{name}.hb")).display()
            ),
            10,
        );
    }
    // Another 2 s of beats: the beating files never fail, whatever their dates.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let _ = beater.join();
    let log = c.log_text();
    for (name, _) in offsets {
        assert!(
            !log.contains(&format!("beat-{name}: check heartbeat")),
            "a changing heartbeat dated {name} failed:\n{log}"
        );
    }
    assert!(log.contains("unchanged for"), "{log}");
}

/// A running service whose pidfile is dated a day or a year away from the wall clock (what a
/// clock step between writing and reading it looks like): custos cannot verify it, so it holds
/// (neither a second copy nor a signal), says why, and the hold ends when the process exits or
/// the operator adopts it. (It was started again: "written before this boot" or "in the
/// future", and both copies stayed alive.)
#[test]
fn a_pidfile_dated_far_from_now_never_makes_a_second_copy() {
    for (name, off) in [
        ("behind1y", -YEAR),
        ("ahead1y", YEAR),
        ("behind1d", -DAY),
        ("ahead1d", DAY),
    ] {
        let dir = tempdir(&format!("pf-{name}"));
        let pid = testd_by_hand(&dir);
        set_mtime(&dir.join("testd.pid"), wall_now() + off);
        let c = Custos::start(&dir, &testd_config(&dir, ""));
        c.wait_log(
            &format!("testd: held: the pidfile names pid {pid}, which cannot be verified"),
            10,
        );
        c.wait_log("control: listening on", 10);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            starts(&dir),
            vec![pid],
            "{name}: a second copy:\n{}",
            c.log_text()
        );
        let out = c.ctl(&["status"]).all();
        assert!(
            out.contains("testd") && out.contains("held"),
            "{name}: {out}"
        );
        if off < 0 {
            // The operator says it is the service.
            let r = c.ctl(&["adopt", "testd"]);
            let (code, out) = (r.code, r.all());
            assert_eq!(code, Some(0), "{out}");
            c.wait_log(&format!("testd: found running as pid {pid}"), 10);
        } else {
            // It exits: the hold ends and the service is started.
            kill(pid, libc::SIGKILL);
            c.wait_log(
                "testd: starting (attempt 1): not running: pidfile names pid",
                10,
            );
            c.wait_running_other("testd", pid, 10);
        }
        assert!(!c.log_text().contains(&format!("to pid {pid}")));
    }
}

/// custos killed and started again (inittab respawn, an upgrade) while its pidfile's dates say
/// anything: it adopts exactly the process it pinned in this boot (pins file), never a second
/// copy.
/// Waits (at most 10 s) until the pins file in `dir` pins `pid` for testd.
fn wait_pinned(dir: &Path, pid: i32) {
    let want = format!("pin testd {pid} ");
    for _ in 0..200 {
        if fs::read_to_string(dir.join("pins")).is_ok_and(|t| t.contains(&want)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the pins file never pinned testd's pid {pid}");
}

#[test]
fn a_respawned_custos_adopts_its_pins_again_whatever_the_dates() {
    let dir = tempdir("respawn");
    let cfg = testd_config(&dir, "");
    let mut c = Custos::start(&dir, &cfg);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    for off in [-YEAR, YEAR, -DAY] {
        // The pins file is written by a writer thread after the pin: a custos killed before
        // that cannot know the pin (the documented window), so wait until it is on disk.
        wait_pinned(&dir, pid);
        // SIGKILL: no orderly exit. Its harness must not clean up the daemon: forget it.
        let _ = c.child.kill();
        let _ = c.child.wait();
        std::mem::forget(c);
        set_mtime(&dir.join("testd.pid"), wall_now() + off);
        c = Custos::start(&dir, &cfg);
        c.wait_log(&format!("testd: found running as pid {pid}"), 10);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            starts(&dir),
            vec![pid],
            "{off}: a second copy:\n{}",
            c.log_text()
        );
    }
    // And it is still supervised: a crash is seen and the service started again.
    kill(pid, libc::SIGKILL);
    c.wait_running_other("testd", pid, 10);
    assert_eq!(starts(&dir).len(), 2);
}

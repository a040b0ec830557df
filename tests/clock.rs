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

fn supervisor(dir: &Path) -> String {
    format!(
        "[supervisor]\ninterval = \"100ms\"\nstate_dir = \"{dir}\"\ncontrol_socket = \"{dir}/custos.sock\"\n",
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
    let mut cfg = supervisor(&dir);
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

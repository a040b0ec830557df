//! Boot facts and the boot-loop guard, black-box: custos is run several times against the same
//! state_dir, each run a simulated boot with its own boot id (CUSTOS_TEST_BOOT_ID, honoured only
//! by a debug build: the test binary's profile is the one custos was built with).
//!
//! custos may call reboot(2) here (on_exhausted = "reboot" while the guard is clear). It is
//! started without CAP_SYS_BOOT (dropped from the bounding set before exec, so root's exec does
//! not get it back), which makes reboot(2) fail with EPERM: a reboot request is then a log line,
//! never a reboot of this machine. The tests check that the capability is really gone first.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const CAP_SYS_BOOT: u32 = 22;

fn boot_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Drops CAP_SYS_BOOT from the bounding set of the process about to be exec'd.
fn without_reboot(cmd: &mut Command) {
    // SAFETY: prctl(2) only, between fork and exec: async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_CAPBSET_DROP,
                CAP_SYS_BOOT as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                let e = std::io::Error::last_os_error();
                // EINVAL: no such capability on this kernel; EPERM: we do not have it anyway.
                if e.raw_os_error() != Some(libc::EPERM) {
                    return Err(e);
                }
            }
            Ok(())
        });
    }
}

/// The capability sets of a process, from /proc/PID/status.
fn has_sys_boot(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("CapEff:") || l.starts_with("CapPrm:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .any(|caps| caps & (1 << CAP_SYS_BOOT) != 0)
}

/// Starts custos as boot `n` (no CAP_SYS_BOOT) and checks that it cannot reboot.
fn boot(dir: &Path, config: &str, n: u32) -> Custos {
    let c = Custos::start_in_boot(dir, config, &boot_id(n), without_reboot);
    assert!(
        !has_sys_boot(c.child.id()),
        "custos runs with CAP_SYS_BOOT: stopping before it could reboot this machine"
    );
    c
}

/// The sandbox check itself: a child started this way has no CAP_SYS_BOOT.
#[test]
fn the_harness_takes_cap_sys_boot_away() {
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("5");
    without_reboot(&mut cmd);
    let mut child = cmd.spawn().expect("sleep");
    std::thread::sleep(Duration::from_millis(100));
    let has = has_sys_boot(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(!has, "CAP_SYS_BOOT survived the exec");
}

/// A service that crash-loops and, once exhausted, asks for a reboot; no [watchdog]: custos
/// would call reboot(2) at once.
fn crash_loop_config(dir: &Path, boot: &str) -> String {
    testd_config(
        dir,
        &format!(
            "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"100ms\"\nmax_restarts = 2\nwindow = \"1m\"\non_exhausted = \"reboot\"\n{boot}"
        ),
    )
}

/// Twelve boots in a crash loop, each ended by the reboot custos asks for (with no [watchdog]:
/// no bypass of the guard): the fifth trips the guard with the default max_resets = 3, and
/// from then on custos does not reboot.
#[test]
fn a_boot_loop_trips_the_guard_without_a_watchdog() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("boot-loop");
    fs::write(dir.join("exit-code"), "1").expect("exit-code");
    let cfg = crash_loop_config(&dir, "");
    for n in 1..=6 {
        let mut c = boot(&dir, &cfg, n);
        if n <= 4 {
            // The guard is clear: custos asks for a reboot (which fails here: no CAP_SYS_BOOT).
            c.wait_log("on_exhausted = \"reboot\": synced; rebooting", 30);
            c.wait_log("reboot(2) failed", 10);
            let text = c.log_text();
            assert!(!text.contains("DEGRADED"), "boot {n}:\n{text}");
            if n > 1 {
                assert!(
                    text.contains(&format!(
                        "the previous boot ({}) ended in a reboot custos requested",
                        boot_id(n - 1)
                    )),
                    "boot {n}:\n{text}"
                );
            }
        } else {
            c.wait_log(
                &format!("boot-loop guard: {} recent boot(s) ended badly", n - 1),
                10,
            );
            c.wait_log("DEGRADED MODE", 1);
            c.wait_log(
                "on_exhausted = \"reboot\": not rebooting: the boot-loop guard is on",
                30,
            );
            let status = c.status();
            assert_eq!(status["degraded"], true, "{status:?}");
            let why = custos_command()
                .args(["why", "testd", "--socket"])
                .arg(dir.join("custos.sock"))
                .output()
                .expect("why");
            let out = String::from_utf8_lossy(&why.stdout);
            assert!(out.contains("DEGRADED"), "why:\n{out}");
            std::thread::sleep(Duration::from_millis(500));
            let text = c.log_text();
            assert!(!text.contains("reboot(2)"), "boot {n}:\n{text}");
        }
        // The board goes down without custos stopping: the reboot it asked for, or a reset.
        c.signal(libc::SIGKILL);
        let _ = c.child.wait();
    }
}

/// The guard clears after `clear_after` good boots in a row (an orderly stop, or `good_after`
/// of running), and custos restarted within one boot (inittab's respawn) is not a new boot.
#[test]
fn the_guard_clears_after_good_boots_and_a_respawn_is_not_a_boot() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("boot-clear");
    let cfg = testd_config(
        &dir,
        "[boot]\nmax_resets = 1\nclear_after = 2\ngood_after = \"2s\"\n",
    );
    // Boots 1 and 2 end unexplained (killed within good_after): boot 3 trips (2 > 1).
    for n in 1..=2 {
        let mut c = boot(&dir, &cfg, n);
        c.wait_log("testd: running as pid", 20);
        c.signal(libc::SIGKILL);
        let _ = c.child.wait();
    }
    let mut c = boot(&dir, &cfg, 3);
    c.wait_log(
        &format!("the previous boot ({}) ended unexplained", boot_id(2)),
        1,
    );
    c.wait_log("boot-loop guard: 2 recent boot(s) ended badly", 1);
    // Stopped in order: a good boot.
    assert_eq!(c.stop(), Some(0));
    let mut c = boot(&dir, &cfg, 4);
    c.wait_log(
        &format!("the previous boot ({}) ended in order", boot_id(3)),
        1,
    );
    c.wait_log("DEGRADED MODE", 1);
    // custos is killed and respawned within boot 4: the same boot, still degraded, and the
    // ring did not grow. Boot 4's line goes to disk through the writer thread: killed before
    // it lands, the respawned custos could not know it was in this boot already.
    let on_disk = (0..100).any(|_| {
        let has = fs::read_to_string(dir.join("boots")).is_ok_and(|b| b.contains(&boot_id(4)));
        if !has {
            std::thread::sleep(Duration::from_millis(50));
        }
        has
    });
    assert!(on_disk, "boot 4 is not in the boots file after 5 s");
    c.signal(libc::SIGKILL);
    let _ = c.child.wait();
    let lines = fs::read_to_string(dir.join("boots"))
        .expect("boots")
        .lines()
        .count();
    let c = boot(&dir, &cfg, 4);
    c.wait_log("custos restarted within this boot", 1);
    c.wait_log("DEGRADED MODE", 1);
    // Up for good_after: this boot is good even though it ends by a kill.
    c.wait_log("this boot counts as good", 10);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(dir.join("boots"))
            .expect("boots")
            .lines()
            .count(),
        lines
    );
    let mut c = c;
    c.signal(libc::SIGKILL);
    let _ = c.child.wait();
    // Two good boots in a row: clear.
    let c = boot(&dir, &cfg, 5);
    c.wait_log("boot-loop guard: clear", 1);
    let text = c.log_text();
    assert!(!text.contains("DEGRADED"), "{text}");
}

/// Runs `custos shutdown` on `c`'s config as boot `n`.
fn shutdown_command(c: &Custos, n: u32) -> std::process::Output {
    custos_command()
        .args(["shutdown", "-c"])
        .arg(&c.config)
        .env("CUSTOS_TEST_BOOT_ID", boot_id(n))
        .output()
        .expect("custos shutdown")
}

/// A shutdown that unmounts state_dir before init's SIGTERM reaches custos (busybox init runs
/// `::shutdown:` lines first) records its orderly end with `custos shutdown`, run before the
/// unmount: the end is on disk when the command returns, and custos goes on supervising.
#[test]
fn a_shutdown_command_records_an_orderly_end_before_the_disk_goes() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("boot-shutdown");
    let cfg = testd_config(&dir, "");
    let mut c = boot(&dir, &cfg, 1);
    c.wait_running("testd", 20);
    let out = shutdown_command(&c, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("recorded as ending in order"), "{text}");
    let boots = fs::read_to_string(dir.join("boots")).expect("boots");
    assert!(
        boots.contains(&format!("\t{}\torderly\t", boot_id(1))),
        "not on disk when the command returned:\n{boots}"
    );
    // The disk is gone (unmounted): nothing custos writes from here on reaches it.
    let starts = fs::read_to_string(dir.join("starts")).unwrap_or_default();
    fs::remove_dir_all(&dir).expect("rm");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("boots"), &boots).expect("put back the boots as the disk had them");
    // For the harness, which kills the daemons it finds there.
    fs::write(dir.join("starts"), starts).expect("starts");
    c.signal(libc::SIGKILL);
    let _ = c.child.wait();
    let c = boot(&dir, &cfg, 2);
    c.wait_log(
        &format!("the previous boot ({}) ended in order", boot_id(1)),
        1,
    );
}

/// After `custos shutdown`, the shutdown sequence stops the services (BusyBox init runs rcK
/// before its SIGTERM reaches custos): custos logs each death and starts nothing again, while
/// it goes on running (and petting) until it is stopped.
#[test]
fn after_the_shutdown_command_a_death_is_logged_and_nothing_is_restarted() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("boot-shutdown-norestart");
    let cfg = testd_config(&dir, "");
    let mut c = boot(&dir, &cfg, 1);
    c.wait_running("testd", 20);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    let out = shutdown_command(&c, 1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let starts_before = c.log_text().matches("testd: starting").count();
    // What rcK's stop script does to the daemon.
    kill(pid, libc::SIGTERM);
    c.wait_log(
        "testd: not starting it again: the system is shutting down",
        10,
    );
    // Several ticks and more than the backoff: still no start.
    std::thread::sleep(Duration::from_millis(1500));
    let text = c.log_text();
    assert_eq!(
        text.matches("testd: starting").count(),
        starts_before,
        "restarted after `custos shutdown`:\n{text}"
    );
    assert!(
        text.contains("testd: died"),
        "the death is not logged:\n{text}"
    );
    assert!(
        c.child.try_wait().expect("try_wait").is_none(),
        "custos stopped by itself:\n{text}"
    );
}

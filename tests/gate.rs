//! The boot-health gate, black-box: `[boot] healthy_after` over the services marked `vital`,
//! `on_healthy` / `on_unhealthy` run once per boot (per boot id, kept in state_dir), shown by
//! `status`. Boots are simulated with CUSTOS_TEST_BOOT_ID (a debug build only).

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A testd config with a gate: each program appends its name and the boot to DIR/verdicts.
fn gate_config(dir: &Path, healthy_after: &str, deadline: &str) -> String {
    let base = testd_config(dir, "vital = true\n");
    format!(
        r#"{base}
[boot]
healthy_after = "{healthy_after}"
deadline = "{deadline}"
on_healthy = ["/bin/sh", "-c", "echo healthy >> {d}/verdicts"]
on_unhealthy = ["/bin/sh", "-c", "echo unhealthy >> {d}/verdicts"]
timeout = "5s"
"#,
        d = dir.display()
    )
}

fn verdicts(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("verdicts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_verdicts(dir: &Path, n: usize, secs: u64) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = verdicts(dir);
        if v.len() >= n || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const BOOT_A: &str = "00000000-0000-4000-8000-00000000000a";
const BOOT_B: &str = "00000000-0000-4000-8000-00000000000b";

#[test]
fn a_vital_service_up_runs_on_healthy_once_and_a_respawn_does_not_run_it_again() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("gate-healthy");
    let cfg = gate_config(&dir, "2s", "60s");
    let mut c = Custos::start_in_boot(&dir, &cfg, BOOT_A, |_| {});
    c.wait_log("boot health: healthy", 20);
    assert_eq!(wait_verdicts(&dir, 1, 10), ["healthy"]);
    c.wait_log("on_healthy (pid", 10);
    c.wait_log("exited with status 0", 10);
    // The human form, as operators read it.
    let text = c.ctl(&["status"]).out;
    assert!(text.contains("boot health: healthy"), "{text}");
    let gate = c.status()["boot"]["gate"].clone();
    assert_eq!(gate["verdict"], "healthy", "{gate:?}");
    // custos respawned in the same boot: the verdict is known, nothing runs again.
    c.signal(libc::SIGKILL);
    let _ = c.child.wait();
    let c2 = Custos::start_in_boot(&dir, &cfg, BOOT_A, |_| {});
    c2.wait_log("boot health: healthy already in this boot", 10);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(verdicts(&dir), ["healthy"], "run once per boot");
    drop(c2);
    // The next boot has its own verdict.
    let c3 = Custos::start_in_boot(&dir, &cfg, BOOT_B, |_| {});
    assert_eq!(wait_verdicts(&dir, 2, 20), ["healthy", "healthy"]);
    drop(c3);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_crashing_vital_service_runs_on_unhealthy_after_the_deadline() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("gate-unhealthy");
    // The daemon exits after 0.3 s: it never stays up for healthy_after.
    fs::write(dir.join("exit-code"), "1").expect("exit-code");
    let cfg = gate_config(&dir, "3s", "6s");
    let c = Custos::start_in_boot(&dir, &cfg, BOOT_A, |_| {});
    c.wait_log("boot health: unhealthy", 20);
    assert_eq!(wait_verdicts(&dir, 1, 10), ["unhealthy"]);
    let gate = c.status()["boot"]["gate"].clone();
    assert_eq!(gate["verdict"], "unhealthy", "{gate:?}");
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn healthy_after_without_a_vital_service_is_a_config_error() {
    let dir = tempdir("gate-config");
    let cfg = format!(
        "{}\n[boot]\nhealthy_after = \"1m\"\non_healthy = [\"/bin/true\"]\n",
        testd_config(&dir, "")
    );
    let path = dir.join("custos.toml");
    fs::write(&path, cfg).expect("config");
    let mut cmd = custos_command();
    let out = cmd
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("check");
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("boot.healthy_after: no service is marked `vital = true`"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_program_that_outlives_its_timeout_is_killed_with_its_group_and_the_loop_goes_on() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("gate-timeout");
    let base = testd_config(&dir, "vital = true\n");
    let cfg = format!(
        r#"{base}
[boot]
healthy_after = "1s"
on_healthy = ["/bin/sh", "-c", "echo $$ > {d}/gate.pid; sleep 1000; echo not-killed >> {d}/verdicts"]
timeout = "1s"
"#,
        d = dir.display()
    );
    let c = Custos::start_in_boot(&dir, &cfg, BOOT_A, |_| {});
    c.wait_log("boot health: running on_healthy (pid", 20);
    c.wait_log("still runs after timeout 1s: killing its process group", 10);
    c.wait_log("was killed after its timeout: killed by SIGKILL", 10);
    let pid: i32 = fs::read_to_string(dir.join("gate.pid"))
        .expect("gate.pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(!alive(pid), "the program's shell still runs");
    let status = c.status();
    let outcome = &status["boot"]["gate"]["outcome"];
    assert!(
        outcome.contains("was killed after its timeout"),
        "{status:?}"
    );
    // The loop went on: the service is still supervised and status answers.
    assert_eq!(status["services"][0]["name"], "testd", "{status:?}");
    assert!(verdicts(&dir).is_empty());
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

/// The gate's program (and what it leaves running) never depends on custos: not on custos
/// staying alive, nor on custos still reading its output once it has exited. A program that
/// writes after either must not die of SIGPIPE (for `rauc status mark-good` that would leave
/// the slot unmarked, and the verdict is not judged again in this boot).
#[test]
fn the_gate_program_and_its_children_outlive_custos_and_its_output_pipe() {
    if !boots_simulated() {
        return;
    }
    let dir = tempdir("gate-outlives");
    let d = dir.display();
    let base = testd_config(&dir, "vital = true\n");
    let cfg = format!(
        r#"{base}
[boot]
healthy_after = "1s"
deadline = "60s"
on_healthy = ["/bin/sh", "-c", "(sleep 1; echo late; echo late >> {d}/verdicts) & echo healthy; sleep 1; echo still; echo healthy >> {d}/verdicts"]
timeout = "10s"
"#
    );
    let c = Custos::start_in_boot(&dir, &cfg, BOOT_A, |_| {});
    c.wait_log("boot health: running on_healthy", 20);
    c.signal(libc::SIGKILL);
    let mut c = c;
    let _ = c.child.wait();
    let v = wait_verdicts(&dir, 2, 5);
    assert!(
        v.contains(&"healthy".to_string()) && v.contains(&"late".to_string()),
        "the gate program or its child died once custos was gone: {v:?}. Log:\n{}",
        c.log_text()
    );
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

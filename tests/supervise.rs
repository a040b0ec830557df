//! The core promises of custos, each tested with real processes, real signals and bounded
//! waits: the double-forking `tests/fixtures/testd` daemon and its init.d-style script.

mod common;

use std::fs;
use std::process::Command;

use common::*;

fn pidfile(c: &Custos) -> std::path::PathBuf {
    c.dir.join("testd.pid")
}

#[test]
fn sigkill_is_detected_logged_with_its_cause_and_only_started_again() {
    let dir = tempdir("sigkill");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: starting (attempt 1): not running: no pidfile", 10);
    c.wait_log("testd: running as pid", 10);
    let pid = wait_pid(&pidfile(&c), 10);
    kill(pid, libc::SIGKILL);
    if emulated() {
        eprintln!(
            "SKIP part: under qemu-user custos cannot be a subreaper, so the cause is unknown"
        );
        c.wait_log(
            &format!("testd: died: cause unknown (not our child) (pid {pid}"),
            10,
        );
    } else {
        c.wait_log(
            &format!("testd: died: killed by SIGKILL (pid {pid}, up "),
            10,
        );
    }
    let text = c.wait_log(
        "testd: starting (attempt 2, after 500ms backoff): died: ",
        10,
    );
    let new = wait_new_pid(&pidfile(&c), pid, 10);
    assert_ne!(new, pid);
    c.wait_log(&format!("testd: running as pid {new}"), 10);
    // Rule 2: a dead service is only started, never "stopped" first.
    assert!(
        !dir.join("stops").exists(),
        "stop script ran for a dead service:\n{text}"
    );
    assert!(!text.contains("running stop script"), "{text}");
}

#[test]
fn an_exit_status_is_logged() {
    if emulated() {
        eprintln!(
            "SKIP: exit status needs the subreaper, which qemu-user lacks (board tests cover it)"
        );
        return;
    }
    let dir = tempdir("exit3");
    fs::write(dir.join("exit-code"), "3").expect("write");
    let c = Custos::start(
        &dir,
        &testd_config(&dir, "[service.restart]\nmax_restarts = 2\n"),
    );
    c.wait_log("testd: died: exited with status 3 (pid ", 10);
}

#[test]
fn a_look_alike_process_is_never_touched() {
    let dir = tempdir("lookalike");
    // The daemon runs as `sleep 100000`; so does this look-alike.
    let mut look = Command::new("/bin/sleep")
        .arg("100000")
        .spawn()
        .expect("spawn");
    let lpid = look.id() as i32;
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: running as pid", 10);
    let pid = wait_pid(&pidfile(&c), 10);
    kill(pid, libc::SIGKILL);
    wait_new_pid(&pidfile(&c), pid, 10);
    c.wait_log_count("testd: running as pid", 2, 10);
    assert!(alive(lpid), "look-alike was touched:\n{}", c.log_text());
    let _ = look.kill();
    let _ = look.wait();
}

#[test]
fn a_running_service_is_adopted_not_restarted() {
    let dir = tempdir("adopt");
    let pid = testd_by_hand(&dir);
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log(&format!("testd: found running as pid {pid} (pidfile "), 10);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let text = c.log_text();
    assert!(!text.contains("testd: starting"), "{text}");
    assert!(alive(pid));
    // Not our child (started before custos): its death has no known cause, but is seen.
    kill(pid, libc::SIGKILL);
    c.wait_log(
        &format!("testd: died: cause unknown (not our child) (pid {pid}"),
        10,
    );
    c.wait_log("testd: running as pid", 10);
}

#[test]
fn a_hung_start_script_is_killed_after_start_timeout_and_counted() {
    let dir = tempdir("hung");
    fs::write(dir.join("start-hangs"), "").expect("write");
    let c = Custos::start(&dir, &testd_config_timeout(&dir, "1s", ""));
    c.wait_log("testd: killing the start script's process group (pid ", 10);
    c.wait_log(
        "testd: start failed: start script still running after 1s; its process group was killed",
        10,
    );
    fs::remove_file(dir.join("start-hangs")).expect("rm");
    let text = c.wait_log("testd: running as pid", 15);
    assert!(
        text.contains("testd: starting (attempt 2, after 500ms backoff): previous attempt failed"),
        "{text}"
    );
    // The killed script was reaped, not left behind.
    assert!(text.contains("killed script (pid "), "{text}");
}

#[test]
fn a_failing_start_script_counts_as_a_failed_attempt() {
    let dir = tempdir("startfail");
    fs::write(dir.join("start-fails"), "").expect("write");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: | testd: start failure requested", 10);
    c.wait_log("testd: start failed: start script exited with status 1", 10);
    fs::remove_file(dir.join("start-fails")).expect("rm");
    c.wait_log("testd: running as pid", 15);
}

#[test]
fn a_crash_loop_backs_off_doubling_and_gives_up() {
    let dir = tempdir("crashloop");
    fs::write(dir.join("exit-code"), "3").expect("write");
    let extra = "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"1s\"\nmax_restarts = 3\nwindow = \"1m\"\n";
    let c = Custos::start(&dir, &testd_config(&dir, extra));
    let text = c.wait_log("testd: given up: 3 restarts within 1m (max_restarts)", 20);
    let delays: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("testd: will start in ").nth(1))
        .map(|rest| rest.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(delays, vec!["100ms", "200ms", "400ms"], "{text}");
    // Given up means given up: nothing starts it again.
    let starts = fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .count();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let later = fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(starts, later);
    assert_eq!(starts, 4, "first start and 3 restarts");
}

#[test]
fn a_stable_run_resets_the_backoff() {
    let dir = tempdir("stable");
    fs::write(dir.join("exit-code"), "3").expect("write");
    let extra =
        "[service.restart]\nbackoff = \"100ms\"\nstable_after = \"1s\"\nmax_restarts = 20\n";
    let c = Custos::start(&dir, &testd_config(&dir, extra));
    c.wait_log("testd: will start in 200ms", 10);
    fs::remove_file(dir.join("exit-code")).expect("rm");
    // Wait until a daemon that does not exit is up and past stable_after.
    let text = c.wait_log("testd: will start in", 10);
    let _ = text;
    let mut pid;
    loop {
        pid = wait_pid(&dir.join("testd.pid"), 10);
        std::thread::sleep(std::time::Duration::from_millis(1300));
        if alive(pid) {
            break;
        }
    }
    kill(pid, libc::SIGKILL);
    c.wait_log(&format!("(pid {pid}, up "), 10);
    // After a stable run the backoff is reset and not waited at all: the start is at once.
    let text = c.wait_log("testd: starting (attempt 1): died: ", 10);
    let after = text.split(&format!("(pid {pid}, up ")).nth(1).unwrap_or("");
    assert!(
        !after.contains("will start in"),
        "backoff not reset:\n{text}"
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one() {
    let dir = tempdir("reload");
    let mut c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: running as pid", 10);
    let pid = wait_pid(&pidfile(&c), 10);
    // A valid reload keeps the pin: nothing is started again.
    c.signal(libc::SIGHUP);
    c.wait_log("reload done: 1 service(s)", 10);
    fs::write(&c.config, "[[service]]\nname = \"testd\"\nbogus = 1\n").expect("write");
    c.signal(libc::SIGHUP);
    let text = c.wait_log("reload rejected: the running config stays in force", 10);
    assert!(
        text.contains("custos.toml:3: ") && text.contains("bogus"),
        "{text}"
    );
    assert_eq!(text.matches("testd: starting").count(), 1, "{text}");
    // Still supervised under the old config.
    kill(pid, libc::SIGKILL);
    wait_new_pid(&pidfile(&c), pid, 10);
    c.wait_log_count("testd: running as pid", 2, 10);
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn sigterm_exits_zero_and_leaves_services_running() {
    let dir = tempdir("sigterm");
    let mut c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: running as pid", 10);
    let pid = wait_pid(&pidfile(&c), 10);
    assert_eq!(c.stop(), Some(0));
    assert!(c
        .log_text()
        .contains("SIGTERM received: exiting; services are left running"));
    assert!(alive(pid), "custos took its service down on exit");
}

/// Copies /bin/sleep to DIR/NAME, so processes with a unique exe can be started.
fn unique_exe(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::copy("/bin/sleep", &p).expect("copy sleep");
    p
}

#[test]
fn an_ambiguous_exe_match_touches_nothing_and_starts_nothing() {
    let dir = tempdir("ambiguous");
    let exe = unique_exe(&dir, "lookd");
    let mut a = Command::new(&exe).arg("100000").spawn().expect("a");
    let mut b = Command::new(&exe).arg("100000").spawn().expect("b");
    let cfg = format!(
        "[supervisor]\ninterval = \"100ms\"\n[[service]]\nname = \"lookd\"\nexe = \"{}\"\nstart = [\"/bin/sh\", \"-c\", \"echo started >> {}/started\"]\n",
        exe.display(),
        dir.display()
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_log("lookd: 2 processes match exe/args: identity is ambiguous, so custos starts nothing and signals none of them", 10);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!dir.join("started").exists());
    assert!(alive(a.id() as i32) && alive(b.id() as i32));
    // One goes away: the other is identified and adopted.
    let _ = b.kill();
    let _ = b.wait();
    c.wait_log(&format!("lookd: found running as pid {} (exe ", a.id()), 10);
    let _ = a.kill();
    let _ = a.wait();
}

#[test]
fn exe_and_args_identify_the_one_matching_process() {
    let dir = tempdir("exeargs");
    let exe = unique_exe(&dir, "argd");
    let mut other = Command::new(&exe).arg("200000").spawn().expect("other");
    let mut mine = Command::new(&exe).arg("100000").spawn().expect("mine");
    let cfg = format!(
        "[supervisor]\ninterval = \"100ms\"\n[[service]]\nname = \"argd\"\nexe = \"{}\"\nargs = \"100000\"\nstart = [\"/bin/true\"]\n",
        exe.display()
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_log(
        &format!("argd: found running as pid {} (exe ", mine.id()),
        10,
    );
    for p in [&mut other, &mut mine] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

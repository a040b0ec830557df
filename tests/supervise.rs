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
    let first = c.wait_event("testd", "started", 10);
    assert!(
        first["text"]
            .str()
            .is_some_and(|t| t.ends_with("not running: no pidfile")),
        "{first:?}"
    );
    let pid = c.wait_running("testd", 10);
    assert_eq!(pid, wait_pid(&pidfile(&c), 10));
    kill(pid, libc::SIGKILL);
    // The death as operators grep it in the log: with its cause, PID and uptime.
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
    let new = wait_new_pid(&pidfile(&c), pid, 10);
    assert_ne!(new, pid);
    let svc = c.wait_service("testd", 10, |s| s["pid"] == i64::from(new));
    assert_eq!(svc["state"], "running", "{svc:?}");
    assert_eq!(svc["restarts"], 1, "{svc:?}");
    if !emulated() {
        assert_eq!(svc["last_death"], "killed by SIGKILL", "{svc:?}");
    }
    let kinds: Vec<Json> = c
        .events()
        .iter()
        .filter(|e| e["service"] == "testd")
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            Json::of(r#""started""#),
            Json::of(r#""died""#),
            Json::of(r#""started""#)
        ],
        "a dead service is only started, never stopped first"
    );
    let again = &c.events_of("testd", "started")[1];
    assert!(
        again["text"].starts_with("starting (attempt 2, after 500ms backoff): died: "),
        "{again:?}"
    );
    // A dead service is only started, never "stopped" first.
    let text = c.log_text();
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
    let died = c.wait_event("testd", "died", 10);
    assert!(
        died["text"].starts_with("died: exited with status 3 (pid "),
        "{died:?}"
    );
    let svc = c.wait_service("testd", 10, |s| !s["last_death"].is_null());
    assert_eq!(svc["last_death"], "exited with status 3", "{svc:?}");
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
    let pid = c.wait_running("testd", 10);
    kill(pid, libc::SIGKILL);
    let new = c.wait_running_other("testd", pid, 10);
    assert_ne!(new, lpid);
    assert!(alive(lpid), "look-alike was touched:\n{}", c.log_text());
    let _ = look.kill();
    let _ = look.wait();
}

#[test]
fn a_running_service_is_adopted_not_restarted() {
    let dir = tempdir("adopt");
    let pid = testd_by_hand(&dir);
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    // Adopted: found running, and the log says so with the pidfile it was found by.
    c.wait_log(&format!("testd: found running as pid {pid} (pidfile "), 10);
    assert_eq!(c.wait_running("testd", 10), pid);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = c.events_of("testd", "started");
    assert!(
        started.is_empty(),
        "an adopted service was started: {started:?}"
    );
    let svc = c.service("testd");
    assert_eq!(svc["pid"], i64::from(pid), "{svc:?}");
    assert_eq!(svc["restarts"], 0, "{svc:?}");
    assert!(alive(pid));
    // Not our child (started before custos): its death has no known cause, but is seen.
    kill(pid, libc::SIGKILL);
    let died = c.wait_event("testd", "died", 10);
    assert!(
        died["text"].starts_with(&format!("died: cause unknown (not our child) (pid {pid}")),
        "{died:?}"
    );
    c.wait_running_other("testd", pid, 10);
}

#[test]
fn a_hung_start_script_is_killed_after_start_timeout_and_counted() {
    let dir = tempdir("hung");
    fs::write(dir.join("start-hangs"), "").expect("write");
    let c = Custos::start(&dir, &testd_config_timeout(&dir, "1s", ""));
    c.wait_log("testd: killing the start script's process group (pid ", 10);
    let failed = c.wait_event("testd", "start-failed", 10);
    assert_eq!(
        failed["text"],
        "start failed: start script still running after 1s; its process group was killed"
    );
    fs::remove_file(dir.join("start-hangs")).expect("rm");
    c.wait_running("testd", 15);
    let again = &c.events_of("testd", "started")[1];
    assert!(
        again["text"]
            .starts_with("starting (attempt 2, after 500ms backoff): previous attempt failed"),
        "{again:?}"
    );
    let text = c.log_text();
    // The killed script was reaped, not left behind.
    assert!(text.contains("killed script (pid "), "{text}");
}

#[test]
fn a_failing_start_script_counts_as_a_failed_attempt() {
    let dir = tempdir("startfail");
    fs::write(dir.join("start-fails"), "").expect("write");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("testd: | testd: start failure requested", 10);
    let failed = c.wait_event("testd", "start-failed", 10);
    assert_eq!(
        failed["text"],
        "start failed: start script exited with status 1"
    );
    fs::remove_file(dir.join("start-fails")).expect("rm");
    c.wait_running("testd", 15);
}

#[test]
fn a_crash_loop_backs_off_doubling_and_gives_up() {
    let dir = tempdir("crashloop");
    fs::write(dir.join("exit-code"), "3").expect("write");
    let extra = "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"1s\"\nmax_restarts = 3\nwindow = \"1m\"\n";
    let c = Custos::start(&dir, &testd_config(&dir, extra));
    let svc = c.wait_service("testd", 20, |s| s["state"] == "given-up");
    assert_eq!(svc["restarts"], 3, "{svc:?}");
    let gave_up = c.wait_event("testd", "gave-up", 5);
    assert!(
        gave_up["text"].starts_with("given up: 3 restarts within 1m (max_restarts)"),
        "{gave_up:?}"
    );
    // The backoffs as operators read them in the log.
    let text = c.log_text();
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
    let pid = c.wait_running("testd", 10);
    // A valid reload keeps the pin: nothing is started again.
    c.signal(libc::SIGHUP);
    let reload = c.wait_event("", "reload", 10);
    assert_eq!(reload["text"], "reload done: 1 service(s)");
    fs::write(&c.config, "[[service]]\nname = \"testd\"\nbogus = 1\n").expect("write");
    c.signal(libc::SIGHUP);
    // The rejection as operators grep it: the file, line and key at fault.
    let text = c.wait_log("reload rejected: the running config stays in force", 10);
    assert!(
        text.contains("custos.toml:3: ") && text.contains("bogus"),
        "{text}"
    );
    let started = c.events_of("testd", "started");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(c.service("testd")["pid"], i64::from(pid));
    // Still supervised under the old config.
    kill(pid, libc::SIGKILL);
    wait_new_pid(&pidfile(&c), pid, 10);
    c.wait_running_other("testd", pid, 10);
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn sigterm_exits_zero_and_leaves_services_running() {
    let dir = tempdir("sigterm");
    let mut c = Custos::start(&dir, &testd_config(&dir, ""));
    let pid = c.wait_running("testd", 10);
    assert_eq!(pid, wait_pid(&pidfile(&c), 10));
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
        "{}[[service]]\nname = \"lookd\"\nexe = \"{}\"\nstart = [\"/bin/sh\", \"-c\", \"echo started >> {}/started\"]\n",
        supervisor_section(&dir),
        exe.display(),
        dir.display()
    );
    let c = Custos::start(&dir, &cfg);
    // The log line operators grep: why custos does nothing.
    c.wait_log("lookd: 2 processes match exe/args: identity is ambiguous, so custos starts nothing and signals none of them", 10);
    c.wait_service("lookd", 10, |s| s["state"] == "ambiguous");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let svc = c.service("lookd");
    assert_eq!(svc["state"], "ambiguous", "{svc:?}");
    assert!(svc["pid"].is_null(), "{svc:?}");
    assert!(c.events_of("lookd", "started").is_empty());
    assert!(!dir.join("started").exists());
    assert!(alive(a.id() as i32) && alive(b.id() as i32));
    // One goes away: the other is identified and adopted.
    let _ = b.kill();
    let _ = b.wait();
    assert_eq!(c.wait_running("lookd", 10), a.id() as i32);
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
        "{}[[service]]\nname = \"argd\"\nexe = \"{}\"\nargs = \"100000\"\nstart = [\"/bin/true\"]\n",
        supervisor_section(&dir),
        exe.display()
    );
    let c = Custos::start(&dir, &cfg);
    assert_eq!(c.wait_running("argd", 10), mine.id() as i32);
    assert!(c.events_of("argd", "started").is_empty());
    for p in [&mut other, &mut mine] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

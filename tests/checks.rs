//! Health checks against real servers and processes: a misbehaving HTTP server on 127.0.0.1
//! (tests/fixtures/httpd.py run as the testd daemon), SIGSTOP, hangs after a restart, flaky
//! replies, a traced process, and resource, heartbeat and program checks.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

/// Waits (bounded) until the server answers on `port`.
fn wait_listening(port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "server never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_service(dir: &std::path::Path, check: &str) -> (Custos, u16) {
    let port = free_port();
    fs::write(dir.join("httpd-port"), port.to_string()).expect("write");
    fs::write(dir.join("mode"), "ok").expect("write");
    let cfg = testd_config(
        dir,
        &format!(
            "[[service.check]]\nkind = \"http\"\nhost = \"127.0.0.1\"\nport = {port}\npath = \"/watchdog_page.html\"\nexpect = \"woof woof still alive\"\n{check}\n"
        ),
    );
    let c = Custos::start(dir, &cfg);
    c.wait_running("testd", 15);
    wait_listening(port);
    (c, port)
}

#[test]
fn every_bad_http_reply_fails_with_its_own_reason_and_log_action_does_nothing_else() {
    let dir = tempdir("http-reasons");
    let (c, port) = http_service(
        &dir,
        "timeout = \"1s\"\nevery = \"200ms\"\ngrace = \"1ms\"\naction = \"log\"",
    );
    let prefix = format!("testd: check http 127.0.0.1:{port}/watchdog_page.html failed (1/1): ");
    let mut recovered = 0;
    for (mode, reason) in [
        (
            "wrong",
            "expected content not found in the first 5 bytes of the body",
        ),
        ("500", "status 500, expected 200"),
        ("silent", "timeout after 1s"),
        ("trickle", "timeout after 1s"),
        (
            "big",
            "expected content not found in the first 4096 bytes of the body",
        ),
        ("close", "connection closed without a reply"),
        ("garbage", "not an HTTP reply"),
    ] {
        let seen = c.log_text().matches(&format!("{prefix}{reason}")).count();
        fs::write(dir.join("mode"), mode).expect("mode");
        c.wait_log_count(&format!("{prefix}{reason}"), seen + 1, 15);
        fs::write(dir.join("mode"), "ok").expect("mode");
        recovered += 1;
        c.wait_log_count("passed again after", recovered, 10);
    }
    // What the log action says, as operators grep it.
    let text = c.log_text();
    assert!(
        text.contains("check action is \"log\": nothing else done"),
        "{text}"
    );
    let restarted = c.events_of("testd", "restarted");
    assert!(restarted.is_empty(), "log action restarted: {restarted:?}");
    assert_eq!(c.events_of("testd", "started").len(), 1);
    let svc = c.service("testd");
    assert_eq!(svc["restarts"], 0, "{svc:?}");
    assert_eq!(svc["checks"][0]["failures"], 0, "{svc:?}");
    assert_eq!(svc["checks"][0]["passed"], true, "{svc:?}");
}

#[test]
fn a_refused_connection_is_named() {
    let dir = tempdir("http-refused");
    let port = free_port();
    let cfg = testd_config(
        &dir,
        &format!("[[service.check]]\nkind = \"tcp\"\nport = {port}\nevery = \"200ms\"\ngrace = \"1ms\"\naction = \"log\"\n"),
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_log(
        &format!("testd: check tcp 127.0.0.1:{port} failed (1/1): connection refused"),
        10,
    );
}

#[test]
fn a_sigstopped_service_is_replaced() {
    let dir = tempdir("sigstop");
    let (c, _port) = http_service(&dir, "timeout = \"1s\"\nevery = \"500ms\"\nfailures = 1");
    std::thread::sleep(Duration::from_millis(800)); // passed at least once
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    let t0 = Instant::now();
    kill(pid, libc::SIGSTOP);
    // timeout × failures + every + stop_timeout (1s) + start: bounded well within 15 s.
    c.wait_log("failed (1/1): timeout after 1s", 15);
    let restarted = c.wait_event("testd", "restarted", 5);
    assert_eq!(
        restarted["text"],
        "restarting: check 1 failed 1 time(s) in a row"
    );
    c.wait_log(
        &format!(
            "testd: pid {pid} is stopped: sending SIGCONT so that its stop script can stop it"
        ),
        5,
    );
    let new = wait_new_pid(&dir.join("testd.pid"), pid, 15);
    assert_eq!(c.wait_running_other("testd", pid, 15), new);
    eprintln!("SIGSTOP -> replaced in {:?}", t0.elapsed());
    let text = c.log_text();
    assert!(
        text.contains(&format!(
            "testd: sending SIGTERM to pid {pid}: still running after its stop script"
        )),
        "{text}"
    );
    if !emulated() {
        assert!(
            // The SIGTERM custos sent ended it: a requested stop, not a death to warn about.
            text.contains(&format!(
                "INFO  [custos::supervisor] testd: stopped: killed by SIGTERM (pid {pid}"
            )) && text.contains("as custos's SIGTERM asked"),
            "{text}"
        );
    }
    assert!(!alive(pid));
}

#[test]
fn a_hang_soon_after_a_restart_is_found_without_waiting_out_the_grace() {
    let dir = tempdir("hang-after");
    fs::write(dir.join("hang-after"), "2").expect("write");
    let (c, _port) = http_service(&dir, "timeout = \"1s\"\nevery = \"300ms\"\ngrace = \"30s\"");
    // First instance: passes, hangs at 2 s, is replaced.
    let first = c.wait_running("testd", 20);
    c.wait_event("testd", "restarted", 20);
    c.wait_running_other("testd", first, 20);
    let t_second = Instant::now();
    // Second instance: it passed once, so the 30 s grace is over; its hang is found at once.
    let restarted = c.wait_events("testd", "restarted", 2, 20);
    assert!(
        restarted
            .iter()
            .all(|e| e["text"].starts_with("restarting: check 1 failed")),
        "{restarted:?}"
    );
    let took = t_second.elapsed();
    eprintln!("second instance replaced {took:?} after it started (grace 30s)");
    assert!(
        took < Duration::from_secs(15),
        "waited out the grace: {took:?}"
    );
}

#[test]
fn a_flaky_server_failing_one_in_three_is_never_restarted_with_failures_2() {
    let dir = tempdir("flaky");
    let (c, _port) = http_service(
        &dir,
        "timeout = \"1s\"\nevery = \"100ms\"\nfailures = 2\ngrace = \"1ms\"",
    );
    fs::write(dir.join("mode"), "flaky").expect("mode");
    c.wait_log_count("failed (1/2): connection closed without a reply", 3, 15);
    let restarted = c.events_of("testd", "restarted");
    assert!(restarted.is_empty(), "{restarted:?}");
    assert_eq!(c.service("testd")["restarts"], 0);
    // Never two failures in a row: the log holds every check result, status only the last.
    let text = c.log_text();
    assert!(!text.contains("failed (2/2)"), "{text}");
}

#[test]
fn a_traced_process_is_left_alone() {
    if emulated() {
        eprintln!("SKIP: qemu-user does not emulate ptrace for the test's tracer thread");
        return;
    }
    let dir = tempdir("traced");
    let (c, _port) = http_service(&dir, "timeout = \"1s\"\nevery = \"200ms\"\ngrace = \"1ms\"");
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<libc::c_long>();
    // A debugger stand-in: PTRACE_SEIZE keeps the tracee running; the thread's exit detaches.
    let tracer = std::thread::spawn(move || {
        // SAFETY: ptrace(PTRACE_SEIZE) on a test-owned PID; no memory is passed.
        let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
        let _ = ready_tx.send(rc);
        let _ = rx.recv_timeout(Duration::from_secs(30));
    });
    assert_eq!(ready_rx.recv().expect("tracer"), 0, "PTRACE_SEIZE failed");
    fs::write(dir.join("mode"), "500").expect("mode");
    c.wait_log(&format!("testd: pid {pid} is being traced by pid "), 10);
    std::thread::sleep(Duration::from_millis(1000));
    let restarted = c.events_of("testd", "restarted");
    assert!(
        restarted.is_empty(),
        "a traced process was restarted: {restarted:?}"
    );
    assert_eq!(c.service("testd")["pid"], i64::from(pid));
    let text = c.log_text();
    assert_eq!(
        text.matches("is being traced").count(),
        1,
        "said once:\n{text}"
    );
    assert!(alive(pid));
    let _ = tx.send(());
    let _ = tracer.join();
    // The debugger left: the failing check acts again.
    let restarted = c.wait_event("testd", "restarted", 10);
    assert!(
        restarted["text"].starts_with("restarting: check 1 failed"),
        "{restarted:?}"
    );
}

#[test]
fn a_stop_script_that_sigkills_is_named_and_a_program_check_drives_the_restart() {
    let dir = tempdir("stopkills");
    fs::write(dir.join("stop-kills"), "").expect("write");
    fs::write(dir.join("healthy"), "").expect("write");
    let check = format!(
        "[[service.check]]\nkind = \"program\"\nargv = [\"/bin/sh\", \"-c\", \"test -f {}/healthy\"]\nevery = \"1s\"\ngrace = \"1ms\"\n",
        dir.display()
    );
    let c = Custos::start(&dir, &testd_config(&dir, &check));
    let pid = c.wait_running("testd", 10);
    std::thread::sleep(Duration::from_millis(500));
    fs::remove_file(dir.join("healthy")).expect("rm");
    c.wait_log("failed (1/1): program exited with status 1", 10);
    let restarted = c.wait_event("testd", "restarted", 5);
    assert_eq!(
        restarted["text"],
        "restarting: check 1 failed 1 time(s) in a row"
    );
    c.wait_log("testd: running stop script", 5);
    let text = c.wait_log(&format!("(pid {pid}, up "), 10);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("(pid {pid}, up ")))
        .unwrap_or("");
    assert!(
        line.contains("): its stop script killed it, not custos"),
        "{text}"
    );
    if !emulated() {
        assert!(line.contains("died: killed by SIGKILL"), "{line}");
    }
    fs::write(dir.join("healthy"), "").expect("write");
    c.wait_running_other("testd", pid, 10);
    let text = c.log_text();
    assert!(
        !text.contains(&format!("sending SIGTERM to pid {pid}")),
        "dead process signalled:\n{text}"
    );
}

#[test]
fn a_stale_heartbeat_restarts_the_service() {
    let dir = tempdir("heartbeat");
    let hb = dir.join("alive");
    fs::write(&hb, "").expect("write");
    let check = format!(
        "[[service.check]]\nkind = \"heartbeat\"\npath = \"{}\"\nmax_age = \"1s\"\nevery = \"200ms\"\n",
        hb.display()
    );
    let c = Custos::start(&dir, &testd_config(&dir, &check));
    c.wait_running("testd", 10);
    c.wait_log("unchanged for ", 10);
    let restarted = c.wait_event("testd", "restarted", 5);
    assert!(
        restarted["text"].starts_with("restarting: check 1 failed"),
        "{restarted:?}"
    );
    // Fresh again: the next instance passes.
    fs::write(&hb, "").expect("write");
}

#[test]
fn resource_checks_read_the_pinned_process() {
    let dir = tempdir("resources");
    let check = "[[service.check]]\nkind = \"memory\"\nmax = \"4KiB\"\nevery = \"200ms\"\ngrace = \"1ms\"\naction = \"log\"\n\
                 [[service.check]]\nkind = \"fds\"\nmax = 1\nevery = \"200ms\"\ngrace = \"1ms\"\naction = \"log\"\n";
    let c = Custos::start(&dir, &testd_config(&dir, check));
    c.wait_log(
        "testd: check memory <= 4KiB failed (1/1): resident memory ",
        10,
    );
    c.wait_log("testd: check fds <= 1 failed (1/1): ", 10);
    c.wait_log("open file descriptors, over 1", 10);
    let svc = c.service("testd");
    assert_eq!(svc["checks"].items().len(), 2, "{svc:?}");
    for check in svc["checks"].items() {
        assert!(check["failures"].int().is_some_and(|n| n >= 1), "{svc:?}");
    }
    assert!(c.events_of("testd", "restarted").is_empty());
    assert_eq!(svc["restarts"], 0, "{svc:?}");
}

/// The spinning daemon must stay over the limit for the whole `over` window even when other
/// work shares the machine's cores (CI runners, emulation): hence a limit of 10 %, well below
/// what one spinning process gets on a busy 2-core machine.
#[test]
fn a_cpu_check_fails_only_after_the_usage_lasted() {
    let dir = tempdir("cpu");
    fs::write(dir.join("spin"), "").expect("write");
    let check = "[[service.check]]\nkind = \"cpu\"\nmax_percent = 10.0\nover = \"1s\"\nevery = \"250ms\"\ngrace = \"1ms\"\naction = \"log\"\n";
    let c = Custos::start(&dir, &testd_config(&dir, check));
    let t0 = Instant::now();
    c.wait_running("testd", 10);
    let text = c.wait_log("over 10% for 1s", 10);
    assert!(t0.elapsed() >= Duration::from_secs(1), "{text}");
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
}

/// Once custos has reaped a program check's leader, the group ID it named may be reused (when
/// the group is empty the PID is free), so custos must not signal that group any more. Here the
/// check stops custos, SIGKILLs the service's daemon and exits, leaving a witness in its group
/// that keeps the group ID alive; custos continues with both deaths waiting to be reaped in one
/// batch. The daemon's death cancels the checks; the witness stands for whatever holds that
/// group ID now, and it must not be killed. (Which process holds a reused group ID cannot be
/// arranged from outside in the instant between the reap and the kill; the witness makes the
/// signal visible whatever holds it.)
#[test]
fn a_check_group_whose_leader_was_reaped_is_never_signalled() {
    if emulated() {
        eprintln!("SKIP: under qemu-user custos is no subreaper: the daemon's death is not reaped in the check's batch");
        return;
    }
    let dir = tempdir("reaped-group");
    let script = dir.join("check.sh");
    fs::write(
        &script,
        r#"dir=$1
[ -f "$dir/raced" ] && exit 0
: > "$dir/raced"
custos=$PPID
sleep 1000 &
echo $! > "$dir/witness"
setsid sh -c "sleep 0.5; kill -CONT $custos" </dev/null >/dev/null 2>&1 &
kill -STOP "$custos"
kill -9 "$(cat "$dir/testd.pid")"
exit 0
"#,
    )
    .expect("write");
    let check = format!(
        "[[service.check]]\nkind = \"program\"\nargv = [\"/bin/sh\", \"{}\", \"{}\"]\nevery = \"1s\"\ngrace = \"1ms\"\n",
        script.display(),
        dir.display()
    );
    let c = Custos::start(&dir, &testd_config(&dir, &check));
    c.wait_log("testd: running as pid", 10);
    let text = c.wait_log("testd: died: killed by SIGKILL", 10);
    let witness: i32 = fs::read_to_string(dir.join("witness"))
        .expect("witness pid")
        .trim()
        .parse()
        .expect("witness pid");
    // The log, not status: custos is stopped by the check while the first instance runs, so a
    // status query may first be answered once the second runs.
    c.wait_log_count("testd: running as pid", 2, 10);
    std::thread::sleep(Duration::from_millis(300));
    let ok = alive(witness);
    kill(witness, libc::SIGKILL);
    assert!(
        ok,
        "the reaped check's group (witness pid {witness}) was signalled:\n{text}"
    );
}

//! Restart defaults for an unattended board, black-box with the real binary: a death after a
//! stable run is answered by a start at once, and by default a crash loop never ends in a
//! give-up: custos keeps trying at backoff_max, says so in `status` and `why`, and its log
//! says so at a rate that does not grow with the attempts.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

/// Nanoseconds on CLOCK_REALTIME: the one clock this test and `date +%s%N` in a script share.
fn realtime_ns() -> u128 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

#[test]
fn a_death_after_a_stable_run_is_started_at_once() {
    let dir = tempdir("restart-at-once");
    // The start script notes when it was spawned (its first command), then is testd's.
    let script = dir.join("start");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ndate +%s%N >> \"{d}/spawned\"\nexec /bin/sh {fx}/testd start \"{d}\"\n",
            d = dir.display(),
            fx = FIXTURES
        ),
    )
    .expect("write script");
    let config = testd_config(&dir, "[service.restart]\nstable_after = \"1s\"\n").replace(
        &format!("start = [\"/bin/sh\", \"{FIXTURES}/testd\", \"start\","),
        &format!("start = [\"/bin/sh\", \"{}\",", script.display()),
    );
    assert!(config.contains("/start\","), "{config}");
    let c = Custos::start(&dir, &config);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    // Past stable_after, with a margin.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alive(pid));
    let spawned_before = fs::read_to_string(dir.join("spawned"))
        .unwrap_or_default()
        .lines()
        .count();
    let killed_at = realtime_ns();
    kill(pid, libc::SIGKILL);
    let text = c.wait_log_count("testd: starting (attempt", 2, 10);
    let line = text
        .lines()
        .filter(|l| l.contains("testd: starting (attempt"))
        .nth(1)
        .unwrap_or("");
    assert!(
        line.contains("testd: starting (attempt 1): died: "),
        "a death after a stable run waited: `{line}`\n{text}"
    );
    assert!(!line.contains("backoff"), "{line}");
    // Rule 2: only started, never stopped first.
    assert!(!dir.join("stops").exists(), "{text}");
    let end = Instant::now() + Duration::from_secs(10);
    let spawned = loop {
        let s = fs::read_to_string(dir.join("spawned")).unwrap_or_default();
        if let Some(t) = s
            .lines()
            .nth(spawned_before)
            .and_then(|l| l.trim().parse::<u128>().ok())
        {
            break t;
        }
        assert!(Instant::now() < end, "no new start script run:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let ms = spawned.saturating_sub(killed_at) as f64 / 1e6;
    // From SIGKILL to the script's first command: the kernel's death, custos's wake-up and
    // decision, fork+exec of sh, and fork+exec of date. The promise is "no backoff" (<= 10 ms
    // on the host); the bound here leaves room for a loaded 2-core machine and is still far
    // below the smallest backoff custos would have waited before (500 ms).
    eprintln!("restart after a stable run: start script ran {ms:.2} ms after the SIGKILL");
    if emulated() {
        eprintln!("SKIP bound: custos runs emulated (qemu-user), at no host speed and maybe without pidfd");
    } else {
        assert!(ms < 200.0, "start script ran {ms:.2} ms after the death");
    }
    c.wait_log_count("testd: running as pid", 2, 10);
}

#[test]
fn thirty_crashes_in_a_row_and_still_restarting() {
    let dir = tempdir("restart-forever");
    // Each daemon exits with status 3 after 0.3 s: every run is a failure.
    fs::write(dir.join("exit-code"), "3").expect("write");
    let extra = "[service.restart]\nbackoff = \"10ms\"\nbackoff_max = \"50ms\"\n";
    let c = Custos::start(&dir, &testd_config(&dir, extra));
    c.wait_log("control: listening on", 10);
    let text = c.wait_log_count("testd: died: ", 30, 60);
    assert!(!text.contains("given up"), "{text}");
    // Still restarting after the 30th death.
    let text = c.wait_log_count("testd: starting (attempt", 32, 20);
    let status = c.ctl(&["status"]).out;
    assert!(status.contains("crash-looping"), "{status}");
    let svc = c.service("testd");
    assert_eq!(svc["state"], "crash-looping", "{svc:?}");
    assert_eq!(svc["crash_looping"], true, "{svc:?}");
    assert!(svc["restarts"].int().is_some_and(|n| n >= 30), "{svc:?}");
    assert!(c.events_of("testd", "gave-up").is_empty());
    let why = c.ctl(&["why", "testd"]).out;
    assert!(why.contains("crash-looping"), "{why}");
    eprintln!(
        "status:\n{status}\nwhy (first line): {}",
        why.lines().next().unwrap_or("")
    );
    // The log: every death and every start keeps its line (rule 3), but the crash-loop
    // summary comes at most once per doubling of the failures in a row, and the per-attempt
    // "will start in" line stops once it is crash-looping.
    let deaths = text.matches("testd: died: ").count();
    let summaries = text.matches("testd: crash-looping: ").count();
    let waits = text.matches("testd: will start in").count();
    eprintln!("{deaths} deaths: {summaries} crash-loop line(s), {waits} `will start in` line(s)");
    assert!(summaries >= 1, "{text}");
    assert!(
        summaries <= 4,
        "{summaries} summary lines for {deaths} deaths:\n{text}"
    );
    assert!(
        waits <= 4,
        "{waits} backoff lines for {deaths} deaths:\n{text}"
    );
    assert!(text.contains(", never gives up"), "{text}");
}

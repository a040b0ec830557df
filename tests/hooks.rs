//! Event hooks, black-box: `[[hook]]` programs get the event in their environment and as one
//! JSON line on stdin, a crash loop becomes one `flapping` event, a hook that hangs is killed
//! after its timeout, a failing hook is not retried. Real processes, a real testd service.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A hook that appends `EVENT|SERVICE|CAUSE` to DIR/events and its stdin to DIR/stdin.
fn recorder(dir: &Path, on: &str, extra: &str) -> String {
    format!(
        r#"
[[hook]]
on = [{on}]
run = ["/bin/sh", "-c", "printf '%s|%s|%s|%s\n' \"$CUSTOS_EVENT\" \"$CUSTOS_SERVICE\" \"$CUSTOS_CAUSE\" \"$CUSTOS_BOOT_ID\" >> {d}/events; cat >> {d}/stdin"]
timeout = "5s"
{extra}
"#,
        d = dir.display()
    )
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (bounded) until `path` has at least `n` lines matching `pred`.
fn wait_lines(path: &Path, n: usize, secs: u64, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let l = lines(path);
        if l.iter().filter(|x| pred(x)).count() >= n || Instant::now() > end {
            return l;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sigkilled_service_runs_the_hook_for_died_and_restarting_with_env_and_json() {
    let dir = tempdir("hook-died");
    let cfg = testd_config(&dir, "") + &recorder(&dir, r#""died", "restarting""#, "");
    let mut c = Custos::start(&dir, &cfg);
    c.wait_running("testd", 20);
    let pid = wait_pid(&dir.join("testd.pid"), 20);
    kill(pid, libc::SIGKILL);
    let ev = wait_lines(&dir.join("events"), 2, 20, |_| true);
    c.stop();
    assert_eq!(ev.len(), 2, "events: {ev:?}\nlog:\n{}", c.log_text());
    assert!(ev[0].starts_with("died|testd|"), "{ev:?}");
    assert!(ev[1].starts_with("restarting|testd|"), "{ev:?}");
    if !emulated() {
        // With the subreaper custos knows the cause and passes it on.
        assert!(ev[0].contains("killed by SIGKILL"), "{ev:?}");
    }
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    assert!(ev[0].ends_with(boot.trim()), "{ev:?}");
    let json = lines(&dir.join("stdin"));
    assert_eq!(json.len(), 2, "{json:?}");
    assert!(
        json[0].starts_with("{\"event\":\"died\",\"service\":\"testd\",\"text\":"),
        "{json:?}"
    );
    assert!(
        json[0].contains(&format!("\"boot_id\":\"{}\"", boot.trim())),
        "{json:?}"
    );
    assert!(json[0].contains(&format!("pid {pid}")), "{json:?}");
    assert!(json[1].contains("\"event\":\"restarting\""), "{json:?}");
    let log = c.log_text();
    assert!(log.contains("hook 1 (died testd): pid"), "{log}");
}

/// testd crash-looping (exit 3, restarted every 100 ms) with the recorder hook on died and
/// flapping; `flap` sets the hook's flap_count and flap_within.
fn crash_loop_recorded(dir: &Path, flap: &str) -> String {
    fs::write(dir.join("exit-code"), "3").expect("exit-code");
    let restart = "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"100ms\"\nmax_restarts = 50\nwindow = \"1m\"\n";
    testd_config(dir, restart) + &recorder(dir, r#""died", "flapping""#, flap)
}

#[test]
fn a_crash_loop_becomes_one_flapping_event_and_further_events_are_suppressed() {
    let dir = tempdir("hook-flap");
    let cfg = crash_loop_recorded(&dir, "flap_count = 2\nflap_within = \"30s\"\n");
    let mut c = Custos::start(&dir, &cfg);
    // Six deaths: two reach the hook, the third is the flapping event, the rest are suppressed.
    c.wait_log_count("testd: died", 6, 40);
    let ev = wait_lines(&dir.join("events"), 1, 10, |l| l.starts_with("flapping|"));
    std::thread::sleep(Duration::from_millis(500));
    let ev2 = lines(&dir.join("events"));
    c.stop();
    let log = c.log_text();
    assert_eq!(ev, ev2, "no more hook runs after flapping: {ev2:?}");
    assert_eq!(ev.len(), 3, "{ev:?}\nlog:\n{log}");
    assert!(ev[0].starts_with("died|testd|"), "{ev:?}");
    assert!(ev[1].starts_with("died|testd|"), "{ev:?}");
    assert!(ev[2].starts_with("flapping|testd|"), "{ev:?}");
    let deaths = log.matches("testd: died").count();
    assert!(deaths >= 6, "fewer hook runs (3) than deaths ({deaths})");
    let json = lines(&dir.join("stdin"));
    assert!(
        json[2].contains("\"text\":\"3 events within 30s"),
        "{json:?}"
    );
}

#[test]
fn a_service_quiet_for_flap_within_is_no_longer_flapping_and_its_events_pass_again() {
    let dir = tempdir("hook-quiet");
    let cfg = crash_loop_recorded(&dir, "flap_count = 1\nflap_within = \"2s\"\n");
    let mut c = Custos::start(&dir, &cfg);
    let ev = wait_lines(&dir.join("events"), 1, 20, |l| l.starts_with("flapping|"));
    assert!(ev.iter().any(|l| l.starts_with("flapping|")), "{ev:?}");
    // The crash loop ends; once the service has been quiet for 2 s its events pass again.
    fs::remove_file(dir.join("exit-code")).expect("rm exit-code");
    c.wait_log("is no longer flapping", 20);
    let before = lines(&dir.join("events")).len();
    let log = c.log_text();
    let pid = wait_pid(&dir.join("testd.pid"), 20);
    assert!(log.contains(&format!("running as pid {pid}")), "{log}");
    kill(pid, libc::SIGKILL);
    let ev = wait_lines(&dir.join("events"), before + 1, 20, |_| true);
    c.stop();
    assert_eq!(ev.len(), before + 1, "{ev:?}\nlog:\n{}", c.log_text());
    assert!(ev[before].starts_with("died|testd|"), "{ev:?}");
}

#[test]
fn a_hook_that_hangs_is_killed_after_its_timeout_with_its_group() {
    let dir = tempdir("hook-hang");
    let hook = format!(
        r#"
[[hook]]
on = ["died"]
run = ["/bin/sh", "-c", "sleep 1000 & echo $! > {d}/sleeper; echo hanging; wait"]
timeout = "500ms"
"#,
        d = dir.display()
    );
    let cfg = testd_config(&dir, "") + &hook;
    let mut c = Custos::start(&dir, &cfg);
    c.wait_running("testd", 20);
    let pid = wait_pid(&dir.join("testd.pid"), 20);
    kill(pid, libc::SIGKILL);
    c.wait_log(
        "still runs after its timeout 500ms: killing its process group",
        20,
    );
    let log = c.wait_log(
        "was killed after its timeout: killed by SIGKILL; not retried",
        20,
    );
    assert!(log.contains("hook: | hanging"), "{log}");
    let sleeper: i32 = fs::read_to_string(dir.join("sleeper"))
        .expect("sleeper")
        .trim()
        .parse()
        .expect("pid");
    let end = Instant::now() + Duration::from_secs(5);
    while alive(sleeper) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = alive(sleeper);
    c.stop();
    assert!(!left, "the hook's child {sleeper} survived the group kill");
}

#[test]
fn a_failing_hook_is_logged_and_not_retried() {
    let dir = tempdir("hook-fail");
    let hook = format!(
        r#"
[[hook]]
on = ["died"]
run = ["/bin/sh", "-c", "echo run >> {d}/runs; exit 3"]

[[hook]]
on = ["died"]
run = ["{d}/no-such-program"]
"#,
        d = dir.display()
    );
    let cfg = testd_config(&dir, "") + &hook;
    let mut c = Custos::start(&dir, &cfg);
    c.wait_running("testd", 20);
    let pid = wait_pid(&dir.join("testd.pid"), 20);
    kill(pid, libc::SIGKILL);
    c.wait_log("failed: exited with status 3; not retried", 20);
    let log = c.wait_log("cannot be started", 20);
    // A second later: still one run each.
    std::thread::sleep(Duration::from_secs(1));
    let runs = lines(&dir.join("runs"));
    let log2 = c.log_text();
    c.stop();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(log2.matches("cannot be started").count(), 1, "{log}");
    assert_eq!(
        log2.matches("hook 1 (died testd): running").count(),
        1,
        "{log2}"
    );
}

#[test]
fn an_unknown_event_is_refused_with_file_and_line() {
    let dir = tempdir("hook-unknown");
    let cfg = testd_config(&dir, "")
        + "\n[[hook]]\non = [\"died\", \"exploded\"]\nrun = [\"/bin/true\"]\n";
    let path = dir.join("custos.toml");
    fs::write(&path, &cfg).expect("config");
    let line = cfg
        .lines()
        .position(|l| l.contains("exploded"))
        .expect("line")
        + 1;
    let out = custos_command()
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("custos check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}:{line}: hook.on: unknown event `exploded`",
            path.display()
        )),
        "{err}"
    );
}

/// A mosquitto broker of the test's own on 127.0.0.1 (a free port, its own config file, no
/// persistence), logging (subscriptions too) to DIR/mosquitto.log. Killed on drop.
struct Broker {
    child: std::process::Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto() -> Option<&'static str> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn broker(dir: &Path) -> Broker {
    let bin = mosquitto().expect("mosquitto");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let conf = dir.join("mosquitto.conf");
    fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\n"
        ),
    )
    .expect("mosquitto.conf");
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        // Opened here: a broker started as root runs as user mosquitto and could not open it.
        .stderr(fs::File::create(dir.join("mosquitto.log")).expect("mosquitto.log"))
        .spawn()
        .expect("start mosquitto");
    let b = Broker { child, port };
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "mosquitto did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    b
}

#[test]
fn a_hook_running_mosquitto_pub_delivers_died_restarting_and_flapping_to_a_subscriber() {
    let has_clients = ["/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub"]
        .iter()
        .all(|p| Path::new(p).exists());
    if mosquitto().is_none() || !has_clients {
        eprintln!(
            "SKIP: mosquitto or mosquitto-clients not installed (scripts/setup installs them)"
        );
        return;
    }
    let dir = tempdir("hook-mqtt");
    let b = broker(&dir);
    let sub = std::process::Command::new("/usr/bin/mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
        .args([
            "-i",
            "custos-test-sub",
            "-t",
            "custos/#",
            "-v",
            "-C",
            "4",
            "-W",
            "60",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    // Subscribed before any event: the broker logs the SUBSCRIBE.
    let end = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(dir.join("mosquitto.log"))
        .unwrap_or_default()
        .contains("Received SUBSCRIBE from custos-test-sub")
    {
        assert!(Instant::now() < end, "mosquitto_sub did not subscribe");
        std::thread::sleep(Duration::from_millis(50));
    }
    fs::write(dir.join("exit-code"), "3").expect("exit-code");
    let restart = "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"100ms\"\nmax_restarts = 50\nwindow = \"1m\"\n";
    let hook = format!(
        r#"
[[hook]]
on = ["died", "restarting", "flapping"]
run = ["/bin/sh", "-c", "exec mosquitto_pub -h 127.0.0.1 -p {port} -q 1 -t \"custos/$CUSTOS_SERVICE/$CUSTOS_EVENT\" -s"]
timeout = "10s"
flap_count = 3
flap_within = "30s"
"#,
        port = b.port
    );
    let cfg = testd_config(&dir, restart) + &hook;
    let mut c = Custos::start(&dir, &cfg);
    let out = sub.wait_with_output().expect("mosquitto_sub output");
    c.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    // Each payload is the JSON line with its newline: mosquitto_sub -v adds one of its own.
    let got: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        got.len(),
        4,
        "mosquitto_sub: {text}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log_text()
    );
    for event in ["died", "restarting", "flapping"] {
        let topic = format!("custos/testd/{event} {{\"event\":\"{event}\",\"service\":\"testd\"");
        assert!(
            got.iter().any(|l| l.starts_with(&topic)),
            "no {event}: {got:?}"
        );
    }
    if !emulated() {
        // With the subreaper custos knows the exit status and passes it on.
        let died = got
            .iter()
            .find(|l| l.starts_with("custos/testd/died "))
            .expect("died");
        assert!(
            died.contains("\"cause\":\"exited with status 3\""),
            "{died}"
        );
    }
}

#[test]
fn a_full_queue_drops_events_counts_them_and_says_so_once() {
    let dir = tempdir("hook-full");
    // Eight hooks on died and restarting: one SIGKILL queues 16 runs. Each run holds its slot
    // while DIR/hold exists; three deaths (48 runs) overflow the 4 slots and the 32 places of
    // the queue.
    fs::write(dir.join("hold"), "").expect("hold");
    let hook = format!(
        "\n[[hook]]\non = [\"died\", \"restarting\"]\nrun = [\"/bin/sh\", \"-c\", \"while [ -e {d}/hold ]; do sleep 0.05; done\"]\ntimeout = \"60s\"\n",
        d = dir.display()
    );
    let mut c = Custos::start(&dir, &(testd_config(&dir, "") + &hook.repeat(8)));
    let mut old = 0;
    for n in 1..=3 {
        c.wait_log_count("testd: running as pid", n, 20);
        let pid = wait_new_pid(&dir.join("testd.pid"), old, 20);
        kill(pid, libc::SIGKILL);
        old = pid;
    }
    c.wait_log_count("testd: running as pid", 4, 20);
    fs::remove_file(dir.join("hold")).expect("rm hold");
    let log = c.wait_log("event(s) dropped: the queue of 32 was full", 30);
    let line = log
        .lines()
        .find(|l| l.contains("event(s) dropped"))
        .expect("line");
    let dropped: usize = line
        .split("hooks: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("count");
    // Every run that was not dropped starts once the slots free up: 48 in all.
    let started = c.wait_log_count(": running `/bin/sh -c while", 48 - dropped, 30);
    std::thread::sleep(Duration::from_millis(500));
    let text = c.log_text();
    c.stop();
    assert_eq!(dropped, 12, "{line}");
    assert_eq!(
        text.matches(": running `/bin/sh -c while").count(),
        36,
        "{started}"
    );
    assert_eq!(text.matches("event(s) dropped").count(), 1, "{text}");
}

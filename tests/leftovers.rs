//! A dead service's leftovers, black-box with the real binary and real pre-forking daemons: when
//! a master process dies (kill -9, a restart, `custos stop`), the workers it leaves behind in
//! its process group are stopped before the next start, so that they cannot keep the service's
//! port and keep it from starting again. A process that left the group on purpose (setsid) is
//! left alone, and `leftovers = "keep"` leaves them all.
//!
//! Needs custos to be the child subreaper (the workers become its children): under qemu-user
//! there is none, and these tests SKIP.

mod common;

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn skip_emulated() -> bool {
    if emulated() {
        eprintln!("SKIP: custos runs under qemu-user, which has no child subreaper: orphaned workers are never custos's, so it has no leftovers to find");
        return true;
    }
    false
}

/// What the server on `port` answers to a connection, if it answers within 300 ms.
fn ask(port: u16) -> Option<String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).ok()?;
    (!s.is_empty()).then_some(s)
}

/// An HTTP GET of / on `port`: the body, if it answers within 300 ms.
fn http_get(port: u16) -> Option<String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).ok()?;
    s.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn prefork_config(dir: &Path, extra: &str) -> String {
    format!(
        r#"{sup}
[[service]]
name = "prefork"
pidfile = "{dir}/prefork.pid"
start = ["/usr/bin/env", "python3", "{fx}/prefork.py", "start", "{dir}"]
stop = ["/usr/bin/env", "python3", "{fx}/prefork.py", "stop", "{dir}"]
stop_timeout = "2s"
{extra}
[service.restart]
stable_after = "1s"
"#,
        sup = supervisor_section(dir),
        dir = dir.display(),
        fx = FIXTURES
    )
}

/// The worker PIDs of the `n`th master (0-based), from DIR/workers.
fn workers(dir: &Path, n: usize) -> Vec<i32> {
    fs::read_to_string(dir.join("workers"))
        .unwrap_or_default()
        .lines()
        .nth(n)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Waits until the server on `port` answers from a master other than `old`; returns the
/// answer and how long it took from `since`.
fn wait_new_master(
    port: u16,
    old: i32,
    since: Instant,
    secs: u64,
    c: &Custos,
) -> (String, Duration) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(a) = ask(port) {
            if a.split_whitespace().next() != Some(old.to_string().as_str()) {
                return (a, since.elapsed());
            }
        }
        assert!(
            Instant::now() < end,
            "no new instance serving on {port} within {secs}s. Log:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until none of `pids` is alive.
fn wait_gone(pids: &[i32], secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while pids.iter().any(|&p| alive(p)) {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Kills what a test left running by PID (the Custos guard kills the masters' groups).
fn cleanup(pids: &[i32]) {
    for &p in pids {
        kill(p, libc::SIGKILL);
    }
}

/// The process group of `pid`, from /proc.
fn pgrp_of(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// What a test started, killed when it ends (also when it fails): PIDs, and process groups
/// (negative), and every PID the prefork fixture wrote in `dir` (masters, workers, helper).
struct Leave(Vec<i32>, Option<std::path::PathBuf>);

impl Leave {
    fn add(&mut self, pid: i32) {
        self.0.push(pid);
        if let Some(g) = pgrp_of(pid).filter(|&g| g > 1) {
            self.0.push(-g);
        }
    }
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(d) = self.1.take() {
            for f in ["starts", "workers", "helper.pid"] {
                let text = fs::read_to_string(d.join(f)).unwrap_or_default();
                for p in text
                    .split_whitespace()
                    .filter_map(|w| w.parse::<i32>().ok())
                {
                    if alive(p) {
                        self.add(p);
                    }
                }
            }
        }
        for &p in &self.0 {
            kill(p, libc::SIGKILL);
        }
    }
}

/// Starts custos on the prefork daemon and waits for its first master to serve.
fn start_prefork(dir: &Path, port: u16, extra: &str) -> (Leave, Custos, i32, Vec<i32>) {
    fs::write(dir.join("port"), port.to_string()).expect("port");
    let c = Custos::start(dir, &prefork_config(dir, extra));
    c.wait_running("prefork", 15);
    let master = wait_pid(&dir.join("prefork.pid"), 10);
    let w = workers(dir, 0);
    let mut leave = Leave(Vec::new(), Some(dir.to_path_buf()));
    leave.add(master);
    for &p in &w {
        leave.add(p);
    }
    assert_eq!(w.len(), 2, "{w:?}");
    let a = ask(port).unwrap_or_default();
    assert!(a.starts_with(&format!("{master} ")), "answer `{a}`");
    (leave, c, master, w)
}

#[test]
fn kill_9_of_the_master_stops_its_workers_and_a_new_instance_serves_within_2s() {
    if skip_emulated() {
        return;
    }
    let dir = tempdir("left-kill9");
    let port = free_port();
    let (_leave, c, master, w) = start_prefork(&dir, port, "");
    // Past stable_after: the death is restarted at once, no backoff.
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    kill(master, libc::SIGKILL);
    let (answer, took) = wait_new_master(port, master, t0, 10, &c);
    eprintln!(
        "kill -9 of master {master}: new instance answered `{}` after {took:?}",
        answer.trim()
    );
    assert!(
        wait_gone(&w, 2),
        "workers {w:?} still alive. Log:\n{}",
        c.log_text()
    );
    let text = c.log_text();
    let line = text
        .lines()
        .find(|l| l.contains("prefork: stopping 2 leftover process(es) of pid"))
        .unwrap_or_else(|| panic!("no leftover line:\n{text}"));
    assert!(line.contains(&format!("of pid {master} ")), "{line}");
    assert!(line.contains("sending SIGTERM to pid"), "{line}");
    for p in &w {
        assert!(line.contains(&p.to_string()), "{line}");
    }
    assert!(text.contains("prefork: leftovers of pid"), "{text}");
    // The leftovers are stopped before the start script runs.
    let stop_at = text.find("stopping 2 leftover").unwrap_or(usize::MAX);
    let start_at = text.rfind("prefork: starting (attempt").unwrap_or(0);
    assert!(stop_at < start_at, "{text}");
    assert!(
        took <= Duration::from_secs(2),
        "new instance after {took:?}:\n{text}"
    );
    cleanup(&w);
}

#[test]
fn a_master_that_changes_its_group_after_its_pidfile_still_has_its_workers_stopped() {
    if skip_emulated() {
        return;
    }
    let dir = tempdir("left-late-setsid");
    let port = free_port();
    fs::write(dir.join("late-setsid"), "").expect("switch");
    fs::write(dir.join("port"), port.to_string()).expect("port");
    let c = Custos::start(&dir, &prefork_config(&dir, ""));
    let master = wait_pid(&dir.join("prefork.pid"), 10);
    let mut leave = Leave(Vec::new(), Some(dir.clone()));
    leave.add(master);
    // Pinned in the group it was started in; then setsid, then the workers.
    let t = Instant::now();
    let mut w = Vec::new();
    while w.len() < 2 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        w = workers(&dir, 0);
    }
    for &p in &w {
        leave.add(p);
    }
    assert_eq!(w.len(), 2, "{w:?}:\n{}", c.log_text());
    assert_eq!(
        pgrp_of(w[0]),
        Some(master),
        "the workers are in the master's new group"
    );
    // A tick or two after the change, then the master dies.
    std::thread::sleep(Duration::from_millis(2500));
    kill(master, libc::SIGKILL);
    assert!(
        wait_gone(&w, 3),
        "workers {w:?} of the new group still alive. Log:\n{}",
        c.log_text()
    );
    let text = c.log_text();
    assert!(
        text.contains(&format!(
            "prefork: stopping 2 leftover process(es) of pid {master} "
        )),
        "{text}"
    );
    cleanup(&w);
}

#[test]
fn a_helper_that_made_its_own_session_is_left_alone() {
    if skip_emulated() {
        return;
    }
    let dir = tempdir("left-setsid");
    fs::write(dir.join("helper-setsid"), "").expect("switch");
    let port = free_port();
    let (mut leave, c, master, w) = start_prefork(&dir, port, "");
    let helper = wait_pid(&dir.join("helper.pid"), 5);
    leave.add(helper);
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    kill(master, libc::SIGKILL);
    wait_new_master(port, master, t0, 10, &c);
    assert!(wait_gone(&w, 2), "workers {w:?} alive:\n{}", c.log_text());
    std::thread::sleep(Duration::from_millis(300));
    let text = c.log_text();
    assert!(
        alive(helper),
        "the setsid helper {helper} was stopped:\n{text}"
    );
    assert!(text.contains("stopping 2 leftover process(es)"), "{text}");
    assert!(!text.contains(&format!(" {helper}\n")), "{text}");
    let mut all = w.clone();
    all.push(helper);
    cleanup(&all);
}

#[test]
fn leftovers_keep_leaves_the_workers_running() {
    if skip_emulated() {
        return;
    }
    let dir = tempdir("left-keep");
    let port = free_port();
    let (_leave, c, master, w) = start_prefork(&dir, port, "leftovers = \"keep\"\n");
    std::thread::sleep(Duration::from_millis(1200));
    kill(master, libc::SIGKILL);
    // The next master cannot bind the port the old workers hold.
    c.wait_log("Address already in use", 15);
    let text = c.log_text();
    assert!(
        w.iter().all(|&p| alive(p)),
        "workers {w:?} stopped:\n{text}"
    );
    assert!(!text.contains("leftover"), "{text}");
    cleanup(&w);
}

#[test]
fn a_restart_and_a_stop_by_custos_stop_the_leftovers_too() {
    if skip_emulated() {
        return;
    }
    let dir = tempdir("left-restart");
    // The master's SIGTERM handler exits 0 and forgets its workers.
    fs::write(dir.join("term-leaves-workers"), "").expect("switch");
    let port = free_port();
    let (mut leave, c, master, w) = start_prefork(&dir, port, "");
    let t0 = Instant::now();
    let reply = c.ctl(&["restart", "prefork"]).out;
    assert!(reply.contains("restart"), "{reply}");
    let (_, took) = wait_new_master(port, master, t0, 10, &c);
    eprintln!("custos restart: new instance after {took:?}");
    assert!(wait_gone(&w, 2), "workers {w:?} alive:\n{}", c.log_text());
    let text = c.wait_log("prefork: running as pid", 5);
    // Asked to stop by its stop script, it exited 0: a requested stop, not a WARN death.
    assert!(
        text.contains(&format!(
            "INFO  [custos::supervisor] prefork: stopped: exited with status 0 (pid {master}, up "
        )),
        "{text}"
    );
    assert!(text.contains(", as its stop script asked"), "{text}");
    assert!(!text.contains("its stop script killed it"), "{text}");
    assert!(
        !text.contains(&format!(
            "prefork: died: exited with status 0 (pid {master}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("stopping 2 leftover process(es) of pid {master} ")),
        "{text}"
    );

    // `custos stop`: the same, and nothing is started after.
    let master2 = wait_pid(&dir.join("prefork.pid"), 5);
    leave.add(master2);
    let w2 = workers(&dir, 1);
    assert_eq!(w2.len(), 2, "{w2:?}");
    let reply = c.ctl(&["stop", "prefork"]).out;
    assert!(reply.contains("stop"), "{reply}");
    let text = c.wait_log("prefork: stopped; not monitored", 10);
    assert!(wait_gone(&w2, 2), "workers {w2:?} alive:\n{text}");
    assert!(
        text.contains(&format!(
            "stopping 2 leftover process(es) of pid {master2} "
        )),
        "{text}"
    );
    assert!(ask(port).is_none(), "still served after custos stop");
    let mut all = w.clone();
    all.extend(w2);
    cleanup(&all);
}

#[test]
fn start_script_output_without_a_newline_is_a_line_of_its_own() {
    let dir = tempdir("left-nonewline");
    // The start script's last output has no newline; the next start script's output follows.
    let start = format!(
        "start = [\"/bin/sh\", \"-c\", \"/bin/sh {FIXTURES}/testd start {d} && printf 'started, no newline'\"]",
        d = dir.display()
    );
    let config = testd_config(&dir, "")
        .lines()
        .map(|l| {
            if l.starts_with("start = ") {
                start.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = Custos::start(&dir, &config);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 10);
    kill(pid, libc::SIGKILL);
    let text = c.wait_log_count("testd: running as pid", 2, 15);
    assert!(!text.contains("no newlinetestd"), "glued:\n{text}");
    let own = text
        .lines()
        .filter(|l| l.ends_with("testd: | started, no newline"))
        .count();
    assert!(own >= 1, "{text}");
}

#[test]
fn nginx_kill_9_of_the_master_stops_its_workers_and_a_new_nginx_serves_within_3s() {
    if skip_emulated() {
        return;
    }
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        eprintln!("SKIP: /usr/sbin/nginx is not installed (scripts/setup installs nginx-light)");
        return;
    }
    let dir = tempdir("left-nginx");
    let port = free_port();
    for sub in ["logs", "tmp"] {
        fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let d = dir.display();
    let conf = format!(
        r#"daemon on;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "nginx $pid\n"; }}
    }}
}}
"#
    );
    fs::write(dir.join("nginx.conf"), conf).expect("conf");
    let config = format!(
        r#"[supervisor]
interval = "100ms"
state_dir = "{d}"
control_socket = "{d}/custos.sock"

[[service]]
name = "nginx"
pidfile = "{d}/nginx.pid"
start = ["/usr/sbin/nginx", "-p", "{d}/", "-c", "{d}/nginx.conf"]
stop = ["/usr/sbin/nginx", "-p", "{d}/", "-c", "{d}/nginx.conf", "-s", "quit"]
stop_timeout = "2s"
[service.restart]
stable_after = "1s"
"#
    );
    let c = Custos::start(&dir, &config);
    c.wait_running("nginx", 15);
    let master = wait_pid(&dir.join("nginx.pid"), 10);
    let mut leave = Leave(Vec::new(), None);
    leave.add(master);
    // Its workers: its children, found in /proc.
    let children = |parent: i32| -> Vec<i32> {
        fs::read_dir("/proc")
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .filter(|&p| {
                        fs::read_to_string(format!("/proc/{p}/stat"))
                            .ok()
                            .and_then(|s| {
                                s.rsplit_once(')')
                                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
                            })
                            == Some(parent)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let end = Instant::now() + Duration::from_secs(5);
    let w = loop {
        let w = children(master);
        if w.len() >= 2 || Instant::now() > end {
            break w;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for &p in &w {
        leave.add(p);
    }
    assert_eq!(w.len(), 2, "nginx workers: {w:?}");
    let body = http_get(port).unwrap_or_default();
    assert!(body.contains("nginx "), "answer `{body}`");
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = Instant::now();
    kill(master, libc::SIGKILL);
    let end = Instant::now() + Duration::from_secs(10);
    let took = loop {
        let served_by_new = http_get(port).is_some_and(|b| {
            b.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| p != master && !w.contains(&p))
        });
        if served_by_new {
            break t0.elapsed();
        }
        assert!(
            Instant::now() < end,
            "no new nginx serving within 10s. Log:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("nginx: kill -9 of master {master}: a new nginx served after {took:?}");
    let text = c.log_text();
    assert!(wait_gone(&w, 2), "nginx workers {w:?} alive:\n{text}");
    assert!(
        text.contains(&format!(
            "nginx: stopping 2 leftover process(es) of pid {master} "
        )),
        "{text}"
    );
    assert!(
        took <= Duration::from_secs(3),
        "new nginx after {took:?}:\n{text}"
    );
    // Leave nothing running: the new master and its workers (its group).
    let new = wait_pid(&dir.join("nginx.pid"), 5);
    leave.add(new);
    drop(c);
}

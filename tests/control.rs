//! The control socket and the record of events, end to end: the real binary as server and as
//! client, real sockets, a dropped uid, hostile clients, and a record that outlives custos.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;

fn wait_socket(c: &Custos) {
    c.wait_log("control: listening on", 10);
}

#[test]
fn status_stop_start_restart_events_and_why() {
    let dir = tempdir("ctl-e2e");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    let pid = c.wait_running("testd", 10);
    assert_eq!(pid, wait_pid(&dir.join("testd.pid"), 5));

    // The human form, as operators read it.
    let Reply { code, out, err } = c.ctl(&["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("testd") && out.contains("running") && out.contains(&format!("pid {pid}")),
        "{out}"
    );
    let Reply { code, out, .. } = c.ctl(&["status", "--json"]);
    assert_eq!(code, Some(0));
    let status = Json::of(&out);
    assert_eq!(status["ok"], true, "{out}");
    assert_eq!(status["schema"], "custos.status/1", "{out}");
    assert_eq!(status["services"].items().len(), 1, "{out}");
    let svc = &status["services"][0];
    assert_eq!(svc["name"], "testd", "{out}");
    assert_eq!(svc["state"], "running", "{out}");
    assert_eq!(svc["pid"], i64::from(pid), "{out}");

    // stop: graceful, then it stays stopped.
    let Reply { code, out, .. } = c.ctl(&["stop", "testd"]);
    assert_eq!(code, Some(0), "{out}");
    c.wait_service("testd", 10, |s| s["state"] == "unmonitored");
    let stopped = c.wait_events("testd", "stopped", 2, 5);
    assert!(
        stopped[0]["text"].starts_with("stopping: asked by the operator"),
        "{stopped:?}"
    );
    assert!(
        stopped[1]["text"].starts_with("stopped; not monitored until `custos start`"),
        "{stopped:?}"
    );
    assert!(!alive(pid));
    std::thread::sleep(Duration::from_millis(700));
    let started = c.events_of("testd", "started");
    assert_eq!(started.len(), 1, "restarted after stop: {started:?}");
    let svc = c.service("testd");
    assert_eq!(svc["state"], "unmonitored", "{svc:?}");
    assert!(svc["pid"].is_null(), "{svc:?}");
    let Reply { out, .. } = c.ctl(&["status"]);
    assert!(out.contains("unmonitored"), "{out}");

    // start: monitored again and started.
    let Reply { code, .. } = c.ctl(&["start", "testd"]);
    assert_eq!(code, Some(0));
    let pid2 = wait_new_pid(&dir.join("testd.pid"), pid, 10);
    assert_eq!(c.wait_running_other("testd", pid, 10), pid2);

    // restart: stop script, SIGTERM, then a new process.
    let Reply { code, .. } = c.ctl(&["restart", "testd"]);
    assert_eq!(code, Some(0));
    let restarted = c.wait_event("testd", "restarted", 10);
    assert_eq!(restarted["text"], "restarting: asked by the operator");
    let pid3 = wait_new_pid(&dir.join("testd.pid"), pid2, 10);
    assert!(!alive(pid2));

    // The human form of the record.

    let Reply { code, out, .. } = c.ctl(&["events"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("custos-start: custos 0.1.0 started with 1 service(s)"),
        "{out}"
    );
    assert!(
        out.contains("testd stopped: stopping: asked by the operator"),
        "{out}"
    );
    assert!(
        out.contains("testd restarted: restarting: asked by the operator"),
        "{out}"
    );
    let Reply { code, out, .. } = c.ctl(&["why", "testd"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("testd died: "), "{out}");
    assert!(
        !out.contains("custos-start"),
        "why is about one service:\n{out}"
    );
    let _ = pid3;

    let Reply { code, err, .. } = c.ctl(&["stop", "nosuch"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no service named `nosuch`"), "{err}");
}

#[test]
fn events_follow_streams_new_events() {
    let dir = tempdir("ctl-follow");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    let mut s = UnixStream::connect(dir.join("custos.sock")).expect("connect");
    s.write_all(b"{\"cmd\":\"events\",\"follow\":true,\"json\":true}\n")
        .expect("send");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("first reply");
    got.push_str(&String::from_utf8_lossy(&buf[..n]));
    kill(pid, libc::SIGKILL);
    let end = Instant::now() + Duration::from_secs(10);
    while !got.contains("\"kind\":\"died\"") && Instant::now() < end {
        if let Ok(n) = s.read(&mut buf) {
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(got.contains("\"kind\":\"died\""), "{got}");
    assert!(got.contains(&format!("(pid {pid}")), "{got}");
}

#[test]
fn a_non_root_peer_is_refused_and_logged() {
    // SAFETY: geteuid(2) has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: dropping to another uid needs root");
        return;
    }
    let dir = tempdir("ctl-uid");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    let sock = dir.join("custos.sock");
    let mode = fs::metadata(&sock)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let as_nobody = || {
        custos_command()
            .arg("--socket")
            .arg(&sock)
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("client")
    };
    // The file mode stops it first.
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // With the mode relaxed by mistake, SO_PEERCRED still refuses it, and says so.
    fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod dir");
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    c.wait_log("control: refused a request from pid ", 5);
    c.wait_log("(uid 65534, gid 65534): only root may control custos", 1);
}

#[test]
fn oversized_garbage_and_slow_clients_change_nothing() {
    let dir = tempdir("ctl-hostile");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    c.wait_running("testd", 10);
    let sock = dir.join("custos.sock");
    let ask = |bytes: &[u8]| -> String {
        let mut s = UnixStream::connect(&sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let _ = s.write_all(bytes);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(ask(&[b'x'; 600]).contains("bad request: longer than 512 bytes"));
    assert!(ask(b"\x00\x01garbage\n").contains("bad request: malformed JSON"));
    assert!(ask(b"{\"cmd\":\"frobnicate\"}\n").contains("unknown command `frobnicate`"));
    // Slow clients: they take every slot, say nothing, and are dropped after 2 s.
    let slow: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&sock).expect("slow"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(ask(b"{\"cmd\":\"status\"}\n").contains("busy: too many control clients"));
    // Meanwhile supervision goes on.
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    wait_new_pid(&dir.join("testd.pid"), pid, 10);
    let t0 = Instant::now();
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut b = [0u8; 16];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0, "a slow client is closed");
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The slots are free again; the restarted service shows as running once custos has
    // identified it (a moment after its new pidfile, on a slow emulated run).
    let mut last = String::new();
    for _ in 0..50 {
        last = ask(b"{\"cmd\":\"status\"}\n");
        if last.contains("running") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        last.contains("running"),
        "status after the slow clients: {last:?}"
    );
}

#[test]
fn the_record_survives_a_restart_of_custos_and_a_corrupt_one_is_replaced() {
    let dir = tempdir("ctl-record");
    let mut c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    c.wait_log("testd: died:", 10);
    assert_eq!(c.stop(), Some(0));
    let text = fs::read_to_string(dir.join("record")).expect("record file");
    assert!(text.contains("died"), "{text}");
    drop(c);

    let c = Custos::start(&dir, &testd_config(&dir, ""));
    wait_socket(&c);
    let Reply { code, out, .. } = c.ctl(&["why", "testd"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("testd died: ") && out.contains(&format!("(pid {pid}")),
        "{out}"
    );
    drop(c);

    // Corrupt it: custos says so, sets it aside, and carries on.
    let mut bytes = fs::read(dir.join("record")).expect("read");
    let last = bytes.len() - 5;
    bytes[last] ^= 0x55;
    fs::write(dir.join("record"), bytes).expect("write");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("is corrupt", 10);
    c.wait_log("running as pid", 10);
    let Reply { code, out, .. } = c.ctl(&["events"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("custos-start"), "{out}");
}

/// A group from /etc/group other than root's and nobody's: (name, gid).
fn some_group() -> Option<(String, u32)> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let gid: u32 = f.nth(1)?.parse().ok()?;
        (gid != 0 && gid < 65534 && !name.is_empty()).then(|| (name.to_string(), gid))
    })
}

/// Runs /usr/bin/python3 (started as root) as uid and gid 65534 with the supplementary groups
/// `groups`: it connects to `sock`, sends `request` and, with `wait_reply`, prints the reply;
/// without, it exits at once, before custos has looked at it.
fn client_as_nobody(
    sock: &std::path::Path,
    groups: &[u32],
    request: &str,
    wait_reply: bool,
) -> String {
    let script = format!(
        "import os, socket, sys\nos.setgroups({groups:?})\nos.setgid(65534)\nos.setuid(65534)\n\
         s = socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect(sys.argv[1])\n\
         try:\n    s.sendall(sys.argv[2].encode() + b'\\n')\nexcept BrokenPipeError:\n    pass\n\
         if {w}:\n    print(s.recv(4096).decode(errors='replace'))\n",
        w = if wait_reply { "True" } else { "False" }
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(sock)
        .arg(request)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "client failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// control_group: a peer whose supplementary groups include it may control custos, one whose
/// groups do not is refused. Group membership is the peer's at connect time (SO_PEERGROUPS),
/// not whatever /proc/PID says when custos gets to the connection: here the member sends
/// `stop` and exits while custos is stopped, so its /proc/PID is gone by then, and the stop
/// is still obeyed.
#[test]
fn control_group_membership_is_the_peers_at_connect_time() {
    // SAFETY: geteuid(2) has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: dropping to another uid needs root");
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP: no /usr/bin/python3 for the client (scripts/setup installs it)");
        return;
    }
    let Some((group, gid)) = some_group() else {
        eprintln!("SKIP: no group in /etc/group to use as control_group");
        return;
    };
    let dir = tempdir("ctl-group");
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod dir");
    let cfg = testd_config(&dir, "").replacen(
        "control_socket = ",
        &format!("control_group = \"{group}\"\ncontrol_socket = "),
        1,
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_running("testd", 10);
    wait_socket(&c);
    let sock = dir.join("custos.sock");
    let status = r#"{"cmd":"status","json":false,"follow":false}"#;
    // A member asking while custos runs.
    let out = client_as_nobody(&sock, &[gid], status, true);
    assert!(out.contains("testd"), "member refused: {out}");
    // Not a member: the file mode stops it first; with the mode relaxed by mistake,
    // custos refuses it.
    fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666)).expect("chmod");
    let out = client_as_nobody(&sock, &[], status, true);
    assert!(
        out.contains("permission denied"),
        "non-member allowed: {out}"
    );
    c.wait_log(
        "(uid 65534, gid 65534): only root and the control_group may control custos",
        5,
    );
    if emulated() {
        eprintln!("SKIP the gone-client part: qemu-user may not pass SO_PEERGROUPS through");
        return;
    }
    // A member that is gone by the time custos reads its connection.
    c.signal(libc::SIGSTOP);
    client_as_nobody(
        &sock,
        &[gid],
        r#"{"cmd":"stop","name":"testd","json":false,"follow":false}"#,
        false,
    );
    c.signal(libc::SIGCONT);
    let text = c.wait_log("control: stop testd: asked by the operator", 10);
    assert_eq!(
        text.matches("only root and the control_group").count(),
        1,
        "{text}"
    );
}

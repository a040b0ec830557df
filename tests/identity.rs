//! Identity: what custos pins and what it never pins, with real processes and real pidfiles.
//! custos itself, init and kernel threads are never pinned or signalled, whatever a pidfile
//! says; an `exe` identity that could match init is refused when the config loads.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

/// A service whose start script writes `pid_expr` (shell) into its pidfile and starts nothing,
/// with a check that always fails: were the PID ever pinned, the check would restart it, and
/// the restart would signal it.
fn liar_config(dir: &Path, pid_expr: &str) -> String {
    format!(
        r#"{sup}
[[service]]
name = "liar"
pidfile = "{dir}/liar.pid"
start = ["/bin/sh", "-c", "echo {pid_expr} > {dir}/liar.pid"]
start_timeout = "1s"
stop_timeout = "1s"

[[service.check]]
kind = "program"
argv = ["/bin/false"]
every = "1s"
grace = "1ms"
"#,
        sup = supervisor_section(dir),
        dir = dir.display()
    )
}

/// Runs the liar service with a pidfile naming `pid_expr` and checks that custos says why it
/// never pins it, never signals anything, stays alive, and shows the reason in `status` and
/// `why`.
fn never_pinned(test: &str, pid_expr: &str, pid: i32, what: &str) {
    let dir = tempdir(test);
    let mut c = Custos::start(&dir, &liar_config(&dir, pid_expr));
    let reason = format!("pidfile names pid {pid}, which is {what}: never pinned, never signalled");
    c.wait_log(&reason, 10);
    // A few more rounds of start, look, back off: still nothing pinned, nothing signalled.
    c.wait_log_count(&reason, 2, 10);
    let log = c.log_text();
    assert!(!log.contains("sending SIG"), "{log}");
    assert!(!log.contains("running as pid"), "{log}");
    assert!(!log.contains("found running as pid"), "{log}");
    assert!(
        c.child.try_wait().expect("try_wait").is_none(),
        "custos exited:\n{log}"
    );
    let Reply { code, out, err } = c.ctl(&["why", "liar"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&reason), "why:\n{out}");
    let svc = c.service("liar");
    assert!(svc["pid"].is_null(), "pinned: {svc:?}");
    // Between attempts, status says why the service is not running (only the human form
    // carries the reason of a wait: status --json has no field for it).
    let Reply { out, .. } = c.ctl(&["status"]);
    if out.contains("waiting") {
        assert!(out.contains(what), "status:\n{out}");
    }
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn a_pidfile_naming_custos_itself_is_never_pinned() {
    // The script's parent is custos (under qemu-user: the qemu process that is custos).
    let dir = tempdir("self");
    let mut c = Custos::start(&dir, &liar_config(&dir, "$PPID"));
    let me = c.child.id() as i32;
    let reason = format!("pidfile names pid {me}, which is custos itself: never pinned");
    c.wait_log_count(&reason, 2, 10);
    let log = c.log_text();
    assert!(!log.contains("sending SIG"), "{log}");
    assert!(
        c.child.try_wait().expect("try_wait").is_none(),
        "custos exited:\n{log}"
    );
    let Reply { out, .. } = c.ctl(&["why", "liar"]);
    assert!(out.contains(&reason), "why:\n{out}");
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn a_pidfile_naming_init_is_never_pinned() {
    never_pinned("init", "1", 1, "init (PID 1)");
}

#[test]
fn a_pidfile_naming_a_kernel_thread_is_never_pinned() {
    // kthreadd is PID 2 on Linux; look for any kernel thread if this one is not visible.
    let kthread = (2..200).find(|&p| {
        fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_string();
                let flags: u64 = rest.split_whitespace().nth(6)?.parse().ok()?;
                Some(flags & 0x0020_0000 != 0)
            })
            .unwrap_or(false)
    });
    let Some(k) = kthread else {
        eprintln!("SKIP: no kernel thread visible in /proc (a container?)");
        return;
    };
    never_pinned("kthread", &k.to_string(), k, "a kernel thread");
    // The kernel thread lives on, untouched (it ignores signals anyway; custos sent none).
    std::thread::sleep(Duration::from_millis(10));
    assert!(Path::new(&format!("/proc/{k}")).exists());
}

#[test]
fn check_refuses_an_exe_identity_that_could_match_init() {
    let Ok(init_exe) = fs::read_link("/proc/1/exe") else {
        eprintln!("SKIP: /proc/1/exe is not readable here");
        return;
    };
    let init_args = fs::read("/proc/1/cmdline").expect("cmdline");
    let argv: Vec<String> = init_args
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let args = argv.get(1..).map(|a| a.join(" ")).unwrap_or_default();
    let dir = tempdir("init-exe");
    for extra in [String::new(), format!("args = {args:?}\n")] {
        let p = dir.join("custos.toml");
        fs::write(
            &p,
            format!(
                "[[service]]\nname = \"x\"\nexe = {:?}\n{extra}start = [\"/bin/true\"]\n",
                init_exe.display().to_string()
            ),
        )
        .expect("write");
        let out = custos_command()
            .args(["check", "-c"])
            .arg(&p)
            .output()
            .expect("run custos check");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "accepted:\n{err}");
        assert!(
            err.contains(":3: service.exe (service `x`): ") && err.contains("could match PID 1"),
            "{err}"
        );
    }
}

/// A pidfile written an hour before the live, unrelated process it names started, met when
/// custos starts: stale by the wall clock, but custos did not watch the clock while it was
/// written, so a step could explain it. custos holds (never a second copy on doubt), says why
/// in the log, status and why, and the operator decides: `custos start` starts the service
/// and leaves the process alone.
#[test]
fn a_stale_looking_pidfile_custos_cannot_verify_is_held_until_the_operator_decides() {
    let dir = tempdir("held-stale");
    let mut unrelated = std::process::Command::new("/bin/sleep")
        .arg("100000")
        .spawn()
        .expect("spawn sleep");
    let upid = unrelated.id() as i32;
    let pf = dir.join("testd.pid");
    fs::write(&pf, format!("{upid}\n")).expect("write pidfile");
    backdate(&pf, 3600);
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log(
        &format!("testd: held: the pidfile names pid {upid}, which cannot be verified: the pidfile looks written before the process started"),
        10,
    );
    c.wait_log("control: listening on", 10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        starts(&dir).is_empty(),
        "started on doubt:\n{}",
        c.log_text()
    );
    let svc = c.service("testd");
    assert_eq!(svc["state"], "held", "{svc:?}");
    assert_eq!(svc["held_pid"], i64::from(upid), "{svc:?}");
    assert!(svc["pid"].is_null(), "{svc:?}");
    assert!(
        svc["held_why"].contains("written before the process started"),
        "{svc:?}"
    );
    let Reply { out, .. } = c.ctl(&["why", "testd"]);
    assert!(out.contains("held: the pidfile names pid"), "{out}");
    // The operator: it is not the service.
    let Reply { code, out, err } = c.ctl(&["start", "testd"]);
    assert_eq!(code, Some(0), "{out}{err}");
    c.wait_log(
        &format!("testd: starting (attempt 1): asked by the operator: pid {upid}, held as unverified, is not the service"),
        10,
    );
    assert_ne!(c.wait_running("testd", 10), upid);
    assert!(alive(upid), "the unrelated process was touched");
    assert!(!c.log_text().contains(&format!("to pid {upid}")));
    let _ = unrelated.kill();
    let _ = unrelated.wait();
}

/// The service's daemon dies and its pidfile is rewritten (fresh mtime) to name a process
/// that has been alive since before that daemon: never adopted; the service is started.
#[test]
fn a_pidfile_rewritten_to_name_an_older_process_is_never_adopted() {
    let dir = tempdir("older");
    let mut older = std::process::Command::new("/bin/sleep")
        .arg("100000")
        .spawn()
        .expect("spawn sleep");
    let opid = older.id() as i32;
    // Its start time must be a tick or more before the daemon's.
    std::thread::sleep(Duration::from_millis(100));
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_running("testd", 10);
    let pf = dir.join("testd.pid");
    let daemon = wait_pid(&pf, 10);
    fs::write(dir.join("testd.pid.tmp"), format!("{opid}\n")).expect("write");
    fs::rename(dir.join("testd.pid.tmp"), &pf).expect("rename");
    kill(daemon, libc::SIGKILL);
    c.wait_log(
        &format!("pid {opid} started before pid {daemon}, the service's last pinned process"),
        10,
    );
    let new = c.wait_running_other("testd", daemon, 10);
    assert_ne!(new, opid, "adopted the older process");
    let log = c.log_text();
    assert!(!log.contains(&format!("running as pid {opid}")), "{log}");
    assert!(!log.contains(&format!("to pid {opid}")), "{log}");
    assert!(alive(opid));
    assert_eq!(starts(&dir).len(), 2, "{log}");
    let _ = older.kill();
    let _ = older.wait();
}

/// A loop-mounted filesystem for one test; unmounted and removed on drop.
struct LoopMount {
    dir: std::path::PathBuf,
    img: std::path::PathBuf,
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // The daemons the test started (listed there), then the mount.
        for p in starts(&self.dir) {
            kill(p, libc::SIGKILL);
        }
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = fs::remove_file(&self.img);
    }
}

/// Makes a 16 MiB image with `mkfs` (its argv, the image path appended) and loop-mounts it;
/// `None`, after saying why, when that cannot be done here.
fn loop_mount(test: &str, mkfs: &[&str]) -> Option<LoopMount> {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP {test}: loop mounts need root");
        return None;
    }
    let base = tempdir(test);
    let img = base.join("fs.img");
    let dir = base.join("mnt");
    fs::create_dir_all(&dir).expect("mnt dir");
    let f = fs::File::create(&img).expect("image");
    f.set_len(16 << 20).expect("size");
    drop(f);
    let made = std::process::Command::new(mkfs[0])
        .args(&mkfs[1..])
        .arg(&img)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "SKIP {test}: {mkfs:?} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            eprintln!(
                "SKIP {test}: cannot run {} ({e}; scripts/setup installs it)",
                mkfs[0]
            );
            return None;
        }
    }
    let m = std::process::Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&dir)
        .output()
        .expect("run mount");
    if !m.status.success() {
        eprintln!(
            "SKIP {test}: cannot loop-mount it here: {}",
            String::from_utf8_lossy(&m.stderr).trim()
        );
        let _ = fs::remove_file(&img);
        return None;
    }
    Some(LoopMount { dir, img })
}

/// The service's pidfile on a filesystem that keeps whole-second (ext4 with 128-byte inodes)
/// or two-second (FAT) timestamps: a fresh pidfile's mtime is truncated to before its process
/// started. Over a few crashes and restarts custos starts exactly one daemon each time (it
/// once ran the start script 6 times in 15 s and left 6 daemons running).
#[test]
fn coarse_timestamps_never_make_a_second_copy() {
    for (name, mkfs) in [
        ("ext4-128", &["mkfs.ext4", "-q", "-F", "-I", "128"][..]),
        ("vfat", &["mkfs.vfat"][..]),
    ] {
        let test = format!("coarse-{name}");
        let Some(m) = loop_mount(&test, mkfs) else {
            continue;
        };
        let host = tempdir(&format!("{test}-host"));
        let svc = m.dir.display().to_string();
        let cfg = format!(
            r#"[supervisor]
interval = "100ms"
state_dir = "{host}"
control_socket = "{host}/custos.sock"

[[service]]
name = "testd"
pidfile = "{svc}/testd.pid"
start = ["/bin/sh", "{fx}/testd", "start", "{svc}"]
start_timeout = "5s"
stop_timeout = "1s"
"#,
            host = host.display(),
            fx = FIXTURES
        );
        let c = Custos::start(&host, &cfg);
        let pf = m.dir.join("testd.pid");
        c.wait_running("testd", 15);
        let mut pid = wait_pid(&pf, 10);
        for round in 2..=4 {
            // Within the same second as the previous write, now and then.
            kill(pid, libc::SIGKILL);
            pid = wait_new_pid(&pf, pid, 15);
            c.wait_log_count("testd: running as pid", round, 15);
        }
        std::thread::sleep(Duration::from_millis(1500));
        let log = c.log_text();
        let n = starts(&m.dir);
        assert_eq!(n.len(), 4, "{name}: daemons started: {n:?}\n{log}");
        assert!(
            !log.contains("no identified process appeared"),
            "{name}:\n{log}"
        );
        assert!(!log.contains("held:"), "{name}:\n{log}");
        drop(c);
        drop(m);
    }
}

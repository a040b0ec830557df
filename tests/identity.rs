//! Identity: what custos pins and what it never pins, with real processes and real pidfiles.
//! custos itself, init and kernel threads are never pinned or signalled, whatever a pidfile
//! says; an `exe` identity that could match init is refused when the config loads.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

fn ctl(c: &Custos, args: &[&str]) -> (Option<i32>, String, String) {
    let sock = c.dir.join("custos.sock");
    let out = custos_command()
        .arg("--socket")
        .arg(&sock)
        .args(args)
        .output()
        .expect("run client");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A service whose start script writes `pid_expr` (shell) into its pidfile and starts nothing,
/// with a check that always fails: were the PID ever pinned, the check would restart it, and
/// the restart would signal it.
fn liar_config(dir: &Path, pid_expr: &str) -> String {
    format!(
        r#"[supervisor]
interval = "100ms"
state_dir = "{dir}"
control_socket = "{dir}/custos.sock"

[[service]]
name = "liar"
pidfile = "{dir}/liar.pid"
start = ["/bin/sh", "-c", "echo {pid_expr} > {dir}/liar.pid"]
start_timeout = "1s"
stop_timeout = "1s"

[[service.check]]
kind = "program"
argv = ["/bin/false"]
every = "100ms"
grace = "1ms"
"#,
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
    let (code, out, err) = ctl(&c, &["why", "liar"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&reason), "why:\n{out}");
    let (_, out, _) = ctl(&c, &["status"]);
    // Between attempts, status says why the service is not running.
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
    let (_, out, _) = ctl(&c, &["why", "liar"]);
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

//! The fault matrix: one table of black-box cases, each with its own config, fixtures and
//! bounded runtime, asserting a promise the README makes. Three invariants are checked after
//! every case:
//!
//! - no panic: no `panicked` in custos's output, and no exit status 101;
//! - custos is alive at the end, unless the case expects it to exit;
//! - no decoy got a signal. Decoys (`tests/fixtures/decoy.py`) catch every catchable signal and
//!   record it; each case starts two (one with the service's own command line plus an argument)
//!   and most cases more: named by hostile pidfiles, with the very command line of the
//!   service, holding a port the service wants, forked by a start script. custos pins none of
//!   them, so none may hear from it.
//!
//! Cases run in parallel on a few threads; each prints `ok NAME`, `FAIL NAME: why` or
//! `SKIP NAME: why`, then the run prints `N passed, M failed, K skipped` and fails if M > 0.
//! `MATRIX=substring` runs only the cases whose name contains it; `MATRIX_JOBS=N` sets the
//! number of threads; `MATRIX_KEEP=1` keeps every case's directory (a failed case's is kept).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

type R = Result<(), String>;
type RunFn = Box<dyn Fn(&mut Ctx) -> R + Send + Sync>;

struct Case {
    name: String,
    /// The README's fault-model group.
    group: &'static str,
    run: RunFn,
    /// custos is expected to have exited at the end (or never to have run).
    exits: bool,
    /// Why the case cannot run under qemu-user, if it cannot.
    not_emulated: Option<&'static str>,
    /// Needs root (mounts, other users).
    root: bool,
    /// Runs alone, after the others.
    heavy: bool,
}

fn case(
    name: impl Into<String>,
    group: &'static str,
    run: impl Fn(&mut Ctx) -> R + Send + Sync + 'static,
) -> Case {
    Case {
        name: name.into(),
        group,
        run: Box::new(run),
        exits: false,
        not_emulated: None,
        root: false,
        heavy: false,
    }
}

impl Case {
    fn exits(mut self) -> Self {
        self.exits = true;
        self
    }
    fn not_emulated(mut self, why: &'static str) -> Self {
        self.not_emulated = Some(why);
        self
    }
    fn root(mut self) -> Self {
        self.root = true;
        self
    }
    fn heavy(mut self) -> Self {
        self.heavy = true;
        self
    }
}

/// One case's world: its directory, its custos, its decoys.
struct Ctx {
    dir: PathBuf,
    custos: Option<Custos>,
    /// Every decoy: PID and signal log. Any line in a log fails the case.
    decoys: Vec<(i32, PathBuf)>,
    /// Signal logs of decoys the case started indirectly (a start script forks them).
    extra_logs: Vec<PathBuf>,
    /// Processes to SIGKILL at the end (decoys, helpers).
    kill: Vec<Child>,
    /// Process groups to SIGKILL at the end.
    kill_groups: Vec<i32>,
    /// Output of custos runs that were not `Custos` (check, one-shot runs): searched for panics.
    outputs: Vec<(Option<i32>, String)>,
    /// When the case began (boot clock, s): processes started since may be the case's own.
    t0: f64,
}

fn boot_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// When process `pid` started (boot clock, s), from /proc/PID/stat.
fn started_at(pid: i32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Waits up to `secs` for `f` to give Some.
fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        sleep_ms(20);
    }
}

fn python() -> PathBuf {
    fs::canonicalize("/usr/bin/python3").unwrap_or_else(|_| PathBuf::from("/usr/bin/python3"))
}

fn decoy_py() -> String {
    format!("{FIXTURES}/decoy.py")
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(25);
    lines[from..].join("\n    ")
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn signal(pid: i32, sig: i32) {
    kill(pid, sig);
}

impl Ctx {
    fn new(name: &str) -> Ctx {
        Ctx {
            dir: tempdir(&format!("mx-{name}")),
            custos: None,
            decoys: Vec::new(),
            extra_logs: Vec::new(),
            kill: Vec::new(),
            kill_groups: Vec::new(),
            outputs: Vec::new(),
            t0: boot_secs(),
        }
    }

    fn d(&self) -> String {
        self.dir.display().to_string()
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts a decoy with these arguments (after decoy.py) and environment; waits until its
    /// handlers are installed. Returns its PID.
    fn decoy_env(&mut self, args: &[&str], env: &[(&str, String)]) -> Result<i32, String> {
        self.decoy_exe(&python(), args, env)
    }

    fn decoy_exe(
        &mut self,
        exe: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Result<i32, String> {
        let log = self.p(&format!("decoy-{}.sig", self.decoys.len()));
        let mut cmd = Command::new(exe);
        cmd.arg(decoy_py())
            .args(args)
            .env("DECOY_LOG", &log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| format!("decoy: {e}"))?;
        let pid = child.id() as i32;
        self.kill.push(child);
        self.decoys.push((pid, log.clone()));
        wait_for(10, || log.exists().then_some(()))
            .ok_or_else(|| format!("decoy {pid} not ready in 10s"))?;
        Ok(pid)
    }

    fn decoy(&mut self, args: &[&str]) -> Result<i32, String> {
        self.decoy_env(args, &[])
    }

    fn start(&mut self, config: &str) {
        self.custos = Some(Custos::start(&self.dir, config));
    }

    fn c(&self) -> Result<&Custos, String> {
        self.custos
            .as_ref()
            .ok_or_else(|| "custos not started".into())
    }

    fn log(&self) -> String {
        self.custos
            .as_ref()
            .map(|c| c.log_text())
            .unwrap_or_default()
    }

    fn wait_n(&self, needle: &str, n: usize, secs: u64) -> Result<String, String> {
        let c = self.c()?;
        wait_for(secs, || {
            let t = c.log_text();
            (t.matches(needle).count() >= n).then_some(t)
        })
        .ok_or_else(|| {
            format!(
                "no {n}x `{needle}` in the log within {secs}s; log tail:\n    {}",
                tail(&c.log_text())
            )
        })
    }

    fn wait(&self, needle: &str, secs: u64) -> Result<String, String> {
        self.wait_n(needle, 1, secs)
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    fn absent(&self, needle: &str) -> R {
        let log = self.log();
        ensure(!log.contains(needle), || {
            format!("`{needle}` in the log; tail:\n    {}", tail(&log))
        })
    }

    fn alive_custos(&mut self) -> bool {
        match self.custos.as_mut() {
            Some(c) => matches!(c.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn custos_pid(&self) -> Result<i32, String> {
        Ok(self.c()?.child.id() as i32)
    }

    /// Runs the custos client (or `check`) with these arguments; returns (code, stdout+stderr).
    fn cli(&mut self, args: &[&str]) -> (Option<i32>, String) {
        self.cli_as(None, args)
    }

    fn cli_as(&mut self, user: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
        let mut cmd = match user {
            Some(u) => {
                let base = custos_command();
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(base.get_program());
                c.args(base.get_args());
                c
            }
            None => custos_command(),
        };
        cmd.args(args).stdin(Stdio::null());
        let out = run_bounded(cmd, 20);
        self.outputs.push(out.clone());
        out
    }

    fn ctl(&mut self, args: &[&str]) -> (Option<i32>, String) {
        let sock = self.p("custos.sock").display().to_string();
        let mut all = vec!["--socket", sock.as_str()];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// `custos status` answers (exit 0) within its bound.
    fn status_ok(&mut self) -> R {
        let (code, out) = self.ctl(&["status"]);
        ensure(code == Some(0), || format!("status: exit {code:?}: {out}"))
    }

    /// Waits for the service's pidfile to name a live process.
    fn svc_pid(&self, file: &str, secs: u64) -> Result<i32, String> {
        let p = self.p(file);
        wait_for(secs, || read_pid(&p).filter(|&x| alive(x)))
            .ok_or_else(|| format!("no live pid in {file} within {secs}s"))
    }

    fn new_svc_pid(&self, file: &str, old: i32, secs: u64) -> Result<i32, String> {
        let p = self.p(file);
        wait_for(secs, || read_pid(&p).filter(|&x| x != old && alive(x))).ok_or_else(|| {
            format!(
                "no new pid in {file} within {secs}s; log tail:\n    {}",
                tail(&self.log())
            )
        })
    }

    fn starts(&self) -> usize {
        fs::read_to_string(self.p("starts"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The three invariants.
    fn invariants(&mut self, exits: bool) -> R {
        let mut why = Vec::new();
        if let Some(c) = self.custos.as_mut() {
            let text = c.log_text();
            if text.contains("panicked") {
                why.push(format!("custos panicked:\n    {}", tail(&text)));
            }
            match c.child.try_wait() {
                Ok(None) if exits => why.push("custos is still running".into()),
                Ok(None) => {}
                Ok(Some(st)) => {
                    if st.code() == Some(101) {
                        why.push("custos exited with status 101 (panic)".into());
                    }
                    if !exits {
                        why.push(format!("custos exited ({st}):\n    {}", tail(&text)));
                    }
                }
                Err(e) => why.push(format!("try_wait: {e}")),
            }
        }
        for (code, out) in &self.outputs {
            if out.contains("panicked") || *code == Some(101) {
                why.push(format!("a custos command panicked ({code:?}): {out}"));
            }
        }
        let logs: Vec<(String, PathBuf)> = self
            .decoys
            .iter()
            .map(|(p, l)| (format!("decoy {p}"), l.clone()))
            .chain(
                self.extra_logs
                    .iter()
                    .map(|l| (format!("decoy {}", l.display()), l.clone())),
            )
            .collect();
        for (who, log) in logs {
            let got = fs::read_to_string(&log).unwrap_or_default();
            if !got.trim().is_empty() {
                why.push(format!(
                    "{who} received signal(s) {}",
                    got.split_whitespace().collect::<Vec<_>>().join(",")
                ));
            }
        }
        for (pid, _) in &self.decoys {
            if !alive(*pid) {
                why.push(format!("decoy {pid} is gone"));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("; "))
        }
    }

    fn cleanup(&mut self) {
        // Every script and output keeper the case's custos runs logged (`runs as pid N`): a
        // script custos was running when it died or was killed lives on by design (a hung
        // start or stop script), and so does its keeper. Each leads its own process group.
        let mut spawned = Vec::new();
        if let Ok(dir) = fs::read_dir(&self.dir) {
            for e in dir.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("custos") && name.ends_with(".log") {
                    let text = fs::read_to_string(e.path()).unwrap_or_default();
                    for part in text.split("runs as pid ").skip(1) {
                        let digits: String =
                            part.chars().take_while(|c| c.is_ascii_digit()).collect();
                        if let Ok(pid) = digits.parse::<i32>() {
                            spawned.push(pid);
                        }
                    }
                }
            }
        }
        // custos first (its Drop also kills the daemons listed in DIR/starts).
        self.custos = None;
        for pid in spawned {
            // Only a process that started during this case: never a PID since reused by
            // something else.
            if started_at(pid).is_some_and(|t| t >= self.t0 - 0.05) {
                kill(-pid, libc::SIGKILL);
                kill(pid, libc::SIGKILL);
            }
        }
        for c in &mut self.kill {
            let _ = c.kill();
            let _ = c.wait();
        }
        for g in &self.kill_groups {
            kill(-*g, libc::SIGKILL);
        }
        // Daemons a case's custos runs started (starts lists them; a respawned custos has none).
        if let Ok(s) = fs::read_to_string(self.p("starts")) {
            for pid in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                kill(-pid, libc::SIGKILL);
                kill(pid, libc::SIGKILL);
            }
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.p("state"))
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a command with a bound on its time; returns (code, stdout + stderr).
fn run_bounded(mut cmd: Command, secs: u64) -> (Option<i32>, String) {
    let out_path = std::env::temp_dir().join(format!(
        "custos-mx-out-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let Ok(f) = fs::File::create(&out_path) else {
        return (None, "cannot create output file".into());
    };
    let Ok(f2) = f.try_clone() else {
        return (None, "dup".into());
    };
    cmd.stdout(f).stderr(f2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (None, format!("spawn: {e}")),
    };
    let end = Instant::now() + Duration::from_secs(secs);
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() < end => sleep_ms(10),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = fs::read(&out_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    (code, out)
}

// ---------------------------------------------------------------- configs

fn header(dir: &str) -> String {
    format!(
        r#"[supervisor]
interval = "100ms"
state_dir = "{dir}"
control_socket = "{dir}/custos.sock"
"#
    )
}

/// testd, double-forking, with fast backoff and `extra` in its [[service]].
fn testd(ctx: &Ctx, extra: &str) -> String {
    testd_config(
        &ctx.dir,
        &format!("[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"400ms\"\n{extra}"),
    )
}

/// testd with an HTTP or TCP check on `port` (the daemon serves httpd.py there in `mode`).
fn testd_http(ctx: &Ctx, port: u16, mode: &str) -> R {
    fs::write(ctx.p("httpd-port"), port.to_string()).map_err(|e| e.to_string())?;
    fs::write(ctx.p("mode"), mode).map_err(|e| e.to_string())
}

fn http_check(port: u16, failures: u32) -> String {
    format!(
        r#"
[[service.check]]
kind = "http"
port = {port}
path = "/watchdog_page.html"
expect = "woof woof still alive"
timeout = "500ms"
every = "300ms"
failures = {failures}
grace = "3s"
"#
    )
}

/// The decoyd service: its daemon is decoy.py (records its signals in svc.sig), found by its
/// pidfile or, with `exe`, by exe and args.
fn decoyd(ctx: &Ctx, by_exe: bool, extra: &str) -> String {
    let d = ctx.d();
    let ident = if by_exe {
        format!(
            "exe = \"{}\"\nargs = \"{} svc {d}\"",
            python().display(),
            decoy_py()
        )
    } else {
        format!("pidfile = \"{d}/svc.pid\"")
    };
    format!(
        r#"{h}
[[service]]
name = "svc"
{ident}
start = ["/bin/sh", "{FIXTURES}/decoyd", "start", "{d}"]
stop = ["/bin/sh", "{FIXTURES}/decoyd", "stop", "{d}"]
start_timeout = "5s"
stop_timeout = "500ms"
{extra}
"#,
        h = header(&d)
    )
}

const FAILING_CHECK: &str = r#"
[[service.check]]
kind = "program"
argv = ["/bin/false"]
every = "1s"
grace = "1ms"
"#;

/// A service whose pidfile the case prepares (hostile) and whose start script starts nothing
/// (or runs `start`): custos keeps trying and must never pin or signal what the pidfile names.
/// The always-failing check would restart (and so signal) anything pinned.
fn liar(ctx: &Ctx, start: &str) -> String {
    let d = ctx.d();
    format!(
        r#"{h}
[[service]]
name = "liar"
pidfile = "{d}/liar.pid"
start = {start}
start_timeout = "300ms"
stop_timeout = "300ms"
[service.restart]
backoff = "100ms"
backoff_max = "200ms"
{FAILING_CHECK}"#,
        h = header(&d)
    )
}

// ---------------------------------------------------------------- case bodies

fn died_text(native: &str) -> String {
    if emulated() {
        "died: cause unknown (not our child)".into()
    } else {
        native.into()
    }
}

/// A daemon killed by `sig` (or exiting with `code`): the log says why, and it is started again.
fn death_by_signal(ctx: &mut Ctx, sig: i32, expect: &str) -> R {
    let cfg = testd(ctx, "");
    ctx.start(&cfg);
    let pid = ctx.svc_pid("testd.pid", 10)?;
    ctx.wait("running as pid", 10)?;
    signal(pid, sig);
    ctx.wait(&died_text(expect), 10)?;
    ctx.new_svc_pid("testd.pid", pid, 10)?;
    Ok(())
}

fn death_by_exit(ctx: &mut Ctx, code: i32) -> R {
    fs::write(ctx.p("exit-code"), code.to_string()).map_err(|e| e.to_string())?;
    let cfg = testd(ctx, "");
    ctx.start(&cfg);
    ctx.wait(&died_text(&format!("died: exited with status {code}")), 10)?;
    ctx.wait_n("starting (attempt", 2, 10)?;
    Ok(())
}

/// How a hostile pidfile is laid out before custos starts.
type Prep = fn(&Path, i32, &mut Ctx) -> R;

fn write(p: &Path, bytes: &[u8]) -> R {
    fs::write(p, bytes).map_err(|e| format!("write {}: {e}", p.display()))
}

fn symlink(to: &str, p: &Path) -> R {
    std::os::unix::fs::symlink(to, p).map_err(|e| format!("symlink: {e}"))
}

fn mkfifo(p: &Path) -> R {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    ensure(rc == 0, || "mkfifo failed".into())
}

/// A hostile pidfile (laid out by `prep`, naming or garbling a decoy's PID): custos starts the
/// service (or holds it, `held`), logs `expect`, pins nothing and signals nothing.
fn hostile(ctx: &mut Ctx, prep: Prep, expect: &str, held: bool) -> R {
    let victim = ctx.decoy(&["victim"])?;
    let pidfile = ctx.p("liar.pid");
    prep(&pidfile, victim, ctx)?;
    let cfg = liar(ctx, r#"["/bin/true"]"#);
    ctx.start(&cfg);
    ctx.wait(expect, 10)?;
    if held {
        ctx.wait("held:", 10)?;
        sleep_ms(1000);
        ctx.absent("starting (")?;
    } else {
        // It keeps trying: a second start, each after the pidfile was judged again.
        ctx.wait_n("starting (attempt", 2, 10)?;
    }
    ctx.absent("running as pid")?;
    ctx.absent("sending SIG")?;
    ctx.status_ok()
}

fn hostile_case(name: &str, prep: Prep, expect: &'static str) -> Case {
    case(format!("pidfile-{name}"), "hostile pidfiles", move |ctx| {
        hostile(ctx, prep, expect, false)
    })
}

const BAD: &str = "not running: pidfile does not hold a valid PID";

/// A config error: `custos check` and `custos run` both exit 1 and name the file and line.
fn config_error(ctx: &mut Ctx, text: &[u8], expect: &str) -> R {
    let path = ctx.p("custos.toml");
    write(&path, text)?;
    config_error_at(ctx, &path, expect)
}

fn config_error_at(ctx: &mut Ctx, path: &Path, expect: &str) -> R {
    let p = path.display().to_string();
    let want = expect.replace("FILE", &p);
    for verb in ["check", "run"] {
        let (code, out) = ctx.cli(&[verb, "-c", &p]);
        ensure(code == Some(1), || {
            format!("custos {verb}: exit {code:?}, expected 1: {out}")
        })?;
        ensure(out.contains(&want), || {
            format!("custos {verb}: no `{want}` in: {}", out.trim())
        })?;
    }
    Ok(())
}

/// Sends `req` raw on the control socket; returns what came back before EOF or 5 s.
fn raw_ctl(sock: &Path, req: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // A hostile request may be cut off by custos closing: a write error is an answer too.
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return err("no reply and no close within 5s")
            }
            Err(_) => break,
        }
    }
    Ok(out)
}

fn sock(ctx: &Ctx) -> PathBuf {
    ctx.p("custos.sock")
}

/// A running testd under custos, for the cases that abuse custos itself.
fn running_testd(ctx: &mut Ctx) -> Result<i32, String> {
    let cfg = testd(ctx, "");
    ctx.start(&cfg);
    let pid = ctx.svc_pid("testd.pid", 10)?;
    ctx.wait("running as pid", 10)?;
    wait_for(10, || sock(ctx).exists().then_some(())).ok_or("no control socket")?;
    Ok(pid)
}

/// After abuse: custos still supervises (a SIGKILLed daemon is started again) and answers.
/// `pid` must be pinned (custos logged `running as pid`).
fn still_supervises(ctx: &mut Ctx, pid: i32) -> R {
    ctx.status_ok()?;
    let n = ctx.count("running as pid");
    signal(pid, libc::SIGKILL);
    ctx.wait_n("running as pid", n + 1, 10)?;
    ctx.new_svc_pid("testd.pid", pid, 10)?;
    Ok(())
}

fn mount_tmpfs(dir: &Path, opts: &str) -> R {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(dir)
        .status()
        .map_err(|e| format!("mount: {e}"))?;
    ensure(st.success(), || format!("mount -o {opts} failed"))
}

fn state_dir_config(ctx: &Ctx, state: &str) -> String {
    testd(ctx, "").replacen(
        &format!("state_dir = \"{}\"", ctx.d()),
        &format!("state_dir = \"{state}\""),
        1,
    )
}

// ---------------------------------------------------------------- the table

fn cases() -> Vec<Case> {
    let mut v = Vec::new();

    // ---- deaths and exit causes
    let g = "deaths and exit causes";
    v.push(case("death-sigkill", g, |c| {
        death_by_signal(c, libc::SIGKILL, "died: killed by SIGKILL")
    }));
    v.push(case("death-sigterm", g, |c| {
        death_by_signal(c, libc::SIGTERM, "died: killed by SIGTERM")
    }));
    v.push(case("death-sigsegv", g, |c| {
        death_by_signal(c, libc::SIGSEGV, "died: killed by SIGSEGV")
    }));
    v.push(case("death-sigabrt", g, |c| {
        death_by_signal(c, libc::SIGABRT, "died: killed by SIGABRT")
    }));
    v.push(case("death-exit-3", g, |c| death_by_exit(c, 3)));
    v.push(case("death-exit-0", g, |c| death_by_exit(c, 0)));

    // ---- crash loops and backoff
    let g = "crash loops and backoff";
    v.push(case("crashloop-never-gives-up", g, |c| {
        write(&c.p("exit-code"), b"3")?;
        let cfg = testd(c, "");
        c.start(&cfg);
        c.wait("crash-looping:", 20)?;
        c.wait_n("starting (attempt", 6, 20)?;
        c.absent("given up")?;
        let (code, out) = c.ctl(&["status"]);
        ensure(code == Some(0) && out.contains("crash-looping"), || {
            format!("status: {code:?} {out}")
        })
    }));
    v.push(case("crashloop-backoff-grows", g, |c| {
        write(&c.p("exit-code"), b"3")?;
        let cfg = testd(c, "");
        c.start(&cfg);
        c.wait("after 100ms backoff", 20)?;
        c.wait("after 200ms backoff", 20)?;
        c.wait("after 400ms backoff", 20)?;
        Ok(())
    }));
    v.push(case("crashloop-gives-up-then-sighup", g, |c| {
        write(&c.p("exit-code"), b"3")?;
        let cfg = testd(c, "max_restarts = 2\nwindow = \"1m\"");
        c.start(&cfg);
        c.wait("given up:", 20)?;
        let n = c.count("starting (");
        sleep_ms(800);
        ensure(c.count("starting (") == n, || {
            "started after giving up".into()
        })?;
        c.c()?.signal(libc::SIGHUP);
        c.wait_n("starting (", n + 1, 10)?;
        Ok(())
    }));

    // ---- hostile pidfiles
    hostile_list(&mut v);

    // ---- identity look-alikes
    let g = "exe/args look-alikes";
    v.push(case("lookalike-args-differ", g, |c| {
        // The baseline decoy has the service's args plus one: not the service.
        let cfg = decoyd(c, true, "");
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        signal(pid, libc::SIGKILL);
        c.new_svc_pid("svc.pid", pid, 10)?;
        c.wait_n("running as pid", 2, 10)?;
        Ok(())
    }));
    v.push(case("exe-identity-through-a-symlink", g, |c| {
        // `exe` written as a symlink (/usr/bin/python3 -> python3.11; on a busybox board every
        // applet): /proc/PID/exe names the target, so the identity as written matches nothing.
        // custos must not start a new copy of the service on every attempt.
        let link = c.p("python3-link");
        symlink(&python().display().to_string(), &link)?;
        let cfg = decoyd(c, true, "")
            .replacen(
                &format!("exe = \"{}\"", python().display()),
                &format!("exe = \"{}\"", link.display()),
                1,
            )
            .replace("start_timeout = \"5s\"", "start_timeout = \"1s\"");
        let path = c.p("custos.toml");
        write(&path, cfg.as_bytes())?;
        let (code, out) = c.cli(&["check", "-c", &path.display().to_string()]);
        if code == Some(0) {
            c.start(&cfg);
            sleep_ms(4000);
            let live = fs::read_to_string(c.p("starts"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .filter(|&p| alive(p))
                .count();
            return ensure(live <= 1, || {
                format!(
                    "{live} copies of the service run; log tail:\n    {}",
                    tail(&c.log())
                )
            });
        }
        ensure(
            out.contains("symlink") || out.contains("symbolic link"),
            || format!("refused without saying why: {out}"),
        )
    }));
    v.push(case("lookalike-ambiguous", g, |c| {
        let d = c.d();
        c.decoy(&["svc", &d])?;
        c.decoy(&["svc", &d])?;
        let cfg = decoyd(c, true, FAILING_CHECK);
        c.start(&cfg);
        c.wait("identity is ambiguous", 10)?;
        sleep_ms(1500);
        c.absent("starting (")?;
        c.absent("sending SIG")
    }));
    v.push(case("lookalike-other-exe-same-args", g, |c| {
        // A copy of the interpreter elsewhere, with the service's very arguments.
        let copy = c.p("python3");
        fs::copy(python(), &copy).map_err(|e| e.to_string())?;
        let d = c.d();
        c.decoy_exe(&copy, &["svc", &d], &[])?;
        let cfg = decoyd(c, true, "");
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        c.absent("ambiguous")
    }));
    v.push(case("lookalike-restart-signals-only-the-pin", g, |c| {
        // Two decoys with the daemon's exact command line; restarts signal the pinned one only.
        let d = c.d();
        c.decoy(&["svc", &d])?;
        c.decoy(&["svc", &d])?;
        let cfg = decoyd(c, false, FAILING_CHECK);
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait("sending SIGTERM", 15)?;
        let got = wait_for(5, || {
            fs::read_to_string(c.p("svc.sig"))
                .ok()
                .filter(|s| s.lines().any(|l| l == "15"))
        });
        ensure(got.is_some(), || {
            format!("pinned daemon {pid} got no SIGTERM")
        })?;
        c.wait("sending SIGKILL", 10)?;
        c.new_svc_pid("svc.pid", pid, 10).map(|_| ())
    }));
    v.push(case("lookalike-pidfile-names-older-process", g, |c| {
        let older = c.decoy(&["older"])?;
        let cfg = decoyd(c, false, "");
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        write(&c.p("svc.pid"), format!("{older}\n").as_bytes())?;
        sleep_ms(300);
        signal(pid, libc::SIGKILL);
        c.wait(&format!("pid {older} started before pid {pid}"), 10)?;
        c.wait_n("running as pid", 2, 10)?;
        Ok(())
    }));

    // ---- start and stop scripts
    let g = "start/stop script failures";
    v.push(case("start-missing", g, |c| {
        let cfg = liar(c, r#"["/nonexistent/start"]"#);
        c.start(&cfg);
        c.wait_n("start script could not be run", 2, 10)?;
        Ok(())
    }));
    v.push(case("start-not-executable", g, |c| {
        let s = c.p("start.sh");
        write(&s, b"#!/bin/sh\nexit 0\n")?;
        fs::set_permissions(&s, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
        let cfg = liar(c, &format!("[\"{}\"]", s.display()));
        c.start(&cfg);
        c.wait_n("start script could not be run", 2, 10)?;
        Ok(())
    }));
    v.push(case("start-exits-nonzero", g, |c| {
        write(&c.p("start-fails"), b"")?;
        let cfg = testd(c, "");
        c.start(&cfg);
        c.wait_n("start script exited with status 1", 2, 10)?;
        Ok(())
    }));
    v.push(case("start-hangs", g, |c| {
        write(&c.p("start-hangs"), b"")?;
        let cfg = testd_config_timeout(
            &c.dir,
            "500ms",
            "[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"200ms\"",
        );
        c.start(&cfg);
        c.wait_n("its process group was killed", 2, 15)?;
        Ok(())
    }));
    v.push(case("start-forks-daemon-without-pidfile", g, |c| {
        // The script leaves a decoy running in its process group and exits 0: the attempt
        // fails, and that unidentified process is not custos's to signal.
        let d = c.d();
        let log = c.p("orphan.sig");
        c.extra_logs.push(log.clone());
        let script = c.p("start.sh");
        let text = format!(
            "#!/bin/sh\nDECOY_LOG={} {} {} orphan </dev/null >/dev/null 2>&1 &\necho $! >> {d}/starts\nexit 0\n",
            log.display(),
            python().display(),
            decoy_py()
        );
        write(&script, text.as_bytes())?;
        let cfg = liar(c, &format!("[\"/bin/sh\", \"{}\"]", script.display()));
        c.start(&cfg);
        c.wait_n("no identified process appeared", 2, 15)?;
        c.absent("sending SIG")
    }));
    v.push(case("start-pidfile-of-short-lived-process", g, |c| {
        let d = c.d();
        let cfg = liar(
            c,
            &format!("[\"/bin/sh\", \"-c\", \"sh -c 'echo $$ > {d}/liar.pid'; exit 0\"]"),
        );
        c.start(&cfg);
        c.wait_n("which is not running", 2, 10)?;
        c.absent("sending SIG")
    }));
    /// A script that leaves a decoy running in its process group and exits 0.
    fn leaves_decoy(c: &mut Ctx, name: &str) -> Result<PathBuf, String> {
        let d = c.d();
        let log = c.p(&format!("{name}.sig"));
        c.extra_logs.push(log.clone());
        let script = c.p(&format!("{name}.sh"));
        let text = format!(
            "#!/bin/sh\n[ -e {d}/{name}.once ] && exit 0\n: > {d}/{name}.once\nDECOY_LOG={} {} {} {name} </dev/null >/dev/null 2>&1 &\necho $! >> {d}/starts\nexit 0\n",
            log.display(),
            python().display(),
            decoy_py()
        );
        write(&script, text.as_bytes())?;
        Ok(script)
    }
    v.push(case("check-program-leaves-a-process", g, |c| {
        // A program check that exits 0 and leaves a process behind in its group: that process
        // is not custos's to signal.
        let script = leaves_decoy(c, "checker")?;
        let cfg = testd(
            c,
            &format!(
                "[[service.check]]\nkind = \"program\"\nargv = [\"/bin/sh\", \"{}\"]\nevery = \"1s\"\n",
                script.display()
            ),
        );
        c.start(&cfg);
        c.svc_pid("testd.pid", 10)?;
        wait_for(10, || c.p("checker.sig").exists().then_some(())).ok_or("the check never ran")?;
        sleep_ms(2500);
        c.absent("failed (")
    }));
    v.push(case("stop-script-leaves-a-process", g, |c| {
        let script = leaves_decoy(c, "stopper")?;
        let d = c.d();
        let cfg = decoyd(c, false, FAILING_CHECK).replace(
            &format!("stop = [\"/bin/sh\", \"{FIXTURES}/decoyd\", \"stop\", \"{d}\"]"),
            &format!("stop = [\"/bin/sh\", \"{}\"]", script.display()),
        );
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait("sending SIGKILL", 15)?;
        c.new_svc_pid("svc.pid", pid, 15)?;
        sleep_ms(1000);
        Ok(())
    }));
    fn stop_case(c: &mut Ctx, stop: &str, expect: &str) -> R {
        let d = c.d();
        let cfg = decoyd(c, false, FAILING_CHECK).replace(
            &format!("stop = [\"/bin/sh\", \"{FIXTURES}/decoyd\", \"stop\", \"{d}\"]"),
            &format!("stop = {stop}"),
        );
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(expect, 15)?;
        c.wait("sending SIGTERM", 15)?;
        c.wait("sending SIGKILL", 15)?;
        c.new_svc_pid("svc.pid", pid, 15).map(|_| ())
    }
    v.push(case("stop-missing", g, |c| {
        stop_case(
            c,
            r#"["/nonexistent/stop"]"#,
            "cannot run `/nonexistent/stop`",
        )
    }));
    v.push(case("stop-exits-nonzero", g, |c| {
        stop_case(c, r#"["/bin/false"]"#, "running stop script `/bin/false`")
    }));
    v.push(case("stop-hangs", g, |c| {
        // It lists itself in DIR/starts, so that the case's cleanup ends it.
        let d = c.d();
        stop_case(
            c,
            &format!(r#"["/bin/sh", "-c", "echo $$ >> {d}/starts; exec sleep 1000"]"#),
            "running stop script `/bin/sh -c",
        )
    }));
    v.push(
        case("stop-script-kills", g, |c| {
            write(&c.p("stop-kills"), b"")?;
            let cfg = testd(c, FAILING_CHECK);
            c.start(&cfg);
            let pid = c.svc_pid("testd.pid", 10)?;
            c.wait("its stop script killed it, not custos", 15)?;
            c.new_svc_pid("testd.pid", pid, 10).map(|_| ())
        })
        .not_emulated("qemu-user: no subreaper, so no exit status to attribute to the stop script"),
    );

    // ---- HTTP and TCP
    let g = "HTTP/TCP servers misbehaving";
    fn http_case(c: &mut Ctx, mode: &str, failures: u32, expect: &str, restart: bool) -> R {
        let port = free_port();
        testd_http(c, port, mode)?;
        let cfg = testd(c, &http_check(port, failures));
        c.start(&cfg);
        let pid = c.svc_pid("testd.pid", 10)?;
        c.wait(expect, 20)?;
        if restart {
            c.wait("restarting:", 15)?;
            c.new_svc_pid("testd.pid", pid, 15)?;
        }
        Ok(())
    }
    for (name, mode, expect) in [
        ("http-wrong-content", "wrong", "expected content not found"),
        ("http-500", "500", "status 500, expected 200"),
        ("http-silent", "silent", "timeout after 500ms"),
        ("http-trickle", "trickle", "timeout after 500ms"),
        ("http-huge", "big", "expected content not found"),
        ("http-garbage", "garbage", "not an HTTP reply"),
        ("http-close", "close", "connection closed without a reply"),
    ] {
        v.push(case(name, g, move |c| http_case(c, mode, 1, expect, true)));
    }
    v.push(case("http-flaky-below-threshold", g, |c| {
        http_case(c, "flaky", 2, "passed again after 1 failure(s)", false)?;
        c.absent("restarting:")
    }));
    v.push(case("http-healthy", g, |c| {
        let port = free_port();
        testd_http(c, port, "ok")?;
        let cfg = testd(c, &http_check(port, 1));
        c.start(&cfg);
        c.svc_pid("testd.pid", 10)?;
        sleep_ms(2500);
        c.absent("failed (")?;
        ensure(c.starts() == 1, || format!("{} starts", c.starts()))
    }));
    v.push(case("http-refused", g, |c| {
        let port = free_port();
        let cfg = testd(c, &http_check(port, 1));
        c.start(&cfg);
        c.wait("connection refused", 15)?;
        c.wait("restarting:", 15).map(|_| ())
    }));
    v.push(case("tcp-refused", g, |c| {
        let port = free_port();
        let cfg = testd(
            c,
            &format!("[[service.check]]\nkind = \"tcp\"\nport = {port}\ntimeout = \"500ms\"\ngrace = \"1ms\"\n"),
        );
        c.start(&cfg);
        c.wait("connection refused", 15)?;
        c.wait("restarting:", 15).map(|_| ())
    }));
    v.push(case("http-port-taken", g, |c| {
        // A decoy holds the port and never accepts: the service cannot bind (it dies), and the
        // check against the decoy times out. The decoy is not the service.
        let port = free_port();
        c.decoy_env(&["port-holder"], &[("DECOY_LISTEN", port.to_string())])?;
        testd_http(c, port, "ok")?;
        let cfg = testd(c, &http_check(port, 1));
        c.start(&cfg);
        // The service dies at once: seen as a death, or (custos slower, as under qemu-user) as
        // a start whose pidfile names a process already gone. Either way custos tries again.
        c.wait_n("starting (attempt", 3, 20)?;
        let log = c.log();
        ensure(
            log.contains(&died_text("died: exited with status 1"))
                || log.contains("which is not running"),
            || {
                format!(
                    "neither a death nor a vanished process logged:\n    {}",
                    tail(&log)
                )
            },
        )
    }));

    // ---- SIGSTOP
    let g = "SIGSTOP of a service and of custos";
    v.push(case("sigstop-service", g, |c| {
        let port = free_port();
        testd_http(c, port, "ok")?;
        let cfg = testd(c, &http_check(port, 2));
        c.start(&cfg);
        let pid = c.svc_pid("testd.pid", 10)?;
        c.wait("running as pid", 10)?;
        sleep_ms(1000);
        signal(pid, libc::SIGSTOP);
        c.wait("restarting:", 15)?;
        c.new_svc_pid("testd.pid", pid, 15).map(|_| ())
    }));
    v.push(case("sigstop-custos", g, |c| {
        let pid = running_testd(c)?;
        let me = c.custos_pid()?;
        signal(me, libc::SIGSTOP);
        sleep_ms(1500);
        signal(pid, libc::SIGKILL);
        sleep_ms(300);
        signal(me, libc::SIGCONT);
        c.wait(&died_text("died: killed by SIGKILL"), 10)?;
        c.new_svc_pid("testd.pid", pid, 10)?;
        c.status_ok()
    }));

    // ---- config errors
    config_list(&mut v);

    // ---- reload storms
    let g = "reload storms";
    v.push(case("reload-storm-sighup", g, |c| {
        let pid = running_testd(c)?;
        let me = c.custos_pid()?;
        for _ in 0..100 {
            signal(me, libc::SIGHUP);
            sleep_ms(10);
        }
        sleep_ms(1000);
        c.status_ok()?;
        ensure(alive(pid) && c.starts() == 1, || {
            format!("daemon restarted by reloads ({} starts)", c.starts())
        })
    }));
    v.push(case("reload-storm-alternating-bad", g, |c| {
        let pid = running_testd(c)?;
        let me = c.custos_pid()?;
        let good = fs::read_to_string(&c.c()?.config).map_err(|e| e.to_string())?;
        let cfg = c.c()?.config.clone();
        for i in 0..30 {
            let text = if i % 2 == 0 {
                good.replace("interval = \"100ms\"", "interval = 100")
            } else {
                good.clone()
            };
            write(&cfg, text.as_bytes())?;
            signal(me, libc::SIGHUP);
            sleep_ms(40);
        }
        write(&cfg, b"[supervisor\n")?;
        signal(me, libc::SIGHUP);
        c.wait("custos.toml:1:", 10)?;
        still_supervises(c, pid)
    }));
    v.push(case("reload-storm-clients", g, |c| {
        let pid = running_testd(c)?;
        let s = sock(c);
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || raw_ctl(&s, b"{\"cmd\":\"reload\"}\n"))
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
        sleep_ms(500);
        ensure(alive(pid) && c.starts() == 1, || {
            "daemon restarted by reloads".into()
        })?;
        still_supervises(c, pid)
    }));
    v.push(case("reload-config-becomes-fifo", g, |c| {
        let pid = running_testd(c)?;
        let cfg = c.c()?.config.clone();
        fs::remove_file(&cfg).map_err(|e| e.to_string())?;
        mkfifo(&cfg)?;
        c.c()?.signal(libc::SIGHUP);
        c.wait("FIFO", 10)?;
        still_supervises(c, pid)
    }));

    // ---- state_dir
    let g = "state_dir full, read-only, garbage, truncated, replaced";
    v.push(
        case("state-dir-full", g, |c| {
            let st = c.p("state");
            mount_tmpfs(&st, "size=16k")?;
            let _ = fs::write(st.join("filler"), vec![b'x'; 64 * 1024]);
            let cfg = state_dir_config(c, &st.display().to_string());
            c.start(&cfg);
            for i in 0..3 {
                c.wait_n("running as pid", i + 1, 15)?;
                let p = c.svc_pid("testd.pid", 10)?;
                signal(p, libc::SIGKILL);
                c.new_svc_pid("testd.pid", p, 10)?;
            }
            c.wait_n("running as pid", 4, 15)?;
            c.status_ok()
        })
        .root(),
    );
    v.push(
        case("state-dir-read-only", g, |c| {
            let st = c.p("state");
            mount_tmpfs(&st, "size=1m,ro")?;
            let cfg = state_dir_config(c, &st.display().to_string());
            c.start(&cfg);
            let pid = c.svc_pid("testd.pid", 10)?;
            c.wait("running as pid", 10)?;
            signal(pid, libc::SIGKILL);
            c.new_svc_pid("testd.pid", pid, 10)?;
            c.status_ok()
        })
        .root(),
    );
    v.push(case("state-dir-garbage", g, |c| {
        let mut junk = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..20000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            junk.push((x >> 16) as u8);
        }
        for f in ["record", "pins", "boots"] {
            write(&c.p(f), &junk)?;
        }
        let pid = running_testd(c)?;
        still_supervises(c, pid)?;
        let (code, out) = c.ctl(&["events"]);
        ensure(code == Some(0), || format!("events: {code:?} {out}"))
    }));
    v.push(case("state-dir-truncated", g, |c| {
        // A first custos writes a record; it is cut in half before a second one starts.
        let pid = running_testd(c)?;
        signal(pid, libc::SIGKILL);
        c.new_svc_pid("testd.pid", pid, 10)?;
        sleep_ms(500);
        if let Some(mut old) = c.custos.take() {
            old.signal(libc::SIGKILL);
            let _ = old.child.wait();
            std::mem::forget(old); // its daemon lives on for the next custos
        }
        for f in ["record", "pins", "boots"] {
            if let Ok(b) = fs::read(c.p(f)) {
                write(&c.p(f), &b[..b.len() / 2])?;
            }
        }
        let pid = running_testd(c)?;
        still_supervises(c, pid)
    }));
    v.push(case("state-dir-files-replaced", g, |c| {
        let pid = running_testd(c)?;
        // custos may write a file again between its removal and its replacement (a temp file
        // and a rename): try again, a bounded number of times.
        let replace = |p: PathBuf, make: &dyn Fn(&Path) -> R| -> R {
            let mut last = Ok(());
            for _ in 0..50 {
                let _ = fs::remove_file(&p);
                last = make(&p);
                if last.is_ok() {
                    break;
                }
                sleep_ms(10);
            }
            last
        };
        replace(c.p("record"), &|p| {
            fs::create_dir(p).map_err(|e| e.to_string())
        })?;
        replace(c.p("pins"), &|p| mkfifo(p))?;
        replace(c.p("boots"), &|p| symlink("/dev/zero", p))?;
        still_supervises(c, pid)?;
        // Again, now that custos has tried to write each of them.
        let pid = c.svc_pid("testd.pid", 10)?;
        still_supervises(c, pid)
    }));

    // ---- control socket abuse
    let g = "control-socket abuse";
    v.push(case("ctl-garbage", g, |c| {
        let pid = running_testd(c)?;
        let reply = raw_ctl(&sock(c), b"\x00\xff garbage {{{\n")?;
        ensure(!reply.is_empty(), || "no error reply".into())?;
        raw_ctl(&sock(c), b"{\"cmd\":\"status\",\"cmd\":7}\n")?;
        still_supervises(c, pid)
    }));
    v.push(case("ctl-1mb-request", g, |c| {
        let pid = running_testd(c)?;
        raw_ctl(&sock(c), &vec![b'a'; 1 << 20])?;
        still_supervises(c, pid)
    }));
    v.push(case("ctl-50-clients", g, |c| {
        let pid = running_testd(c)?;
        let s = sock(c);
        let hs: Vec<_> = (0..50)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || raw_ctl(&s, b"{\"cmd\":\"status\"}\n"))
            })
            .collect();
        let mut answered = 0;
        for h in hs {
            if let Ok(Ok(r)) = h.join() {
                if !r.is_empty() {
                    answered += 1;
                }
            }
        }
        ensure(answered == 50, || format!("{answered} of 50 answered"))?;
        still_supervises(c, pid)
    }));
    v.push(case("ctl-idle-clients", g, |c| {
        let pid = running_testd(c)?;
        let idle: Vec<UnixStream> = (0..30)
            .filter_map(|_| UnixStream::connect(sock(c)).ok())
            .collect();
        sleep_ms(300);
        // While they idle, a real client still gets through (maybe after a busy reply).
        let ok = wait_for(10, || {
            let (code, _) = c.ctl(&["status"]);
            (code == Some(0)).then_some(())
        });
        drop(idle);
        ensure(ok.is_some(), || {
            "status never answered beside idle clients".into()
        })?;
        still_supervises(c, pid)
    }));
    v.push(
        case("ctl-non-root", g, |c| {
            let pid = running_testd(c)?;
            // Let nobody reach the socket's directory: the socket's own mode and SO_PEERCRED
            // must refuse it.
            fs::set_permissions(&c.dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            let s = sock(c).display().to_string();
            let (code, out) = c.cli_as(Some("nobody"), &["--socket", &s, "stop", "testd"]);
            ensure(code != Some(0), || {
                format!("nobody's stop succeeded: {out}")
            })?;
            ensure(alive(pid) && c.starts() == 1, || {
                "nobody stopped the service".into()
            })?;
            still_supervises(c, pid)
        })
        .root(),
    );
    v.push(
        case("ctl-socket-replaced-then-sigterm", g, |c| {
            // Someone put a file of their own where the socket was: custos, leaving, removes
            // only its own socket, never what is there now.
            running_testd(c)?;
            let s = sock(c);
            fs::remove_file(&s).map_err(|e| e.to_string())?;
            write(&s, b"not custos's\n")?;
            c.c()?.signal(libc::SIGTERM);
            wait_for(10, || {
                c.custos
                    .as_mut()
                    .and_then(|x| x.child.try_wait().ok().flatten())
            })
            .ok_or("custos did not exit on SIGTERM")?;
            let left = fs::read(&s).unwrap_or_default();
            ensure(left == b"not custos's\n", || {
                format!("the file at the socket path is gone or changed: {left:?}")
            })
        })
        .exits(),
    );
    v.push(case("ctl-connection-flood", g, |c| {
        let pid = running_testd(c)?;
        for _ in 0..2000 {
            let _ = UnixStream::connect(sock(c));
        }
        // Connections closed before custos read them leave nothing behind: a client right
        // after the flood is answered (it may be told `busy` while the backlog drains).
        let t = Instant::now();
        let mut tries = 0;
        let ok = wait_for(10, || {
            tries += 1;
            let (code, _) = c.ctl(&["status"]);
            (code == Some(0)).then_some(())
        });
        println!(
            "  ctl-connection-flood: status answered after {tries} tries, {:?}",
            t.elapsed()
        );
        ensure(ok.is_some(), || {
            "status never answered after the flood".into()
        })?;
        still_supervises(c, pid)
    }));
    v.push(case("ctl-slow-request", g, |c| {
        let pid = running_testd(c)?;
        let s = sock(c);
        let h = std::thread::spawn(move || -> R {
            let mut st = UnixStream::connect(&s).map_err(|e| e.to_string())?;
            for b in b"{\"cmd\":\"status\"}\n" {
                if st.write_all(&[*b]).is_err() {
                    break;
                }
                sleep_ms(250);
            }
            Ok(())
        });
        c.status_ok()?;
        let _ = h.join();
        still_supervises(c, pid)
    }));
    v.push(case("ctl-follow-never-reads", g, |c| {
        let pid = running_testd(c)?;
        let mut st = UnixStream::connect(sock(c)).map_err(|e| e.to_string())?;
        st.write_all(b"{\"cmd\":\"events\",\"follow\":true}\n")
            .map_err(|e| e.to_string())?;
        // Events pile up for it: five deaths and starts, each killed once custos pinned it.
        for i in 0..5 {
            c.wait_n("running as pid", i + 1, 15)?;
            let p = c.svc_pid("testd.pid", 10)?;
            signal(p, libc::SIGKILL);
            c.new_svc_pid("testd.pid", p, 10)?;
        }
        c.wait_n("running as pid", 6, 15)?;
        drop(st);
        let pid2 = c.svc_pid("testd.pid", 10)?;
        ensure(pid2 != pid, || "never restarted".into())?;
        still_supervises(c, pid2)
    }));

    // ---- operators and reloads against what custos may not touch
    let g = "operator requests and reloads";
    v.push(case("held-then-operator-stop-restart", g, |c| {
        // A held service (its pidfile names a process custos cannot verify): `stop` and
        // `restart` must not signal that process.
        hostile(
            c,
            |p, d, _| {
                write(p, format!("{d}\n").as_bytes())?;
                backdate(p, -86400);
                Ok(())
            },
            "cannot be verified",
            true,
        )?;
        for verb in ["stop", "restart"] {
            let _ = c.ctl(&[verb, "liar"]);
        }
        sleep_ms(800);
        c.absent("sending SIG")
    }));
    v.push(case("restart-while-not-running-runs-no-stop", g, |c| {
        // Rule 2: a service found not running is only started, never stopped first.
        // Its start script fails: it never runs, whatever the operator asks.
        write(&c.p("start-fails"), b"")?;
        let cfg = testd(c, "");
        c.start(&cfg);
        c.wait("crash-looping:", 20)?;
        for _ in 0..5 {
            let _ = c.ctl(&["restart", "testd"]);
            sleep_ms(100);
        }
        sleep_ms(1000);
        ensure(!c.p("stops").exists(), || {
            format!(
                "the stop script ran for a service that was not running:\n    {}",
                tail(&c.log())
            )
        })
    }));
    v.push(case("reload-removes-service", g, |c| {
        // A removed service is left running, unwatched and unsignalled.
        let cfg = decoyd(c, false, "");
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        let path = c.c()?.config.clone();
        write(&path, header(&c.d()).as_bytes())?;
        c.c()?.signal(libc::SIGHUP);
        sleep_ms(1500);
        let got = fs::read_to_string(c.p("svc.sig")).unwrap_or_default();
        ensure(got.trim().is_empty() && alive(pid), || {
            format!("removed service's process got signal(s) {got:?}")
        })?;
        c.status_ok()
    }));
    v.push(case("pidfile-names-another-services-process", g, |c| {
        // Service b's pidfile names service a's pinned process: b leaves it alone, and b's
        // failing check never signals it.
        let d = c.d();
        let cfg = format!(
            "{}{FAILING_CHECK}\n[[service]]\nname = \"b\"\npidfile = \"{d}/b.pid\"\nstart = [\"/bin/true\"]\nstart_timeout = \"300ms\"\n[service.restart]\nbackoff = \"100ms\"\nbackoff_max = \"200ms\"\n{FAILING_CHECK}",
            decoyd(c, false, "")
        );
        let cfg = cfg.replacen(FAILING_CHECK, "", 1);
        c.start(&cfg);
        let pid = c.svc_pid("svc.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        write(&c.p("b.pid"), format!("{pid}\n").as_bytes())?;
        c.wait(&format!("pidfile names pid {pid}, which custos runs for something else"), 10)?;
        sleep_ms(1500);
        let got = fs::read_to_string(c.p("svc.sig")).unwrap_or_default();
        ensure(got.trim().is_empty(), || format!("a's process got signal(s) {got:?}"))?;
        c.absent("sending SIG")
    }));
    v.push(case("pidfile-names-a-zombie", "hostile pidfiles", |c| {
        let z = c.p("zombie");
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c")
            .arg(format!(
                "sleep 0 & echo $! > {}; exec sleep 600",
                z.display()
            ))
            .stdin(Stdio::null());
        c.kill.push(sh.spawn().map_err(|e| e.to_string())?);
        let zp = wait_for(10, || {
            read_pid(&z).filter(|&p| !alive(p) && Path::new(&format!("/proc/{p}")).exists())
        })
        .ok_or("no zombie")?;
        write(&c.p("liar.pid"), format!("{zp}\n").as_bytes())?;
        let cfg = liar(c, r#"["/bin/true"]"#);
        c.start(&cfg);
        c.wait_n("starting (attempt", 2, 10)?;
        c.absent("running as pid")?;
        c.absent("sending SIG")
    }));
    v.push(case(
        "pidfile-names-the-output-keeper",
        "hostile pidfiles",
        |c| {
            let cfg = liar(c, r#"["/bin/true"]"#);
            c.start(&cfg);
            let me = c.custos_pid()?;
            let keeper = wait_for(10, || {
                fs::read_dir("/proc")
                    .ok()?
                    .filter_map(|e| e.ok())
                    .find_map(|e| {
                        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
                        let (name, rest) = stat.rsplit_once(')')?;
                        let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
                        (ppid == me && name.ends_with("(custos-keeper")).then_some(pid)
                    })
            })
            .ok_or("no output keeper found")?;
            write(&c.p("liar.pid"), format!("{keeper}\n").as_bytes())?;
            // Natively "which is custos's output keeper"; under qemu-user, where the keeper's exe is
            // the emulator, "which custos runs for something else": left alone either way.
            let log = c.wait(&format!("pidfile names pid {keeper}, which "), 10)?;
            ensure(
                log.contains(&format!("pid {keeper}, which is custos's output keeper"))
                    || log.contains(&format!(
                        "pid {keeper}, which custos runs for something else"
                    )),
                || format!("the keeper {keeper} was not refused:\n    {}", tail(&log)),
            )?;
            c.absent("sending SIG")?;
            ensure(alive(keeper), || "the keeper is gone".into())
        },
    ));
    v.push(case(
        "pidfile-names-its-own-start-script",
        "hostile pidfiles",
        |c| {
            let cfg = liar(
                c,
                &format!(
                    "[\"/bin/sh\", \"-c\", \"echo $$ > {}/liar.pid; sleep 0.2\"]",
                    c.d()
                ),
            );
            c.start(&cfg);
            c.wait_n("starting (attempt", 3, 10)?;
            c.absent("running as pid")?;
            c.absent("sending SIG")
        },
    ));
    v.push(case(
        "state-dir-is-a-file",
        "state_dir full, read-only, garbage, truncated, replaced",
        |c| {
            write(&c.p("state"), b"not a directory\n")?;
            let cfg = state_dir_config(c, &c.p("state").display().to_string());
            c.start(&cfg);
            let pid = c.svc_pid("testd.pid", 10)?;
            c.wait("running as pid", 10)?;
            still_supervises(c, pid)
        },
    ));

    // ---- custos's own death
    let g = "custos SIGTERM / SIGKILL / respawn";
    v.push(case("custos-sigkill-during-start", g, |c| {
        // custos dies while a start script runs; the respawned custos must not make a second
        // copy of the service.
        let d = c.d();
        let script = c.p("slow-start");
        write(
            &script,
            format!("#!/bin/sh\nsleep 1\nexec /bin/sh {FIXTURES}/decoyd start {d}\n").as_bytes(),
        )?;
        let cfg = decoyd(c, false, "").replacen(
            &format!("start = [\"/bin/sh\", \"{FIXTURES}/decoyd\", \"start\", \"{d}\"]"),
            &format!("start = [\"/bin/sh\", \"{}\"]", script.display()),
            1,
        );
        c.start(&cfg);
        c.wait("starting (", 10)?;
        sleep_ms(300);
        if let Some(mut old) = c.custos.take() {
            old.signal(libc::SIGKILL);
            let _ = old.child.wait();
            c.outputs.push((None, old.log_text()));
            std::mem::forget(old);
        }
        let _ = fs::rename(c.p("custos.log"), c.p("custos-0.log"));
        c.start(&cfg);
        sleep_ms(4000);
        let live: Vec<i32> = fs::read_to_string(c.p("starts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|&p| alive(p))
            .collect();
        ensure(live.len() == 1, || {
            format!(
                "{} copies of the service run ({live:?}); log tail:\n    {}",
                live.len(),
                tail(&c.log())
            )
        })
    }));
    v.push(case("custos-sigkill-during-hung-start", g, |c| {
        // The start script an earlier custos ran hangs: the respawned custos kills its group
        // after start_timeout, as it kills its own, and then starts the service.
        write(&c.p("start-hangs"), b"")?;
        let cfg = testd_config_timeout(&c.dir, "1500ms", "");
        c.start(&cfg);
        c.wait("starting (", 10)?;
        sleep_ms(300);
        if let Some(mut old) = c.custos.take() {
            old.signal(libc::SIGKILL);
            let _ = old.child.wait();
            c.outputs.push((None, old.log_text()));
            std::mem::forget(old);
        }
        let _ = fs::rename(c.p("custos.log"), c.p("custos-0.log"));
        let _ = fs::remove_file(c.p("start-hangs"));
        c.start(&cfg);
        c.wait(
            "killing the process group of the start script an earlier custos ran",
            10,
        )?;
        let pid = c.svc_pid("testd.pid", 10)?;
        c.wait(&format!("running as pid {pid}"), 10)?;
        ensure(c.starts() == 1, || format!("{} starts", c.starts()))
    }));
    v.push(
        case("custos-sigterm", g, |c| {
            let pid = running_testd(c)?;
            c.c()?.signal(libc::SIGTERM);
            let code = wait_for(10, || {
                c.custos
                    .as_mut()
                    .and_then(|x| x.child.try_wait().ok().flatten())
            })
            .ok_or("custos did not exit on SIGTERM")?;
            ensure(code.code() == Some(0), || format!("exit {code}"))?;
            sleep_ms(300);
            ensure(alive(pid), || "the service died with custos".into())
        })
        .exits(),
    );
    v.push(
        case("custos-sigint-while-start-hangs", g, |c| {
            write(&c.p("start-hangs"), b"")?;
            let cfg = testd(c, "");
            c.start(&cfg);
            c.wait("starting (", 10)?;
            c.c()?.signal(libc::SIGINT);
            let code = wait_for(10, || {
                c.custos
                    .as_mut()
                    .and_then(|x| x.child.try_wait().ok().flatten())
            })
            .ok_or("custos did not exit on SIGINT")?;
            ensure(code.code() == Some(0), || format!("exit {code}"))
        })
        .exits(),
    );
    v.push(case("custos-sigkill-respawn", g, |c| {
        let pid = running_testd(c)?;
        for round in 0..3 {
            if let Some(mut old) = c.custos.take() {
                old.signal(libc::SIGKILL);
                let _ = old.child.wait();
                c.outputs.push((None, old.log_text()));
                // Not dropped: its Drop would kill the daemons the next custos adopts.
                std::mem::forget(old);
            }
            let _ = fs::rename(c.p("custos.log"), c.p(&format!("custos-{round}.log")));
            let cfg = testd(c, "");
            c.start(&cfg);
            c.wait(&format!("found running as pid {pid}"), 10)?;
        }
        sleep_ms(500);
        c.absent("starting (")?;
        ensure(alive(pid) && c.starts() == 1, || {
            format!("{} starts over 3 respawns", c.starts())
        })?;
        still_supervises(c, pid)
    }));

    // ---- 5,000 unrelated processes
    v.push(
        case("procs-5000-unrelated", "5,000 unrelated processes", |c| {
            // 5,000 sleepers beside an exe-identified service: custos scans /proc each pass,
            // supervises on time, and leaves every one of them alone.
            let mut sh = Command::new("/bin/sh");
            sh.args([
                "-c",
                "i=0; while [ $i -lt 5000 ]; do sleep 600 & i=$((i+1)); done; echo ready; wait",
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut sh, 0);
            let mut child = sh.spawn().map_err(|e| e.to_string())?;
            let pg = child.id() as i32;
            c.kill_groups.push(pg);
            let mut out = child.stdout.take().ok_or("no stdout")?;
            c.kill.push(child);
            let mut b = [0u8; 6];
            out.read_exact(&mut b).map_err(|e| format!("sleepers: {e}"))?;
            let count = || {
                fs::read_dir("/proc")
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| {
                                fs::read_to_string(e.path().join("stat"))
                                    .ok()
                                    .and_then(|s| {
                                        let r = s.rsplit_once(')')?.1.to_string();
                                        r.split_whitespace().nth(2)?.parse::<i32>().ok()
                                    })
                                    == Some(pg)
                            })
                            .count()
                    })
                    .unwrap_or(0)
            };
            let before = count();
            ensure(before >= 5000, || format!("only {before} sleepers"))?;
            let cfg = decoyd(c, true, "");
            c.start(&cfg);
            let pid = c.svc_pid("svc.pid", 15)?;
            c.wait(&format!("running as pid {pid}"), 15)?;
            let t = Instant::now();
            signal(pid, libc::SIGKILL);
            c.new_svc_pid("svc.pid", pid, 15)?;
            c.wait_n("running as pid", 2, 15)?;
            let took = t.elapsed();
            c.status_ok()?;
            let after = count();
            println!("  procs-5000-unrelated: death to running again {took:?}; sleepers {before} -> {after}");
            ensure(after == before, || format!("sleepers {before} -> {after}"))
        })
        .heavy()

    );

    v
}

fn hostile_list(v: &mut Vec<Case>) {
    v.push(hostile_case(
        "garbage",
        |p, _, _| write(p, b"garbage\n"),
        BAD,
    ));
    v.push(hostile_case("empty", |p, _, _| write(p, b""), BAD));
    v.push(hostile_case(
        "negative",
        |p, d, _| write(p, format!("-{d}\n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case("zero", |p, _, _| write(p, b"0\n"), BAD));
    v.push(hostile_case(
        "one",
        |p, _, _| write(p, b"1\n"),
        "which is init (PID 1): never pinned",
    ));
    v.push(hostile_case("huge", |p, _, _| write(p, b"4194305\n"), BAD));
    v.push(hostile_case(
        "overflow",
        |p, _, _| write(p, b"99999999999999999999999\n"),
        BAD,
    ));
    v.push(hostile_case(
        "i32-wrap",
        |p, d, _| write(p, format!("{}\n", 4294967296u64 + d as u64).as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "spaces",
        |p, d, _| write(p, format!(" {d} \n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "plus-sign",
        |p, d, _| write(p, format!("+{d}\n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "two-lines",
        |p, d, _| write(p, format!("{d}\n{d}\n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "crlf",
        |p, d, _| write(p, format!("{d}\r\n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "nul",
        |p, d, _| write(p, format!("{d}\0").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "hex",
        |p, d, _| write(p, format!("0x{d:x}\n").as_bytes()),
        BAD,
    ));
    v.push(hostile_case(
        "10mb",
        |p, d, _| {
            let mut b = format!("{d}\n").into_bytes();
            b.resize(10 << 20, b'\n');
            write(p, &b)
        },
        BAD,
    ));
    v.push(hostile_case(
        "fifo",
        |p, _, _| mkfifo(p),
        "is a FIFO, not a regular file: not read",
    ));
    v.push(hostile_case(
        "symlink-proc-self-stat",
        |p, _, _| symlink("/proc/self/stat", p),
        "is a symbolic link, not a regular file: not followed",
    ));
    v.push(hostile_case(
        "symlink-dev-zero",
        |p, _, _| symlink("/dev/zero", p),
        "is a symbolic link, not a regular file: not followed",
    ));
    v.push(hostile_case(
        "symlink-tty",
        |p, _, _| symlink("/dev/tty", p),
        "is a symbolic link, not a regular file: not followed",
    ));
    v.push(hostile_case(
        "symlink-to-decoy-pidfile",
        |p, d, c| {
            let real = c.p("real.pid");
            write(&real, format!("{d}\n").as_bytes())?;
            symlink(&real.display().to_string(), p)
        },
        "is a symbolic link, not a regular file: not followed",
    ));
    v.push(
        hostile_case(
            "char-device",
            |p, _, _| {
                let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                    .map_err(|e| e.to_string())?;
                // SAFETY: a valid path; /dev/zero's numbers (1, 5).
                let rc =
                    unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) };
                ensure(rc == 0, || "mknod failed".into())
            },
            "is a character device, not a regular file: not read",
        )
        .root(),
    );
    v.push(hostile_case(
        "directory",
        |p, _, _| fs::create_dir(p).map_err(|e| e.to_string()),
        "is a directory, not a regular file: not read",
    ));
    v.push(case("pidfile-mode-000-stale", "hostile pidfiles", |c| {
        hostile(
            c,
            |p, d, _| {
                write(p, format!("{d}\n").as_bytes())?;
                backdate(p, 3600);
                fs::set_permissions(p, fs::Permissions::from_mode(0o000)).map_err(|e| e.to_string())
            },
            "liar:",
            true,
        )
    }));
    v.push(case(
        "pidfile-stale-then-operator-start",
        "hostile pidfiles",
        |c| {
            hostile(
                c,
                |p, d, _| {
                    write(p, format!("{d}\n").as_bytes())?;
                    backdate(p, 3600);
                    Ok(())
                },
                "cannot be verified",
                true,
            )?;
            let (code, out) = c.ctl(&["start", "liar"]);
            ensure(code == Some(0), || format!("custos start: {code:?} {out}"))?;
            c.wait("starting (", 10).map(|_| ())
        },
    ));
    v.push(case("pidfile-future", "hostile pidfiles", |c| {
        hostile(
            c,
            |p, d, _| {
                write(p, format!("{d}\n").as_bytes())?;
                backdate(p, -86400);
                Ok(())
            },
            "cannot be verified",
            true,
        )
    }));
    v.push(case("pidfile-thread-id", "hostile pidfiles", |c| {
        let tidfile = c.p("tid");
        c.decoy_env(
            &["threaded"],
            &[("DECOY_TIDFILE", tidfile.display().to_string())],
        )?;
        wait_for(10, || read_pid(&tidfile)).ok_or("no thread id")?;
        hostile(
            c,
            |p, _, c| {
                let t = read_pid(&c.p("tid")).ok_or("tid")?;
                write(p, format!("{t}\n").as_bytes())
            },
            BAD,
            false,
        )
    }));
    v.push(case("pidfile-custos-itself", "hostile pidfiles", |c| {
        c.decoy(&["bystander"])?;
        let cfg = liar(
            c,
            &format!("[\"/bin/sh\", \"-c\", \"echo $PPID > {}/liar.pid\"]", c.d()),
        );
        c.start(&cfg);
        let me = c.custos_pid()?;
        c.wait_n(
            &format!("pidfile names pid {me}, which is custos itself: never pinned"),
            2,
            10,
        )?;
        c.absent("sending SIG")
    }));
    v.push(case("pidfile-pid-2", "hostile pidfiles", |c| {
        hostile(c, |p, _, _| write(p, b"2\n"), "pid 2", false)
    }));
    v.push(case("pidfile-dead-pid", "hostile pidfiles", |c| {
        hostile(
            c,
            |p, _, _| write(p, b"4194303\n"),
            "pidfile names pid 4194303, which is not running",
            false,
        )
    }));
}

fn config_list(v: &mut Vec<Case>) {
    let g = "config errors";
    fn base(c: &Ctx) -> String {
        testd_config(&c.dir, "")
    }
    fn cfg_case(v: &mut Vec<Case>, name: &str, make: fn(&Ctx) -> Vec<u8>, expect: &'static str) {
        v.push(
            case(format!("config-{name}"), "config errors", move |c| {
                let text = make(c);
                config_error(c, &text, expect)
            })
            .exits(),
        );
    }
    // Line numbers: base() is header (4 lines), a blank line, then [[service]] at line 6.
    cfg_case(
        v,
        "wrong-type",
        |c| {
            base(c)
                .replace("interval = \"100ms\"", "interval = 100")
                .into_bytes()
        },
        "FILE:2:",
    );
    cfg_case(
        v,
        "unknown-key",
        |c| format!("{}colour = \"red\"\n", base(c)).into_bytes(),
        "FILE:14:",
    );
    cfg_case(
        v,
        "duplicate-service",
        |c| {
            let b = base(c);
            let svc = b.split_once("[[service]]").map(|x| x.1).unwrap_or("");
            format!("{b}[[service]]{svc}").into_bytes()
        },
        "FILE:15:",
    );
    cfg_case(
        v,
        "duplicate-key",
        |c| {
            base(c)
                .replace(
                    "interval = \"100ms\"",
                    "interval = \"100ms\"\ninterval = \"1s\"",
                )
                .into_bytes()
        },
        "FILE:3:",
    );
    cfg_case(
        v,
        "over-capacity",
        |c| {
            let mut s = header(&c.d());
            for i in 0..33 {
                s.push_str(&format!(
                    "\n[[service]]\nname = \"s{i}\"\npidfile = \"/run/s{i}.pid\"\nstart = [\"/bin/true\"]\n"
                ));
            }
            s.into_bytes()
        },
        "FILE:",
    );
    cfg_case(
        v,
        "bad-duration",
        |c| base(c).replace("\"100ms\"", "\"5 parsecs\"").into_bytes(),
        "FILE:2:",
    );
    cfg_case(
        v,
        "duration-over-bound",
        |c| {
            base(c)
                .replace("start_timeout = \"5s\"", "start_timeout = \"11m\"")
                .into_bytes()
        },
        "FILE:11:",
    );
    cfg_case(
        v,
        "empty-args",
        |c| {
            base(c)
                .replace("pidfile = ", "exe = \"/bin/sleep\"\nargs = \"\"\n#")
                .into_bytes()
        },
        "FILE:9:",
    );
    cfg_case(
        v,
        "5mb",
        |c| {
            let mut b = base(c).into_bytes();
            b.resize(5 << 20, b'#');
            b
        },
        "FILE",
    );
    cfg_case(
        v,
        "binary",
        |_| {
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect()
        },
        "FILE:",
    );
    cfg_case(
        v,
        "non-utf8",
        |c| {
            let mut b = base(c).into_bytes();
            b.extend_from_slice(b"# caf\xe9\n");
            b
        },
        "FILE:14: not UTF-8: byte 0xe9 at column 6",
    );
    cfg_case(
        v,
        "toml-syntax",
        |c| format!("{}[[service\n", base(c)).into_bytes(),
        "FILE:14:",
    );
    v.push(
        case("config-directory", g, |c| {
            let p = c.p("custos.d");
            fs::create_dir(&p).map_err(|e| e.to_string())?;
            config_error_at(c, &p, "FILE")
        })
        .exits(),
    );
    v.push(
        case("config-missing", g, |c| {
            let p = c.p("nope.toml");
            config_error_at(c, &p, "FILE")
        })
        .exits(),
    );
    v.push(
        case("config-fifo", g, |c| {
            let p = c.p("fifo.toml");
            mkfifo(&p)?;
            config_error_at(c, &p, "FILE")
        })
        .exits(),
    );
}

fn run_one(case: &Case) -> (String, Result<(), String>) {
    let mut ctx = Ctx::new(&case.name);
    let d = ctx.d();
    // Two decoys in every case: one with the decoyd service's command line plus an argument,
    // one unrelated.
    let mut res = ctx
        .decoy(&["svc", &d, "look-alike"])
        .and_then(|_| ctx.decoy(&["bystander"]))
        .and_then(|_| (case.run)(&mut ctx));
    // Let any late signal land before the decoys are read.
    sleep_ms(200);
    let inv = ctx.invariants(case.exits);
    if let Err(e) = inv {
        res = match res {
            Ok(()) => Err(e),
            Err(r) => Err(format!("{r}; {e}")),
        };
    }
    if res.is_ok() && case.exits && ctx.alive_custos() {
        res = Err("custos did not exit".into());
    }
    ctx.cleanup();
    if res.is_ok() && std::env::var_os("MATRIX_KEEP").is_none() {
        let _ = fs::remove_dir_all(&ctx.dir);
    }
    (case.name.clone(), res)
}

#[test]
fn fault_matrix() {
    let t0 = Instant::now();
    let filter = std::env::var("MATRIX").unwrap_or_default();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let all = cases();
    let total = all.len();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for c in &all {
        match groups.iter_mut().find(|g| g.0 == c.group) {
            Some(g) => g.1 += 1,
            None => groups.push((c.group, 1)),
        }
    }
    let mut skipped = Vec::new();
    let (mut light, mut heavy) = (Vec::new(), Vec::new());
    for c in all {
        if !c.name.contains(&filter) {
            continue;
        }
        if let (true, Some(why)) = (emulated(), c.not_emulated) {
            skipped.push(format!("SKIP {}: {why}", c.name));
        } else if c.root && !root {
            skipped.push(format!(
                "SKIP {}: needs root (mounts, mknod, other users)",
                c.name
            ));
        } else if c.heavy {
            heavy.push(c);
        } else {
            light.push(c);
        }
    }
    for s in &skipped {
        println!("{s}");
    }
    let queue = Arc::new(Mutex::new(light));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: usize = std::env::var("MATRIX_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if emulated() { 3 } else { 6 });
    let hs: Vec<_> = (0..workers)
        .map(|_| {
            let q = Arc::clone(&queue);
            let r = Arc::clone(&results);
            std::thread::spawn(move || loop {
                let next = q.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(c) = next else { break };
                let t = Instant::now();
                let (name, res) = run_one(&c);
                match &res {
                    Ok(()) => println!("ok {name} ({:.1}s)", t.elapsed().as_secs_f64()),
                    Err(e) => println!("FAIL {name}: {e}"),
                }
                if let Ok(mut r) = r.lock() {
                    r.push((name, res));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("worker");
    }
    for c in heavy {
        let t = Instant::now();
        let (name, res) = run_one(&c);
        match &res {
            Ok(()) => println!("ok {name} ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => println!("FAIL {name}: {e}"),
        }
        results.lock().expect("results").push((name, res));
    }
    let results = results.lock().expect("results");
    let failed: Vec<_> = results.iter().filter(|r| r.1.is_err()).collect();
    println!(
        "{} passed, {} failed, {} skipped ({} cases in the table; {:.0}s)",
        results.len() - failed.len(),
        failed.len(),
        skipped.len(),
        total,
        t0.elapsed().as_secs_f64()
    );
    for (g, n) in &groups {
        println!("  {n:3}  {g}");
    }
    assert!(total >= 60, "the matrix has {total} cases, fewer than 60");
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|f| f.0.as_str()).collect();
        panic!("{} case(s) failed: {}", failed.len(), names.join(", "));
    }
}

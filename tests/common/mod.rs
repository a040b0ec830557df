//! Black-box test harness: runs the real custos binary in a temp dir against real processes,
//! reads its log, and waits with bounds. Works natively and under qemu-user: set
//! CUSTOS_TEST_RUNNER=qemu-arm (scripts/test does) and the binary runs emulated while the shell
//! fixtures it execs run natively.
#![allow(dead_code)]

pub mod json;
pub mod pets;
pub use json::Json;
#[allow(unused_imports)]
pub use pets::PetSampler;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// True when custos runs under qemu-user (no subreaper there: causes of daemon deaths are
/// unknown to it).
/// How soon a SIGKILLed testd daemon must be started again. Under qemu-user custos is no
/// subreaper: the daemon is not its child, its zombie belongs to this machine's init, and
/// custos waits (at most 2 s, `core::REAP_WAIT`) until init has reaped it before it runs the
/// start script, whose `kill -0` would take the zombie for the daemon.
pub fn restart_bound() -> std::time::Duration {
    let base = std::time::Duration::from_secs(1);
    if emulated() {
        base + custos::core::REAP_WAIT
    } else {
        base
    }
}

pub fn emulated() -> bool {
    std::env::var_os("CUSTOS_TEST_EMULATED").is_some_and(|v| !v.is_empty())
}

/// A fresh directory for one test.
pub fn tempdir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("custos-it-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("temp dir");
    d
}

pub fn custos_command() -> Command {
    let bin = env!("CARGO_BIN_EXE_custos");
    match std::env::var("CUSTOS_TEST_RUNNER") {
        Ok(r) if !r.is_empty() => {
            let mut c = Command::new(r);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

/// A config for the testd fixture service in `dir`, with `extra` appended to the [[service]].
pub fn testd_config(dir: &Path, extra: &str) -> String {
    testd_config_timeout(dir, "5s", extra)
}

/// Same, with the given start_timeout.
pub fn testd_config_timeout(dir: &Path, start_timeout: &str, extra: &str) -> String {
    format!(
        "{}\n{}{extra}\n",
        supervisor_section(dir),
        testd_service(dir, start_timeout)
    )
}

/// The [supervisor] table of every harness config: a 100 ms pass, the state and the control
/// socket in `dir`.
pub fn supervisor_section(dir: &Path) -> String {
    format!(
        "[supervisor]\ninterval = \"100ms\"\nstate_dir = \"{dir}\"\ncontrol_socket = \"{dir}/custos.sock\"\n",
        dir = dir.display()
    )
}

/// The testd fixture as a [[service]] (state, pidfile and `starts` in `dir`); keys of its own
/// may follow.
pub fn testd_service(dir: &Path, start_timeout: &str) -> String {
    format!(
        r#"[[service]]
name = "testd"
pidfile = "{dir}/testd.pid"
start = ["/bin/sh", "{fx}/testd", "start", "{dir}"]
stop = ["/bin/sh", "{fx}/testd", "stop", "{dir}"]
start_timeout = "{start_timeout}"
stop_timeout = "1s"
"#,
        dir = dir.display(),
        fx = FIXTURES
    )
}

/// The watchdog stand-in: a plain file DIR/wd, to which each pet appends a byte.
pub fn watchdog_stand(dir: &Path, timeout: &str, pet_every: &str) -> String {
    format!(
        "[watchdog]\ndevice = \"{dir}/wd\"\ntimeout = \"{timeout}\"\npet_every = \"{pet_every}\"\n",
        dir = dir.display()
    )
}

/// testd started by hand, before custos (as rcS would); its PID.
pub fn testd_by_hand(dir: &Path) -> i32 {
    let st = Command::new("/bin/sh")
        .arg(format!("{FIXTURES}/testd"))
        .arg("start")
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("testd start");
    assert!(st.success(), "testd start: {st}");
    wait_pid(&dir.join("testd.pid"), 10)
}

/// The PIDs testd (or a sleeper) appended to DIR/starts, one per start.
pub fn starts(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What one run of the client said.
#[derive(Debug)]
pub struct Reply {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

impl Reply {
    /// stdout, then stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.out, self.err)
    }
}

impl From<std::process::Output> for Reply {
    fn from(out: std::process::Output) -> Reply {
        Reply {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `custos ARGS` to its end: exit code, stdout, stderr.
pub fn run_custos(args: &[&str]) -> (Option<i32>, String, String) {
    let r = Reply::from(custos_command().args(args).output().expect("run custos"));
    (r.code, r.out, r.err)
}

/// Runs the client (`custos --socket SOCK ARGS`) to its end.
pub fn ctl_at(sock: &Path, args: &[&str]) -> Reply {
    Reply::from(
        custos_command()
            .arg("--socket")
            .arg(sock)
            .args(args)
            .output()
            .expect("run client"),
    )
}

/// Boots are simulated through CUSTOS_TEST_BOOT_ID, which only a debug build reads; false (with
/// the SKIP said) in a release build.
pub fn boots_simulated() -> bool {
    if !cfg!(debug_assertions) {
        eprintln!("SKIP: a release build ignores CUSTOS_TEST_BOOT_ID: boots cannot be simulated");
        return false;
    }
    true
}

pub struct Custos {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Custos {
    /// Writes `config` to dir/custos.toml and runs `custos run -c` on it, logging to dir/custos.log.
    pub fn start(dir: &Path, config: &str) -> Custos {
        Custos::start_with(dir, config, |_| {})
    }

    /// Same, with `adjust` applied to the command before it is spawned.
    pub fn start_with(dir: &Path, config: &str, adjust: impl FnOnce(&mut Command)) -> Custos {
        let cfg = dir.join("custos.toml");
        fs::write(&cfg, config).expect("write config");
        let log = dir.join("custos.log");
        let f = File::create(&log).expect("log file");
        let mut cmd = custos_command();
        cmd.args(["run", "-c"])
            .arg(&cfg)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup"))
            .stderr(f);
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn custos");
        Custos {
            child,
            dir: dir.to_path_buf(),
            log,
            config: cfg,
        }
    }

    /// The control socket of the harness configs.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("custos.sock")
    }

    /// Runs the client against this custos.
    pub fn ctl(&self, args: &[&str]) -> Reply {
        ctl_at(&self.socket(), args)
    }

    /// Starts custos as if in the boot `boot_id` and waits until its control socket listens.
    pub fn start_in_boot(
        dir: &Path,
        config: &str,
        boot_id: &str,
        adjust: impl FnOnce(&mut Command),
    ) -> Custos {
        let c = Custos::start_with(dir, config, |cmd| {
            cmd.env("CUSTOS_TEST_BOOT_ID", boot_id);
            adjust(cmd);
        });
        c.wait_log("control: listening on", 20);
        c
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `secs` for a log line containing `needle`; panics with the log if none.
    pub fn wait_log(&self, needle: &str, secs: u64) -> String {
        self.wait_log_count(needle, 1, secs)
    }

    /// Waits until `needle` appears at least `n` times in the log.
    pub fn wait_log_count(&self, needle: &str, n: usize, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.log_text();
            if text.matches(needle).count() >= n {
                return text;
            }
            if Instant::now() > end {
                panic!("no {n}x `{needle}` in the log within {secs}s. Log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM and wait (bounded); returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }
}

/// The structured replies: `custos status --json` and `custos events --json`
/// (schema/status.schema.json, schema/events.schema.json).
impl Custos {
    /// `custos status --json`, parsed; None while the client gets no answer (before the
    /// socket listens).
    pub fn try_status(&self) -> Option<Json> {
        let r = self.ctl(&["status", "--json"]);
        (r.code == Some(0)).then(|| Json::of(&r.out))
    }

    /// `custos status --json`, parsed.
    pub fn status(&self) -> Json {
        self.try_status()
            .unwrap_or_else(|| panic!("status --json failed. Log:\n{}", self.log_text()))
    }

    fn service_in(status: &Json, name: &str) -> Json {
        status["services"]
            .items()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or(Json::Null)
    }

    /// The service `name` in `status --json`; null if it is not there.
    pub fn service(&self, name: &str) -> Json {
        Custos::service_in(&self.status(), name)
    }

    /// The recorded events (`events --json`), oldest first; None while the client gets no
    /// answer.
    pub fn try_events(&self) -> Option<Vec<Json>> {
        let r = self.ctl(&["events", "--json"]);
        (r.code == Some(0)).then(|| Json::of(&r.out)["events"].items().to_vec())
    }

    /// The recorded events (`events --json`), oldest first.
    pub fn events(&self) -> Vec<Json> {
        self.try_events()
            .unwrap_or_else(|| panic!("events --json failed. Log:\n{}", self.log_text()))
    }

    /// The events of `service` (empty: custos-wide) of `kind`, oldest first.
    pub fn events_of(&self, service: &str, kind: &str) -> Vec<Json> {
        self.events()
            .into_iter()
            .filter(|e| e["service"] == service && e["kind"] == kind)
            .collect()
    }

    /// Waits up to `secs` until `service`'s status satisfies `done`; returns it. Panics with
    /// the last status and the log if it never does.
    pub fn wait_service(&self, name: &str, secs: u64, done: impl Fn(&Json) -> bool) -> Json {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self
                .try_status()
                .map_or(Json::Null, |st| Custos::service_in(&st, name));
            if done(&s) {
                return s;
            }
            if Instant::now() > end {
                panic!(
                    "{name}: status not as awaited within {secs}s: {s:?}\nLog:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `name` runs (status `running`) as a PID other than `old`; returns the PID.
    pub fn wait_running_other(&self, name: &str, old: i32, secs: u64) -> i32 {
        let s = self.wait_service(name, secs, |s| {
            s["state"] == "running" && s["pid"].int().is_some_and(|p| p != old as i64)
        });
        s["pid"].int().unwrap_or(0) as i32
    }

    /// Waits until `name` runs; returns its PID.
    pub fn wait_running(&self, name: &str, secs: u64) -> i32 {
        self.wait_running_other(name, 0, secs)
    }

    /// Waits until at least `n` events of `service` of `kind` are recorded; returns them all.
    pub fn wait_events(&self, service: &str, kind: &str, n: usize, secs: u64) -> Vec<Json> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let all = self.try_events().unwrap_or_default();
            let got: Vec<Json> = all
                .iter()
                .filter(|e| e["service"] == service && e["kind"] == kind)
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > end {
                panic!(
                    "no {n}x `{kind}` event of `{service}` within {secs}s. Events: {all:?}\nLog:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for one event of `service` of `kind`; returns the newest.
    pub fn wait_event(&self, service: &str, kind: &str, secs: u64) -> Json {
        let mut v = self.wait_events(service, kind, 1, secs);
        v.pop().unwrap_or(Json::Null)
    }
}

impl Drop for Custos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Daemons outlive custos by design: clean up every one this test started.
        if let Ok(starts) = fs::read_to_string(self.dir.join("starts")) {
            for pid in starts.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // The daemon and what it started in its own session (fixtures call setsid).
                kill(-pid, libc::SIGKILL);
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// kill(2) a test-owned PID, or with a negative `pid` its process group.
pub fn kill(pid: i32, sig: i32) {
    if !(-1..=1).contains(&pid) {
        // SAFETY: kill(2); test-owned PIDs only.
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie is not alive.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Reads the PID in a pidfile, waiting for it (bounded).
pub fn wait_pid(path: &Path, secs: u64) -> i32 {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(p) = fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if alive(p) {
                return p;
            }
        }
        if Instant::now() > end {
            panic!("no live PID in {} within {secs}s", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the pidfile names a live PID other than `old`.
pub fn wait_new_pid(path: &Path, old: i32, secs: u64) -> i32 {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(p) = fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if p != old && alive(p) {
                return p;
            }
        }
        if Instant::now() > end {
            panic!("no new PID in {} within {secs}s", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets a file's mtime to `secs_ago` seconds in the past.
pub fn backdate(path: &Path, secs_ago: i64) {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let mut t = now;
    // time_t is i32 on armv7 musl, i64 elsewhere.
    #[allow(clippy::useless_conversion, deprecated)]
    let ago: libc::time_t = secs_ago.try_into().unwrap_or(0);
    t.tv_sec -= ago;
    t.tv_nsec = 0;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let times = [t, t];
    // SAFETY: valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat");
}

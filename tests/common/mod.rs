//! Black-box test harness: runs the real custos binary in a temp dir against real processes,
//! reads its log, and waits with bounds. Works natively and under qemu-user: set
//! CUSTOS_TEST_RUNNER=qemu-arm (scripts/test does) and the binary runs emulated while the shell
//! fixtures it execs run natively.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// True when custos runs under qemu-user (no subreaper there: causes of daemon deaths are
/// unknown to it).
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
        r#"[supervisor]
interval = "100ms"
state_dir = "{dir}"
control_socket = "{dir}/custos.sock"

[[service]]
name = "testd"
pidfile = "{dir}/testd.pid"
start = ["/bin/sh", "{fx}/testd", "start", "{dir}"]
stop = ["/bin/sh", "{fx}/testd", "stop", "{dir}"]
start_timeout = "{start_timeout}"
stop_timeout = "1s"
{extra}
"#,
        dir = dir.display(),
        fx = FIXTURES
    )
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
    #[allow(clippy::useless_conversion)]
    let ago: libc::time_t = secs_ago.try_into().unwrap_or(0);
    t.tv_sec -= ago;
    t.tv_nsec = 0;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let times = [t, t];
    // SAFETY: valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat");
}

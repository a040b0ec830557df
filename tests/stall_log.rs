//! custos's own output can neither block nor kill it: stderr to a pipe nobody reads, to a pipe
//! whose reader has gone (EPIPE), to `head`, to a console stopped with XOFF; and the client's
//! stdout closed under it.
//!
//! A regular file given as `[watchdog] device` counts the pets (custos writes one byte per pet
//! to a path that is not a watchdog device), sampled every 10 ms: the promise is that no gap
//! between two pets is longer than `pet_every` + 250 ms while the sink is stalled, and that
//! another service's SIGKILL is still answered by a start within 1 s.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const PET_EVERY: Duration = Duration::from_millis(100);
const SLACK: Duration = Duration::from_millis(250);
/// The words of the note custos writes once the sink takes lines again.
const DROPPED: &str = "log line(s) dropped: stderr was not writable";

/// A service that crash-loops and prints a burst of long lines on every start: with
/// RUST_LOG=debug custos has a lot to say about it.
const CHATTY: &str = r#"#!/bin/sh
dir=$2
name=$3
case $1 in
start)
    rm -f "$dir/$name.pid"
    # The daemon keeps the script's stdout: custos logs what it prints.
    ( setsid /bin/sh "$0" daemon "$dir" "$name" & )
    i=0
    while [ ! -s "$dir/$name.pid" ] && [ "$i" -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
    exit 0
    ;;
daemon)
    echo $$ > "$dir/$name.pid.tmp" && mv "$dir/$name.pid.tmp" "$dir/$name.pid"
    echo "$$" >> "$dir/starts"
    n=0
    while [ "$n" -lt 40 ]; do
        echo "$name line $n: the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog, the quick brown fox"
        n=$((n + 1))
    done
    sleep 0.2
    exit 1
    ;;
esac
"#;

/// Services that crash-loop and print.
const CHATTY_SERVICES: usize = 3;

/// `extra` goes into [supervisor].
fn config(dir: &Path, extra: &str) -> String {
    let mut cfg = format!(
        "{}{extra}\n\n{}\n{}[service.restart]\nbackoff = \"100ms\"\n",
        supervisor_section(dir),
        watchdog_stand(dir, "3s", "100ms"),
        testd_service(dir, "5s")
    );
    for i in 0..CHATTY_SERVICES {
        cfg.push_str(&format!(
            r#"
[[service]]
name = "chatty{i}"
pidfile = "{dir}/chatty{i}.pid"
start = ["/bin/sh", "{dir}/chatty", "start", "{dir}", "chatty{i}"]
start_timeout = "5s"
[service.restart]
backoff = "100ms"
backoff_max = "100ms"
max_restarts = 64
window = "1s"
"#,
            dir = dir.display()
        ));
    }
    cfg
}

fn setup(name: &str) -> PathBuf {
    setup_with(name, "")
}

fn setup_with(name: &str, supervisor: &str) -> PathBuf {
    let dir = tempdir(name);
    fs::write(dir.join("chatty"), CHATTY).expect("chatty script");
    fs::write(dir.join("wd"), "").expect("watchdog file");
    fs::write(dir.join("custos.toml"), config(&dir, supervisor)).expect("config");
    dir
}

/// `custos run` on dir/custos.toml with RUST_LOG=debug and the given stderr.
fn spawn(dir: &Path, stderr: Stdio) -> Custos {
    let cfg = dir.join("custos.toml");
    let child = custos_command()
        .args(["run", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn custos");
    Custos {
        child,
        dir: dir.to_path_buf(),
        log: dir.join("no-log-file"),
        config: cfg,
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    // SAFETY: both fds are new and owned here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Bytes waiting in a pipe.
fn queued(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    n.max(0) as usize
}

fn pets(dir: &Path) -> u64 {
    fs::metadata(dir.join("wd")).map(|m| m.len()).unwrap_or(0)
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "{what}: not within {secs}s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs testd and returns how long until a new testd process is up.
fn kill_testd_and_time_the_start(dir: &Path) -> Option<Duration> {
    let pidfile = dir.join("testd.pid");
    let old = wait_pid(&pidfile, 10);
    let t0 = Instant::now();
    kill(old, libc::SIGKILL);
    while t0.elapsed() < Duration::from_secs(5) {
        if let Some(p) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            if p != old && alive(p) {
                return Some(t0.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The `flags:` of an fd in /proc/PID/fdinfo (octal).
fn fd_flags(pid: u32, fd: i32) -> u32 {
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).expect("fdinfo");
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .expect("flags")
}

/// Reads an fd in a thread (poll with a timeout, so it stops when told) into a shared buffer.
struct Drain {
    text: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    fn start(fd: OwnedFd) -> Drain {
        let text = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (text.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while !s.load(Ordering::Relaxed) {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
                    continue;
                }
                // SAFETY: read into a valid buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    if n == 0 {
                        break;
                    }
                    continue;
                }
                t.lock()
                    .expect("lock")
                    .extend_from_slice(&buf[..n as usize]);
            }
        });
        Drain {
            text,
            stop,
            thread: Some(thread),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().expect("lock")).into_owned()
    }

    fn wait(&self, needle: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            if Instant::now() > end {
                let tail: String = t
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("no `{needle}` within {secs}s; last lines:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Measures pets and a restart while custos's sink is stalled.
fn assert_loop_unaffected(dir: &Path, what: &str) {
    let mut meter = PetSampler::start(&dir.join("wd"));
    std::thread::sleep(Duration::from_millis(1000));
    let restart = kill_testd_and_time_the_start(dir);
    std::thread::sleep(Duration::from_millis(1000));
    meter.stop();
    let (gap, count) = (meter.max_gap(meter.started(), meter.ended()), meter.grown());
    eprintln!(
        "{what}: largest pet gap {gap:?} ({count} pets); testd started again after {restart:?}"
    );
    assert!(
        gap <= PET_EVERY + SLACK && restart.is_some_and(|t| t <= restart_bound()),
        "{what}: largest pet gap {gap:?} ({count} pets in ~2s; limit {:?}); testd started again after {restart:?} (limit {:?})",
        PET_EVERY + SLACK,
        restart_bound()
    );
}

#[test]
fn stderr_to_a_pipe_nobody_reads_costs_no_pet_and_drops_are_reported() {
    stalled_pipe(
        &setup("stall-pipe"),
        "stderr pipe never read",
        "INFO  [custos::supervisor] chatty0: ",
    );
}

#[test]
fn the_syslog_fallback_to_a_stalled_stderr_costs_no_pet() {
    if Path::new("/dev/log").exists() {
        eprintln!(
            "SKIP: this machine has a syslog socket at /dev/log, so custos would log there and \
             not fall back to stderr (src/syslog.rs tests the fallback with a socket of its own)"
        );
        return;
    }
    let dir = setup_with("stall-syslog", "log = \"syslog\"");
    stalled_pipe(
        &dir,
        "syslog away, stderr pipe never read",
        "INFO  [custos] chatty0: ",
    );
}

/// custos's stderr is a one-page pipe nobody reads while services crash-loop and print.
fn stalled_pipe(dir: &Path, what: &str, resumed: &str) {
    let dir = dir.to_path_buf();
    let (r, w) = pipe();
    // One page: a chatty custos fills it in well under a second.
    // SAFETY: fcntl on a valid pipe fd; a failure keeps the default size.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    // SAFETY: F_GETPIPE_SZ takes no argument.
    let size = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) }.max(4096) as usize;
    let mut c = spawn(&dir, Stdio::from(w));
    wait_for("first pet", 10, || pets(&dir) > 0);
    wait_pid(&dir.join("testd.pid"), 10);
    wait_for("a full stderr pipe", 30, || queued(&r) + 512 >= size);
    assert!(
        c.child.try_wait().expect("try_wait").is_none(),
        "custos exited"
    );

    assert_loop_unaffected(&dir, what);
    // Long enough for the buffer to overflow.
    std::thread::sleep(Duration::from_secs(2));
    assert!(queued(&r) + 512 >= size, "the pipe was read meanwhile");
    // The pipe's file description is shared with whoever else holds it: custos must not have
    // made it non-blocking.
    let flags = fd_flags(c.child.id(), 2);
    assert_eq!(
        flags & libc::O_NONBLOCK as u32,
        0,
        "custos set O_NONBLOCK on its shared stderr (flags {flags:o})"
    );

    // Read the pipe again: the log resumes with a note of what was lost.
    let drain = Drain::start(r);
    let text = drain.wait(DROPPED, 10);
    let note = text
        .lines()
        .find(|l| l.contains(DROPPED))
        .expect("note line");
    assert!(
        note.starts_with("WARN  [custos] ") && note.split(' ').nth(3).is_some(),
        "{note}"
    );
    let n: u64 = note["WARN  [custos] ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n > 0, "{note}");
    drain.wait(resumed, 10);
    if resumed.contains("[custos] ") {
        drain.wait("WARN  [custos] syslog /dev/log is unavailable (", 1);
    }
    assert_eq!(c.stop(), Some(0));
}

#[test]
fn stderr_to_a_closed_pipe_epipe_changes_nothing() {
    let dir = setup("stall-epipe");
    let (r, w) = pipe();
    let mut c = spawn(&dir, Stdio::from(w));
    // Read until testd runs, then close the reading end: every write now fails with EPIPE.
    let mut reader = BufReader::new(fs::File::from(r));
    let mut seen = String::new();
    let end = Instant::now() + Duration::from_secs(10);
    while !seen.contains("testd: running as pid") {
        assert!(Instant::now() < end, "testd not running; log:\n{seen}");
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 {
            panic!("custos closed stderr; log:\n{seen}");
        }
        seen.push_str(&line);
    }
    drop(reader);
    wait_for("first pet", 10, || pets(&dir) > 0);
    assert_loop_unaffected(&dir, "stderr pipe closed");
    assert!(
        c.child.try_wait().expect("try_wait").is_none(),
        "custos exited"
    );
    assert_eq!(c.stop(), Some(0), "exit code on SIGTERM");
}

/// A shell runs `custos run -c F 2>&1 | head -n 3`; custos's PID and exit status come back in
/// files.
const HEAD: &str = r#"#!/bin/sh
pidfile=$1; out=$2; status=$3; shift 3
{ sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@"; echo $? > "$status"; } 2>&1 | head -n 3 > "$out"
"#;

#[test]
fn custos_piped_into_head_keeps_supervising() {
    let dir = setup("stall-head");
    fs::write(dir.join("head.sh"), HEAD).expect("script");
    let custos = custos_command();
    let mut sh = Command::new("/bin/sh");
    sh.arg(dir.join("head.sh"))
        .arg(dir.join("custos.pid"))
        .arg(dir.join("head.out"))
        .arg(dir.join("status"))
        .arg(custos.get_program())
        .args(custos.get_args())
        .args(["run", "-c"])
        .arg(dir.join("custos.toml"))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null());
    let shell = sh.spawn().expect("sh");
    // Custos's Drop kills the shell and the services; custos itself is stopped below.
    let _guard = Custos {
        child: shell,
        dir: dir.clone(),
        log: dir.join("head.out"),
        config: dir.join("custos.toml"),
    };
    wait_for("head's 3 lines", 10, || {
        fs::read_to_string(dir.join("head.out")).is_ok_and(|t| t.lines().count() >= 3)
    });
    let pid: i32 = {
        let mut p = 0;
        wait_for("custos's pid", 5, || {
            p = fs::read_to_string(dir.join("custos.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            p > 0
        });
        p
    };
    let head = fs::read_to_string(dir.join("head.out")).expect("head.out");
    assert!(
        head.starts_with("INFO  [custos] custos 0.1.0 starting with "),
        "{head}"
    );
    let status = |dir: &Path| fs::read_to_string(dir.join("status")).unwrap_or_default();
    wait_for("testd running", 10, || {
        assert!(
            alive(pid),
            "custos died after head exited: status {}",
            status(&dir)
        );
        fs::read_to_string(dir.join("testd.pid")).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    wait_for("first pet", 10, || pets(&dir) > 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alive(pid),
        "custos died after head exited: status {}",
        status(&dir)
    );
    assert_loop_unaffected(&dir, "custos | head -n 3");
    kill(pid, libc::SIGTERM);
    wait_for("custos's exit status", 10, || !status(&dir).is_empty());
    assert_eq!(status(&dir).trim(), "0", "custos's exit status");
}

#[test]
fn the_client_exits_quietly_when_its_reader_goes() {
    let dir = tempdir("stall-client");
    let c = Custos::start(&dir, &testd_config(&dir, ""));
    c.wait_log("control: listening on", 10);
    c.wait_log("testd: running as pid", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    // `custos events --follow | head -n 1`: read one line, then close the pipe.
    let mut client = custos_command()
        .arg("--socket")
        .arg(dir.join("custos.sock"))
        .args(["events", "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    let mut first = String::new();
    BufReader::new(client.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert!(!first.is_empty());
    // The next event is written to a pipe without a reader.
    kill(pid, libc::SIGKILL);
    let status = wait_exit(&mut client, 10);
    let mut err = String::new();
    let _ = client
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert_eq!(status, Some(0), "client status; stderr:\n{err}");
    assert!(err.is_empty(), "client stderr:\n{err}");
}

#[test]
fn check_and_help_to_a_closed_stdout_exit_quietly() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/board/rootfs/etc/custos.toml");
    for args in [&["check", "-c", cfg][..], &["--help"][..]] {
        let (r, w) = pipe();
        drop(r);
        let out = custos_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .output()
            .expect("custos");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: stderr:\n{err}");
        assert!(err.is_empty(), "{args:?}: stderr:\n{err}");
    }
}

fn wait_exit(child: &mut Child, secs: u64) -> Option<i32> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code().or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                st.signal().map(|s| 128 + s)
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_console_stopped_with_xoff_costs_no_pet_and_resumes_with_a_note() {
    let dir = setup("stall-xoff");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two fds; no name, default termios (IXON on) and window size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        eprintln!("SKIP: openpty failed: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: both fds are new and owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut c = spawn(&dir, Stdio::from(slave));
    wait_for("first pet", 10, || pets(&dir) > 0);
    wait_pid(&dir.join("testd.pid"), 10);
    // Ctrl-S on the console: the tty stops its output, and a blocking write to it waits.
    let send = |b: u8| {
        // SAFETY: write one byte from a valid buffer.
        let n = unsafe { libc::write(master.as_raw_fd(), [b].as_ptr().cast(), 1) };
        assert_eq!(n, 1, "write to the pty master");
    };
    send(0x13);
    std::thread::sleep(Duration::from_millis(300));
    assert_loop_unaffected(&dir, "console stopped with XOFF");
    let flags = fd_flags(c.child.id(), 2);
    assert_eq!(
        flags & libc::O_NONBLOCK as u32,
        0,
        "custos set O_NONBLOCK on its shared console (flags {flags:o})"
    );
    // Long enough for the buffer to overflow.
    std::thread::sleep(Duration::from_secs(2));
    // Ctrl-Q: the log resumes, with a note of what was lost.
    send(0x11);
    let drain = Drain::start(master);
    drain.wait(DROPPED, 10);
    drain.wait("INFO  [custos::supervisor] chatty0: ", 10);
    assert_eq!(c.stop(), Some(0));
}

//! The stall harness: the world outside custos tries to block its main loop, and the loop must
//! go on petting the watchdog and supervising (Rule 4).
//!
//! A regular file stands in for `[watchdog] device` (custos writes one byte 'k' per pet to a
//! path that is not a watchdog device); a thread samples its length every 10 ms and the test
//! takes the largest gap between two pets over the stall window. pet_every is 100 ms and the
//! timeout 3 s: a gap over pet_every + 250 ms fails. Each case also runs an ordinary second
//! service (the double-forking tests/fixtures/testd) and SIGKILLs its daemon during the stall:
//! custos must answer with a new start within 1 s.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// The promise: no gap between pets longer than pet_every (100 ms) + 250 ms.
const MAX_GAP: Duration = Duration::from_millis(100 + 250);
/// How long each stall is held (the watchdog timeout).
const WINDOW: Duration = Duration::from_secs(3);

/// The cases measure time: one at a time, so that they do not compete for the CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// custos with the watchdog stand-in, the ordinary `testd` service and the service (or other
/// config) under test in `stall`.
fn stand_config(dir: &Path, stall: &str) -> String {
    format!(
        "{}\n{}\n{}[service.restart]\nbackoff = \"100ms\"\n\n{stall}\n",
        supervisor_section(dir),
        watchdog_stand(dir, "3s", "100ms"),
        testd_service(dir, "5s")
    )
}

/// A service that never comes up: its start script exits 0 and custos keeps looking at its
/// pidfile (every pass, while the start is under way).
fn pidfile_service(dir: &Path) -> String {
    format!(
        r#"[[service]]
name = "stall"
pidfile = "{dir}/stall.pid"
start = ["/bin/true"]
start_timeout = "60s"
"#,
        dir = dir.display()
    )
}

/// SIGKILLs testd's daemon and measures how long custos takes to start it again (bounded:
/// `None` when it did not within 3 s).
fn kill_and_time_the_answer(c: &Custos) -> Option<Duration> {
    let pidfile = c.dir.join("testd.pid");
    let pid = wait_pid(&pidfile, 10);
    let needle = "testd: starting (attempt ";
    let before = c.log_text().matches(needle).count();
    let t0 = Instant::now();
    kill(pid, libc::SIGKILL);
    while t0.elapsed() < Duration::from_secs(3) {
        if c.log_text().matches(needle).count() > before {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// What one stall cost.
struct Outcome {
    gap: Duration,
    answer: Option<Duration>,
    pets: usize,
}

impl Outcome {
    fn assert_ok(&self, c: &Custos, what: &str) {
        let ok_gap = self.gap <= MAX_GAP;
        let ok_answer = self.answer.is_some_and(|a| a <= restart_bound());
        eprintln!(
            "{what}: largest pet gap {:?} ({} pets seen), SIGKILL answered in {:?}",
            self.gap, self.pets, self.answer
        );
        assert!(
            ok_gap && ok_answer,
            "{what}: largest pet gap {:?} (max {MAX_GAP:?}); testd's SIGKILL answered by a start in {:?} (max {:?}). Log:\n{}",
            self.gap,
            self.answer,
            restart_bound(),
            tail(&c.log_text(), 40)
        );
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Starts custos on `stall`, waits until it pets and supervises testd, runs `trigger`, then
/// holds the stall for WINDOW (SIGKILLing testd's daemon 0.5 s into it).
fn run_stall(
    dir: &Path,
    stall: &str,
    trigger: impl FnOnce(&Custos),
) -> (Custos, PetSampler, Outcome) {
    let dev = dir.join("wd");
    fs::write(&dev, "").expect("stand-in");
    let c = Custos::start(dir, &stand_config(dir, stall));
    c.wait_log("watchdog: first keepalive", 10);
    c.wait_log("testd: running as pid", 10);
    let mon = PetSampler::start(&dev);
    std::thread::sleep(Duration::from_millis(300));
    let from = Instant::now();
    trigger(&c);
    std::thread::sleep(Duration::from_millis(500));
    let answer = kill_and_time_the_answer(&c);
    let to = from + WINDOW;
    if let Some(rest) = to.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    let out = Outcome {
        gap: mon.max_gap(from, to),
        answer,
        pets: mon.pets(),
    };
    (c, mon, out)
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("path")
}

fn mkfifo(p: &Path) {
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(cstr(p).as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", p.display());
}

#[test]
fn a_fifo_pidfile_is_an_error_not_a_stall() {
    let _serial = serial();
    let dir = tempdir("stall-fifo-pidfile");
    let pidfile = dir.join("stall.pid");
    let (c, _mon, out) = run_stall(&dir, &pidfile_service(&dir), |_| mkfifo(&pidfile));
    out.assert_ok(&c, "FIFO pidfile");
    let text = c.log_text();
    let err = format!(
        "stall: pidfile {}: is a FIFO, not a regular file: not read",
        pidfile.display()
    );
    assert_eq!(text.matches(&err).count(), 1, "logged once:\n{text}");
    let status = c.ctl(&["status"]).all();
    assert!(status.contains("is a FIFO, not a regular file"), "{status}");
}

/// A pseudo-terminal's slave: (master fd, slave path). The master stays open, so a read of the
/// slave blocks.
fn open_pty() -> (i32, PathBuf) {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on the fd just opened, into a valid buffer.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()),
            0,
            "ptsname"
        );
        let name = std::ffi::CStr::from_ptr(buf.as_ptr());
        (m, PathBuf::from(name.to_string_lossy().into_owned()))
    }
}

#[test]
fn a_pidfile_symlinked_to_a_pty_is_not_followed() {
    let _serial = serial();
    let dir = tempdir("stall-pty-pidfile");
    let pidfile = dir.join("stall.pid");
    let (master, slave) = open_pty();
    let (c, _mon, out) = run_stall(&dir, &pidfile_service(&dir), |_| {
        std::os::unix::fs::symlink(&slave, &pidfile).expect("symlink")
    });
    out.assert_ok(&c, "pidfile symlink to a pty");
    let text = c.log_text();
    let err = format!(
        "stall: pidfile {}: is a symbolic link, not a regular file: not followed",
        pidfile.display()
    );
    assert_eq!(text.matches(&err).count(), 1, "logged once:\n{text}");
    // SAFETY: closing the master fd this test opened.
    unsafe { libc::close(master) };
}

/// Events inotify saw on a watched file (non-blocking read).
fn inotify_events(fd: i32) -> Vec<u32> {
    let mut buf = [0u8; 4096];
    // SAFETY: read into a valid buffer of its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    let mut out = Vec::new();
    let mut off = 0usize;
    let head = std::mem::size_of::<libc::inotify_event>();
    while n > 0 && off + head <= n as usize {
        // SAFETY: the kernel wrote whole inotify_event records; read_unaligned copies one.
        let ev: libc::inotify_event =
            unsafe { std::ptr::read_unaligned(buf[off..].as_ptr() as *const libc::inotify_event) };
        out.push(ev.mask);
        off += head + ev.len as usize;
    }
    out
}

#[test]
fn a_pidfile_symlinked_to_a_watchdog_never_opens_it() {
    let _serial = serial();
    let dir = tempdir("stall-wd-pidfile");
    let pidfile = dir.join("stall.pid");
    // Stands for /dev/watchdog on a board where custos has no [watchdog]: any open of the real
    // device arms it (and a close without the magic 'V' leaves it armed), so it must never be
    // opened at all, for reading or writing.
    let other = dir.join("other-watchdog");
    fs::write(&other, "").expect("file");
    let mtime = fs::metadata(&other)
        .expect("meta")
        .modified()
        .expect("mtime");
    // SAFETY: inotify on a valid path; the fd is ours.
    let ino = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(ino >= 0, "inotify_init1");
    let mask = libc::IN_OPEN | libc::IN_ACCESS | libc::IN_MODIFY | libc::IN_CLOSE_WRITE;
    // SAFETY: a valid fd and NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(ino, cstr(&other).as_ptr(), mask) };
    assert!(wd >= 0, "inotify_add_watch");
    let (c, _mon, out) = run_stall(&dir, &pidfile_service(&dir), |_| {
        std::os::unix::fs::symlink(&other, &pidfile).expect("symlink")
    });
    let events = inotify_events(ino);
    // SAFETY: closing our inotify fd.
    unsafe { libc::close(ino) };
    out.assert_ok(&c, "pidfile symlink to a watchdog");
    let opens = events.iter().filter(|&&m| m & libc::IN_OPEN != 0).count();
    assert!(
        events.is_empty(),
        "the file behind the symlink was touched: {} event(s), {opens} open(s): {events:x?}",
        events.len()
    );
    assert_eq!(fs::read(&other).expect("read"), b"", "content changed");
    assert_eq!(
        fs::metadata(&other)
            .expect("meta")
            .modified()
            .expect("mtime"),
        mtime,
        "mtime changed"
    );
    let text = c.log_text();
    let err = format!(
        "stall: pidfile {}: is a symbolic link, not a regular file: not followed",
        pidfile.display()
    );
    assert_eq!(text.matches(&err).count(), 1, "logged once:\n{text}");
}

#[test]
fn a_fifo_config_at_reload_is_rejected_and_the_running_config_stays() {
    let _serial = serial();
    let dir = tempdir("stall-fifo-config");
    let (c, _mon, out) = run_stall(&dir, "", |c| {
        fs::remove_file(&c.config).expect("rm config");
        mkfifo(&c.config);
        c.signal(libc::SIGHUP);
    });
    out.assert_ok(&c, "FIFO config at reload");
    let text = c.log_text();
    assert!(
        text.contains(&format!(
            "{}: cannot read: is a FIFO, not a regular file",
            c.config.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("reload rejected: the running config stays in force"),
        "{text}"
    );
}

/// `n` clients that connect to `sock` and close at once, in a tight loop, until `end`.
fn flood_threads(sock: &Path, n: usize, end: Instant) -> Vec<JoinHandle<u64>> {
    (0..n)
        .map(|_| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || {
                let mut count = 0u64;
                while Instant::now() < end {
                    if UnixStream::connect(&sock).is_ok() {
                        count += 1;
                    }
                }
                count
            })
        })
        .collect()
}

/// A process that runs as `uid` and floods `sock` like `flood_threads` for `secs` seconds.
/// Forked without exec: the child makes only async-signal-safe syscalls, then _exit.
// time_t is i32 on armv7 musl, i64 elsewhere.
#[allow(clippy::useless_conversion)]
fn flood_process(sock: &Path, uid: u32, secs: i64) -> i32 {
    let path = sock.as_os_str().as_encoded_bytes();
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    assert!(path.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: fork; the child calls only async-signal-safe functions and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain syscalls on values prepared before the fork.
        unsafe {
            if libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                libc::_exit(2);
            }
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            let end = i64::from(now.tv_sec) + secs;
            while i64::from(now.tv_sec) < end {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                if fd >= 0 {
                    libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len);
                    libc::close(fd);
                }
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            }
            libc::_exit(0);
        }
    }
    pid
}

#[test]
fn an_accept_flood_is_served_in_bounded_bites() {
    let _serial = serial();
    let dir = tempdir("stall-accept-flood");
    let flood = Duration::from_secs(10);
    let dev = dir.join("wd");
    fs::write(&dev, "").expect("stand-in");
    let c = Custos::start(&dir, &stand_config(&dir, ""));
    c.wait_log("watchdog: first keepalive", 10);
    c.wait_log("testd: running as pid", 10);
    c.wait_log("control: listening on", 10);
    let sock = dir.join("custos.sock");
    // Two of the four clients are refused peers when this runs as root: the socket made
    // world-writable by mistake lets anyone connect, and custos must refuse them without a
    // log line per connection.
    // SAFETY: getuid has no failure mode.
    let root = unsafe { libc::getuid() } == 0;
    let mut procs = Vec::new();
    let mon = PetSampler::start(&dev);
    std::thread::sleep(Duration::from_millis(300));
    let from = Instant::now();
    let end = from + flood;
    let threads = if root {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod");
        procs.push(flood_process(&sock, 65534, flood.as_secs() as i64));
        procs.push(flood_process(&sock, 65534, flood.as_secs() as i64));
        flood_threads(&sock, 2, end)
    } else {
        eprintln!("SKIP part: not root: no refused peers, all 4 clients are allowed");
        flood_threads(&sock, 4, end)
    };
    std::thread::sleep(Duration::from_secs(4));
    let answer = kill_and_time_the_answer(&c);
    let connects: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    for p in procs {
        let mut st = 0;
        // SAFETY: waiting for our own forked child.
        unsafe { libc::waitpid(p, &mut st, 0) };
    }
    let out = Outcome {
        gap: mon.max_gap(from, end),
        answer,
        pets: mon.pets(),
    };
    eprintln!("accept flood: {connects} connections by the allowed clients");
    out.assert_ok(&c, "accept flood");
    if root {
        // The refusals not logged one by one are counted, and the count said.
        c.wait_log("more connection(s) within 10s (not logged one by one)", 5);
        let text = c.log_text();
        let refusals = text
            .lines()
            .filter(|l| l.contains("control: refused"))
            .count();
        assert!(
            (1..=6).contains(&refusals),
            "{refusals} refusal lines for a 10 s flood:\n{}",
            tail(&text, 20)
        );
    }
}

#[test]
fn a_listener_with_a_full_backlog_at_the_socket_path_does_not_block_start_up() {
    let _serial = serial();
    let dir = tempdir("stall-busy-socket");
    let sock = dir.join("custos.sock");
    // Someone else listens at the path and never accepts: a blocking connect to it (the probe
    // for a stale socket) would wait for a free slot in its backlog forever.
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let mut queued = Vec::new();
    for _ in 0..10_000 {
        let s = socket2_nonblocking_connect(&sock);
        match s {
            Some(fd) => queued.push(fd),
            None => break,
        }
    }
    assert!(queued.len() < 10_000, "the backlog never filled");
    let (c, _mon, out) = run_stall(&dir, "", |_| {});
    out.assert_ok(&c, "busy socket path at bind");
    c.wait_log(
        &format!(
            "control: cannot listen on {}: another process is listening there",
            sock.display()
        ),
        1,
    );
    for fd in queued {
        // SAFETY: closing fds this test opened.
        unsafe { libc::close(fd) };
    }
    drop(listener);
}

/// A non-blocking connect to a UNIX stream socket; `None` when it would block (the
/// listener's backlog is full).
fn socket2_nonblocking_connect(sock: &Path) -> Option<i32> {
    let path = sock.as_os_str().as_encoded_bytes();
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: socket and connect with a valid address; the fd is returned to the caller.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0, "socket");
        if libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len) == 0 {
            Some(fd)
        } else {
            libc::close(fd);
            None
        }
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is [0]; utime and stime are fields 14 and 15 of the line.
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    num(11) + num(12)
}

/// A tracer that seizes `pid` and then never waits for it: a zombie of `pid` is then visible
/// to nobody else.
fn seize(pid: i32) -> Option<Child> {
    let script = [
        "import ctypes, sys, time",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "if libc.ptrace(0x4206, int(sys.argv[1]), 0, 0) != 0:",
        "    print('seize failed, errno', ctypes.get_errno(), flush=True)",
        "    sys.exit(1)",
        "print('seized', flush=True)",
        "time.sleep(60)",
    ]
    .join("\n");
    let mut child = Command::new("python3")
        .args(["-c", &script, &pid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(child.stdout.take()?);
    let _ = r.read_line(&mut line);
    if line.trim() == "seized" {
        Some(child)
    } else {
        eprintln!("tracer: {line}");
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

#[test]
fn a_traced_child_that_dies_does_not_make_the_loop_spin() {
    let _serial = serial();
    if emulated() {
        eprintln!(
            "note: under qemu-user custos is no subreaper, so the traced daemon is not its child \
             and this case cannot spin there; it still checks that the death is reported"
        );
    }
    let dir = tempdir("stall-traced");
    let sub = dir.join("t");
    fs::create_dir_all(&sub).expect("dir");
    let stall = format!(
        r#"[[service]]
name = "stall"
pidfile = "{sub}/testd.pid"
start = ["/bin/sh", "{fx}/testd", "start", "{sub}"]
start_timeout = "5s"
[service.restart]
backoff = "100ms"
"#,
        sub = sub.display(),
        fx = FIXTURES
    );
    let tracer: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    let traced = Arc::new(Mutex::new(0i32));
    let cpu0 = Arc::new(Mutex::new(0u64));
    let (t2, p2, c2) = (tracer.clone(), traced.clone(), cpu0.clone());
    let (c, _mon, out) = run_stall(&dir, &stall, move |c| {
        c.wait_log("stall: running as pid", 10);
        let pid = wait_pid(&sub.join("testd.pid"), 10);
        // The daemon, traced by a debugger that does not collect it when it dies: its zombie
        // is hidden from custos's waitid until the tracer lets go.
        let Some(t) = seize(pid) else {
            return;
        };
        *t2.lock().expect("lock") = Some(t);
        *p2.lock().expect("lock") = pid;
        *c2.lock().expect("lock") = cpu_ticks(c.child.id());
        kill(pid, libc::SIGKILL);
    });
    let pid = *traced.lock().expect("lock");
    let ticks = cpu_ticks(c.child.id()).saturating_sub(*cpu0.lock().expect("lock"));
    // Read before the tracer lets go: the death must be reported while the zombie is held.
    let text = c.log_text();
    if let Some(mut t) = tracer.lock().expect("lock").take() {
        let _ = t.kill();
        let _ = t.wait();
    }
    let cleanup = || {
        if let Ok(starts) = fs::read_to_string(dir.join("t/starts")) {
            for p in starts.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                kill(p, libc::SIGKILL);
            }
        }
    };
    if pid == 0 {
        cleanup();
        eprintln!("SKIP: cannot PTRACE_SEIZE here (no python3 or ptrace not permitted)");
        return;
    }
    // SAFETY: sysconf has no failure mode that matters here.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu = Duration::from_millis(ticks * 1000 / hz);
    eprintln!("traced child: custos used {cpu:?} of CPU over the {WINDOW:?} window");
    cleanup();
    out.assert_ok(&c, "traced child");
    assert!(
        cpu < WINDOW / 4,
        "custos spun: {cpu:?} of CPU in {WINDOW:?}. Log:\n{}",
        tail(&text, 20)
    );
    assert!(
        text.contains(&format!("stall: died: killed by SIGKILL (pid {pid}, up"))
            || (emulated()
                && text.contains(&format!(
                    "stall: died: cause unknown (not our child) (pid {pid}"
                ))),
        "the traced daemon's death was not reported:\n{}",
        tail(&text, 20)
    );
}

#[test]
fn a_removed_service_whose_daemon_goes_on_writing_does_not_make_the_loop_spin() {
    let _serial = serial();
    let dir = tempdir("stall-chatty");
    // The daemon keeps the output pipe its start script gave it and writes to it every 10 ms.
    let chatty = format!(
        r#"[[service]]
name = "chatty"
pidfile = "{dir}/chatty.pid"
start = ["/bin/sh", "-c", "(while :; do echo chatter; sleep 0.01; done) & echo $! > {dir}/chatty.pid"]
stop_timeout = "1s"
"#,
        dir = dir.display()
    );
    let c = Custos::start(&dir, &format!("{}\n{chatty}", supervisor_section(&dir)));
    let pid = c.wait_running("chatty", 10);
    c.wait_log("chatty: | chatter", 10);
    // A reload drops the service: custos stops reading its pipe and the output keeper drains
    // it, while the daemon (not stopped: a removed service is left running) goes on writing.
    fs::write(&c.config, supervisor_section(&dir)).expect("config");
    c.signal(libc::SIGHUP);
    c.wait_log("reload", 10);
    std::thread::sleep(Duration::from_millis(500));
    let (t0, w0) = (cpu_ticks(c.child.id()), wakeups(c.child.id()));
    std::thread::sleep(WINDOW);
    let ticks = cpu_ticks(c.child.id()).saturating_sub(t0);
    let woke = wakeups(c.child.id()).saturating_sub(w0);
    kill(pid, libc::SIGKILL);
    // SAFETY: sysconf has no failure mode that matters here.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu = Duration::from_millis(ticks * 1000 / hz);
    eprintln!(
        "chatty removed service: custos used {cpu:?} of CPU and woke {woke} times over {WINDOW:?}"
    );
    // The harness's interval is 100 ms: 30 ticks in the window. A pipe custos no longer reads
    // must not wake it each time the daemon writes (300 times).
    assert!(
        cpu < WINDOW / 4 && woke <= 60,
        "custos spun: {cpu:?} of CPU, {woke} wake-ups in {WINDOW:?}. Log:\n{}",
        tail(&c.log_text(), 20)
    );
}

/// Voluntary context switches of the main thread of `pid`: one per wait in its poll.
fn wakeups(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

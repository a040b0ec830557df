//! `[supervisor] log = "syslog"`: a `log::Log` that sends each message as one datagram to the
//! local syslog daemon's socket, /dev/log (busybox syslogd, rsyslog, syslog-ng, sysklogd).
//!
//! Wire format, the traditional BSD one (RFC 3164 §4.1, as glibc's and musl's `syslog()` send it
//! minus the timestamp): `<PRI>custos[PID]: message`, PRI = facility daemon (3) × 8 + severity,
//! no trailing newline or NUL. Error → 3 (err), warn → 4 (warning), info → 6 (info), debug and
//! trace → 7 (debug). The message is the same words as on stderr; the level is in PRI only.
//!
//! No timestamp, on purpose. busybox syslogd takes a `Mmm dd hh:mm:ss ` prefix when the 16 bytes
//! look like one and otherwise stamps the message itself (`time()` + `ctime()`, local time);
//! rsyslog, syslog-ng and sysklogd likewise use the time of reception when the message has none.
//! A stamp from custos could only be UTC (no tz database in a static binary), while every other
//! program's lines on the board carry local time: left out, the daemon stamps all lines alike.
//!
//! Bounds: a message is cut at `MAX_MESSAGE` bytes (at a char boundary). busybox syslogd reads
//! at most CONFIG_FEATURE_SYSLOGD_READ_BUFFER_SIZE bytes of a datagram (256 by default) and cuts
//! the rest itself; rsyslog takes 8 KiB.
//!
//! Never blocks and never panics: connect(2) on a datagram socket only names the peer (it does
//! not wait for it), and the socket is non-blocking from then on; a full socket buffer drops the
//! message and counts it, and the count goes out in a line of its own before the next message.
//! When /dev/log is missing or refuses (syslogd not running, or restarted), the line goes to
//! stderr, through the same never-blocking sink as the stderr logger (src/logger.rs: a stalled
//! or closed stderr drops lines and says so later). custos reconnects at once after a refusal
//! (a restarted syslogd binds a new socket) and otherwise tries again at most once every
//! `RETRY`.

use std::fmt::{self, Write as _};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::clock::boottime;
use crate::clock::Mono;
use crate::limits::LOG_BUFFER;
use crate::logger::{self, Sink};

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Bytes of one message (after the `<PRI>custos[PID]: ` header); the rest is cut.
pub const MAX_MESSAGE: usize = 1024;
/// While syslog is away, a new connection is tried at most this often.
pub const RETRY: Duration = Duration::from_secs(5);
/// The program name in each line.
pub const IDENT: &str = "custos";
/// LOG_DAEMON.
pub const FACILITY_DAEMON: u8 = 3;

/// "<191>custos[4194304]: " is 22 bytes.
const MAX_HEADER: usize = 32;

/// The syslog severity of a log level.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The PRI value of a log level: facility daemon.
pub fn pri(level: Level) -> u8 {
    FACILITY_DAEMON * 8 + severity(level)
}

/// A logger to a syslog socket, with stderr as the fallback.
pub struct SyslogLogger {
    level: LevelFilter,
    state: Mutex<State>,
    /// Where lines go while syslog is away.
    stderr: &'static Mutex<Sink<LOG_BUFFER>>,
}

struct State {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    /// No connection is tried before this time (supervisor clock).
    next_try: Mono,
    retry: Duration,
    /// Messages lost to a full socket buffer, not yet reported.
    dropped: u64,
    /// Messages written to stderr since syslog went away, not yet reported.
    to_stderr: u64,
    /// Why syslog is away: said once on stderr, when the first line falls back.
    away: Option<io::Error>,
    /// The fallback has been announced on stderr.
    announced: bool,
    pid: u32,
}

impl SyslogLogger {
    /// A logger to the datagram socket at `path` (`DEV_LOG` on a board). Connects now if it
    /// can; failing that, the first message says so on stderr.
    pub fn new(path: &Path, level: LevelFilter) -> SyslogLogger {
        let mut state = State {
            path: path.to_path_buf(),
            sock: None,
            next_try: Duration::ZERO,
            retry: RETRY,
            dropped: 0,
            to_stderr: 0,
            away: None,
            announced: false,
            pid: std::process::id(),
        };
        state.connect(boottime());
        SyslogLogger {
            level,
            state: Mutex::new(state),
            stderr: logger::stderr_sink(),
        }
    }

    /// Sends the fallback lines to `sink` instead of custos's stderr (tests).
    pub fn with_fallback(mut self, sink: &'static Mutex<Sink<LOG_BUFFER>>) -> SyslogLogger {
        self.stderr = sink;
        self
    }

    /// Sets the least time between two connection attempts (tests use zero); the next message
    /// tries at once.
    pub fn with_retry(self, retry: Duration) -> SyslogLogger {
        {
            let mut st = self.lock();
            st.retry = retry;
            st.next_try = Duration::ZERO;
        }
        self
    }

    /// Whether the socket is connected now.
    pub fn connected(&self) -> bool {
        self.lock().sock.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while logging cannot leave State inconsistent in a way that matters.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Installs a `SyslogLogger` on /dev/log as the logger of the `log` crate.
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    logger::prepare();
    log::set_boxed_logger(Box::new(SyslogLogger::new(Path::new(DEV_LOG), level)))?;
    log::set_max_level(level);
    Ok(())
}

/// A line being built in a fixed buffer: what does not fit is cut at a char boundary.
struct Line<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[self.len..self.len + end].copy_from_slice(&s.as_bytes()[..end]);
        self.len += end;
        Ok(())
    }
}

/// Formats `<PRI>custos[PID]: message` into `buf`; returns the length and where the message
/// starts.
fn format_line(
    buf: &mut [u8; MAX_HEADER + MAX_MESSAGE],
    level: Level,
    pid: u32,
    msg: fmt::Arguments<'_>,
) -> (usize, usize) {
    let mut line = Line {
        buf: &mut buf[..],
        len: 0,
    };
    let _ = write!(line, "<{}>{IDENT}[{pid}]: ", pri(level));
    let start = line.len;
    line.buf = &mut line.buf[..start + MAX_MESSAGE];
    let _ = line.write_fmt(msg);
    (line.len, start)
}

impl State {
    /// One connection attempt. On failure, none before `now + retry`.
    fn connect(&mut self, now: Mono) -> bool {
        let attempt = UnixDatagram::unbound().and_then(|s| {
            s.connect(&self.path)?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match attempt {
            Ok(s) => {
                self.sock = Some(s);
                true
            }
            Err(e) => {
                self.sock = None;
                self.next_try = now + self.retry;
                self.away = Some(e);
                false
            }
        }
    }

    /// Sends one datagram. `Ok(false)`: the socket buffer is full.
    fn send(&mut self, data: &[u8]) -> io::Result<bool> {
        let Some(sock) = &self.sock else {
            return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
        };
        match sock.send(data) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A line custos adds of its own (drops, fallback), at warning level.
    fn notice(&mut self, msg: fmt::Arguments<'_>) -> io::Result<bool> {
        let mut buf = [0u8; MAX_HEADER + MAX_MESSAGE];
        let (len, _) = format_line(&mut buf, Level::Warn, self.pid, msg);
        self.send(&buf[..len])
    }

    /// Sends a formatted line; `Err` when syslog is away (the caller falls back to stderr).
    fn deliver(&mut self, line: &[u8], now: Mono) -> io::Result<()> {
        if self.sock.is_none() && (now < self.next_try || !self.connect(now)) {
            return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
        }
        match self.try_send(line) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Refused or gone: a restarted syslogd has bound a new socket; reconnect once
                // now rather than after `retry`.
                self.away = Some(e);
                if self.connect(now) {
                    if let Err(e) = self.try_send(line) {
                        self.sock = None;
                        self.next_try = now + self.retry;
                        self.away = Some(e);
                        return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
                    }
                    return Ok(());
                }
                Err(io::Error::from_raw_os_error(libc::ENOTCONN))
            }
        }
    }

    /// Reports what was held back (stderr fallback, drops), then sends the line.
    fn try_send(&mut self, line: &[u8]) -> io::Result<()> {
        if self.to_stderr > 0 {
            let n = self.to_stderr;
            if !self.notice(format_args!(
                "syslog is back: {n} earlier message(s) went to stderr"
            ))? {
                self.dropped += 1;
                return Ok(());
            }
            self.to_stderr = 0;
            self.announced = false;
        }
        if self.dropped > 0 {
            let n = self.dropped;
            if !self.notice(format_args!(
                "{n} log message(s) dropped: the syslog socket was full"
            ))? {
                self.dropped += 1;
                return Ok(());
            }
            self.dropped = 0;
        }
        if !self.send(line)? {
            self.dropped += 1;
        }
        Ok(())
    }

    /// The line goes to stderr instead, through the same never-blocking sink as the stderr
    /// logger's lines (src/logger.rs), in the same format.
    fn fallback(&mut self, level: Level, msg: &[u8], sink: &Mutex<Sink<LOG_BUFFER>>) {
        let now = boottime();
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        if !self.announced {
            self.announced = true;
            let why = self
                .away
                .as_ref()
                .map_or_else(|| "not connected".to_string(), |e| e.to_string());
            sink.line(
                Level::Warn,
                IDENT,
                format_args!(
                    "syslog {} is unavailable ({why}): logging to stderr, retrying every {}s",
                    self.path.display(),
                    self.retry.as_secs()
                ),
                now,
            );
        }
        // `format_line` cuts at char boundaries: the message is UTF-8.
        let msg = match std::str::from_utf8(msg) {
            Ok(m) => m,
            Err(e) => std::str::from_utf8(&msg[..e.valid_up_to()]).unwrap_or_default(),
        };
        sink.line(level, IDENT, format_args!("{msg}"), now);
        self.to_stderr += 1;
    }
}

impl Log for SyslogLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut st = self.lock();
        let mut buf = [0u8; MAX_HEADER + MAX_MESSAGE];
        let (len, start) = format_line(&mut buf, record.level(), st.pid, *record.args());
        if st.deliver(&buf[..len], boottime()).is_err() {
            st.fallback(record.level(), &buf[start..len], self.stderr);
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("custos-syslog-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn log(l: &SyslogLogger, level: Level, msg: &str) {
        l.log(
            &Record::builder()
                .args(format_args!("{msg}"))
                .level(level)
                .target("custos::supervisor")
                .build(),
        );
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("recv");
        String::from_utf8(buf[..n].to_vec()).expect("utf8")
    }

    /// A fallback sink that keeps the test output clean.
    fn dev_null() -> &'static Mutex<Sink<LOG_BUFFER>> {
        use std::os::fd::IntoRawFd;
        let fd = fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null")
            .into_raw_fd();
        Box::leak(Box::new(Mutex::new(Sink::new(fd))))
    }

    fn listen(path: &Path) -> UnixDatagram {
        let s = UnixDatagram::bind(path).expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    #[test]
    fn each_level_goes_out_with_its_pri_and_the_same_words() {
        let dir = tmpdir("levels");
        let path = dir.join("log");
        let rx = listen(&path);
        let l = SyslogLogger::new(&path, LevelFilter::Info);
        assert!(l.connected());
        let pid = std::process::id();
        log(&l, Level::Error, "sshd: cannot run the start script");
        assert_eq!(
            recv(&rx),
            format!("<27>custos[{pid}]: sshd: cannot run the start script")
        );
        log(
            &l,
            Level::Warn,
            "sshd: died: killed by SIGKILL (pid 123, up 5s)",
        );
        assert_eq!(
            recv(&rx),
            format!("<28>custos[{pid}]: sshd: died: killed by SIGKILL (pid 123, up 5s)")
        );
        log(&l, Level::Info, "custos 0.1.0 starting");
        assert_eq!(
            recv(&rx),
            format!("<30>custos[{pid}]: custos 0.1.0 starting")
        );
        log(&l, Level::Debug, "not at info");
        rx.set_nonblocking(true).expect("nb");
        assert!(
            rx.recv(&mut [0u8; 64]).is_err(),
            "debug is filtered at info"
        );
        rx.set_nonblocking(false).expect("b");

        let l = SyslogLogger::new(&path, LevelFilter::Trace);
        log(&l, Level::Debug, "d");
        assert_eq!(recv(&rx), format!("<31>custos[{pid}]: d"));
        log(&l, Level::Trace, "t");
        assert_eq!(recv(&rx), format!("<31>custos[{pid}]: t"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let dir = tmpdir("long");
        let path = dir.join("log");
        let rx = listen(&path);
        let l = SyslogLogger::new(&path, LevelFilter::Info);
        let msg = format!("{}é and more", "a".repeat(MAX_MESSAGE - 1));
        log(&l, Level::Info, &msg);
        let got = recv(&rx);
        let body = got.split_once(": ").expect("header").1;
        assert_eq!(body.len(), MAX_MESSAGE - 1, "é does not fit whole");
        assert!(body.bytes().all(|b| b == b'a'));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_socket_lines_go_to_stderr_until_it_exists() {
        let dir = tmpdir("fallback");
        let path = dir.join("log");
        let l = SyslogLogger::new(&path, LevelFilter::Info)
            .with_retry(Duration::ZERO)
            .with_fallback(dev_null());
        assert!(!l.connected());
        log(&l, Level::Warn, "to stderr 1");
        log(&l, Level::Info, "to stderr 2");
        assert!(!l.connected());
        let rx = listen(&path);
        log(&l, Level::Info, "back");
        assert!(l.connected());
        let pid = std::process::id();
        assert_eq!(
            recv(&rx),
            format!("<28>custos[{pid}]: syslog is back: 2 earlier message(s) went to stderr")
        );
        assert_eq!(recv(&rx), format!("<30>custos[{pid}]: back"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn retries_wait_for_the_interval() {
        let dir = tmpdir("interval");
        let path = dir.join("log");
        let l = SyslogLogger::new(&path, LevelFilter::Info)
            .with_retry(Duration::from_secs(3600))
            .with_fallback(dev_null());
        log(&l, Level::Info, "to stderr");
        let _rx = listen(&path);
        log(&l, Level::Info, "still to stderr: no retry within the hour");
        assert!(!l.connected());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_restarted_syslogd_is_found_again_at_once() {
        let dir = tmpdir("restart");
        let path = dir.join("log");
        let rx = listen(&path);
        let l = SyslogLogger::new(&path, LevelFilter::Info);
        log(&l, Level::Info, "one");
        assert!(recv(&rx).ends_with(": one"));
        // syslogd restarts: the old socket closes, a new one is bound at the same path.
        drop(rx);
        fs::remove_file(&path).expect("unlink");
        let rx = listen(&path);
        log(&l, Level::Info, "two");
        assert!(l.connected());
        assert!(
            recv(&rx).ends_with(": two"),
            "reconnected without waiting RETRY"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_socket_drops_without_blocking_and_reports_the_count() {
        let dir = tmpdir("full");
        let path = dir.join("log");
        let rx = listen(&path);
        let l = SyslogLogger::new(&path, LevelFilter::Info);
        let total = 2000;
        for i in 0..total {
            log(&l, Level::Info, &format!("message {i}"));
        }
        rx.set_nonblocking(true).expect("nb");
        let mut got = 0;
        let mut buf = [0u8; 2048];
        while rx.recv(&mut buf).is_ok() {
            got += 1;
        }
        assert!(got < total, "the queue never filled: {got}");
        rx.set_nonblocking(false).expect("b");
        log(&l, Level::Error, "after");
        let pid = std::process::id();
        assert_eq!(
            recv(&rx),
            format!(
                "<28>custos[{pid}]: {} log message(s) dropped: the syslog socket was full",
                total - got
            )
        );
        assert_eq!(recv(&rx), format!("<27>custos[{pid}]: after"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_stderr_fallback_never_blocks_and_reports_what_it_dropped() {
        let dir = tmpdir("stalled");
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds, owned here.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = unsafe {
            use std::os::fd::{FromRawFd, OwnedFd};
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        use std::os::fd::AsRawFd;
        let sink: &'static Mutex<Sink<LOG_BUFFER>> =
            Box::leak(Box::new(Mutex::new(Sink::new(w.as_raw_fd()))));
        let l = SyslogLogger::new(&dir.join("no-syslogd"), LevelFilter::Info)
            .with_retry(Duration::from_secs(3600))
            .with_fallback(sink);
        // A pipe nobody reads fills up; the logger goes on without waiting.
        let t0 = std::time::Instant::now();
        for i in 0..20_000 {
            log(&l, Level::Info, &format!("message {i} {}", "x".repeat(100)));
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        let dropped = sink.lock().expect("lock").dropped();
        assert!(dropped > 0);
        // Drain the pipe: the buffer follows, then the note.
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        for _ in 0..100 {
            // SAFETY: read into a valid buffer; the pipe is non-empty or the sink flushes.
            let mut p = libc::pollfd {
                fd: r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut p, 1, 0) } > 0 {
                let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                got.extend_from_slice(&buf[..n.max(0) as usize]);
            }
            sink.lock().expect("lock").flush(boottime());
        }
        let text = String::from_utf8(got).expect("utf8");
        assert!(
            text.starts_with("WARN  [custos] syslog /tmp/custos-syslog-")
                && text.contains("is unavailable (")
                && text.contains("INFO  [custos] message 0 xxx"),
            "{}",
            &text[..text.len().min(400)]
        );
        assert!(
            text.ends_with(&format!(
                "WARN  [custos] {dropped} log line(s) dropped: stderr was not writable\n"
            )),
            "{}",
            &text[text.len().saturating_sub(400)..]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn pri_values() {
        assert_eq!(pri(Level::Error), 27);
        assert_eq!(pri(Level::Warn), 28);
        assert_eq!(pri(Level::Info), 30);
        assert_eq!(pri(Level::Debug), 31);
        assert_eq!(pri(Level::Trace), 31);
    }
}

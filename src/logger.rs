//! custos's own log lines on stderr: the logger for `log = "stderr"` (the default), and the
//! sink the syslog logger falls back to.
//!
//! Line format: `LEVEL [target] message\n`, the level padded to 5 columns, the target the
//! module (`INFO  [custos::supervisor] testd: running as pid 12`). These are the bytes
//! simple_logger printed, which custos used before.
//!
//! Never blocks and never panics, whatever stderr is:
//! - Each line goes into a buffer of fixed size (`limits::LOG_BUFFER`, allocated once at
//!   start-up, never grown), whole or not at all, and the buffer is written out at once
//!   with non-blocking writes. What the sink does not take waits in the buffer; the main
//!   loop polls `pending()` for POLLOUT and calls `flush()`.
//! - A line that does not fit is dropped and counted. From then on lines are dropped until
//!   the buffer has drained completely; the first line after that is the note
//!   `WARN  [custos] N log line(s) dropped: stderr was not writable`, so the gap is marked
//!   where it is.
//! - EPIPE, EIO and any other error: the lines waiting are dropped and counted the same way
//!   (the note goes out when a write succeeds again). A tty that was hung up (vhangup(2), as
//!   a getty on the console may do) gives EIO on every write of that open file for good: the
//!   tty is then opened again, at most every `REOPEN_RETRY`. SIGPIPE is ignored in custos (Rust's
//!   runtime ignores it and `supervisor::reset_signal_dispositions` keeps it so).
//!
//! How a write is made non-blocking without touching anyone else's file: O_NONBLOCK is a flag
//! of the open file description, which custos shares with whoever handed it stderr (init and
//! every program on the console; the shell and the other side of a pipe). Setting it on fd 2
//! would make their writes fail with EAGAIN. So, by the kind of file behind fd 2 (fstat):
//! - a tty or a pipe/FIFO: custos opens the same object again through /proc/self/fd/2 with
//!   O_WRONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC. That is a new file description of its own, so
//!   the flag is custos's alone, and a tty write gives EAGAIN under XOFF, a pipe write when
//!   the pipe is full. (A FIFO without a reader refuses the open with ENXIO: lines are then
//!   dropped, and the open is tried again at most every `REOPEN_RETRY`.)
//! - a socket (/proc cannot reopen one): send(2) with MSG_DONTWAIT|MSG_NOSIGNAL on fd 2
//!   itself: non-blocking per call, nothing changes on the shared description.
//! - a regular file or a block device: write(2) on fd 2; O_NONBLOCK means nothing for them
//!   (the page cache takes the write).
//! - another character device (/dev/null, /dev/kmsg): write(2) on fd 2; they do not block.
//! - if the reopen fails otherwise and fd 2 is already non-blocking, write(2) on fd 2;
//!   if fd 2 is closed, lines are dropped.

use std::fmt::{self, Write as _};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::clock::boottime;
use crate::clock::Mono;
use crate::limits::LOG_BUFFER;
use crate::sys;

/// The words of the note after lines were lost (after `N `).
pub const DROPPED: &str = "log line(s) dropped: stderr was not writable";
/// A FIFO without a reader, or a tty that was hung up, is opened again at most this often.
pub const REOPEN_RETRY: Duration = Duration::from_secs(1);
/// After poll said writable and the write still made no progress, the fd is left out of the
/// poll set this long (so that such a sink cannot make the loop spin).
const QUIET: Duration = Duration::from_millis(100);

/// Bytes waiting to be written, in a ring of fixed size: N bytes, allocated once on first use
/// and never grown. (Not an array in the static: one non-zero byte in the sink's initial
/// value would put the whole buffer into the binary's .data.)
pub struct Ring<const N: usize> {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Ring<N> {
    pub const fn new() -> Ring<N> {
        Ring {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }

    /// Allocates the buffer, once.
    fn alloc(&mut self) {
        if self.buf.len() != N {
            self.buf = vec![0; N];
            self.head = 0;
            self.len = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The oldest bytes, as one contiguous slice (the rest follows after `consume`).
    pub fn front(&self) -> &[u8] {
        let end = (self.head + self.len).min(N);
        self.buf.get(self.head..end).unwrap_or_default()
    }

    /// Forgets the oldest `n` bytes (written).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % N
        };
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Lines waiting (newlines in the buffer).
    pub fn lines(&self) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let end = self.head + self.len;
        let (a, b) = if end <= N {
            (&self.buf[self.head..end], &self.buf[..0])
        } else {
            (&self.buf[self.head..], &self.buf[..end - N])
        };
        a.iter().chain(b).filter(|&&c| c == b'\n').count() as u64
    }

    /// Appends `LEVEL [target] message\n`, whole or not at all: `false` when it does not fit.
    /// A line longer than the whole buffer is cut (at a char boundary) when the buffer is
    /// empty, so that it is not lost entirely.
    pub fn push_line(&mut self, level: Level, target: &str, msg: fmt::Arguments<'_>) -> bool {
        if N == 0 {
            return false;
        }
        self.alloc();
        let was_empty = self.is_empty();
        let mut w = Append {
            ring: self,
            n: 0,
            cut: false,
        };
        let _ = write!(w, "{level:<5} [{target}] {msg}");
        let (n, cut) = (w.n, w.cut);
        if cut && !was_empty {
            return false;
        }
        // `Append` keeps one byte free for the newline.
        let at = (self.head + self.len + n) % N;
        self.buf[at] = b'\n';
        self.len += n + 1;
        true
    }
}

/// Writes after the ring's last byte without committing: the caller commits the length.
struct Append<'a, const N: usize> {
    ring: &'a mut Ring<N>,
    n: usize,
    cut: bool,
}

impl<const N: usize> fmt::Write for Append<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N.saturating_sub(self.ring.len + self.n + 1);
        let mut take = s.len().min(room);
        if take < s.len() {
            self.cut = true;
            while !s.is_char_boundary(take) {
                take -= 1;
            }
        }
        let start = (self.ring.head + self.ring.len + self.n) % N;
        let first = take.min(N - start);
        let bytes = s.as_bytes();
        self.ring.buf[start..start + first].copy_from_slice(&bytes[..first]);
        self.ring.buf[..take - first].copy_from_slice(&bytes[first..take]);
        self.n += take;
        if self.cut {
            // Stop formatting: nothing after a cut may follow it.
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// How the sink's bytes reach the file behind the fd.
enum Out {
    /// Not looked at yet.
    Unknown,
    /// The fd is closed: lines are dropped.
    Closed,
    /// write(2) on the fd as it is (a regular file, a device that does not block, or a
    /// description that is non-blocking already).
    Direct(RawFd),
    /// send(2) with MSG_DONTWAIT on the fd (a socket).
    Socket(RawFd),
    /// custos's own non-blocking file description of the same tty or pipe.
    Own(OwnedFd),
    /// The reopen failed; tried again at this time.
    Retry(Mono),
}

/// Log lines on their way to one fd (stderr), never blocking: see the module doc.
pub struct Sink<const N: usize> {
    fd: RawFd,
    out: Out,
    ring: Ring<N>,
    /// Lines lost and not yet reported.
    dropped: u64,
    /// The note still in the ring (at its front): its count and its bytes not yet written.
    note: (u64, usize),
    quiet_until: Mono,
}

impl<const N: usize> Sink<N> {
    /// A sink for `fd`; it looks at what the fd is on first use.
    pub const fn new(fd: RawFd) -> Sink<N> {
        Sink {
            fd,
            out: Out::Unknown,
            ring: Ring::new(),
            dropped: 0,
            note: (0, 0),
            quiet_until: Duration::ZERO,
        }
    }

    /// Queues one line and writes what the fd takes now.
    pub fn line(&mut self, level: Level, target: &str, msg: fmt::Arguments<'_>, now: Mono) {
        self.open(now);
        // Room first: what the fd takes now leaves the buffer (and a pending note goes out).
        self.write_out(now);
        if !self.usable() || self.dropped > 0 {
            // Dropping until the buffer has drained; then the note goes first.
            self.dropped += 1;
            return;
        }
        if !self.ring.push_line(level, target, msg) {
            self.dropped += 1;
            return;
        }
        self.write_out(now);
    }

    /// Writes what the fd takes now (the poll loop calls this when the fd is writable).
    pub fn flush(&mut self, now: Mono) {
        self.open(now);
        if !self.write_out(now) && !self.ring.is_empty() {
            self.quiet_until = now + QUIET;
        }
    }

    /// The fd to poll for POLLOUT, while bytes wait.
    pub fn pending(&self, now: Mono) -> Option<RawFd> {
        if self.ring.is_empty() || now < self.quiet_until {
            return None;
        }
        match &self.out {
            Out::Direct(fd) | Out::Socket(fd) => Some(*fd),
            Out::Own(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    /// Lines lost and not yet reported (tests).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn usable(&self) -> bool {
        matches!(self.out, Out::Direct(_) | Out::Socket(_) | Out::Own(_))
    }

    fn open(&mut self, now: Mono) {
        match self.out {
            Out::Unknown => self.out = classify(self.fd, now),
            Out::Retry(at) if now >= at => self.out = reopen(self.fd, now),
            _ => return,
        }
        if self.usable() {
            self.ring.alloc();
        }
    }

    /// Writes until the fd would block or the buffer is empty; then the note, if lines were
    /// lost. Returns whether any byte went out.
    fn write_out(&mut self, now: Mono) -> bool {
        let mut progress = false;
        loop {
            if self.ring.is_empty() {
                if self.dropped == 0 || !self.usable() {
                    break;
                }
                let n = self.dropped;
                if !self
                    .ring
                    .push_line(Level::Warn, "custos", format_args!("{n} {DROPPED}"))
                {
                    break;
                }
                self.note = (n, self.ring.len());
                self.dropped = 0;
            }
            match self.write_some() {
                Ok(0) => {
                    self.fail();
                    break;
                }
                Ok(n) => {
                    self.ring.consume(n);
                    self.note.1 = self.note.1.saturating_sub(n);
                    if self.note.1 == 0 {
                        self.note.0 = 0;
                    }
                    progress = true;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted =>
                {
                    break
                }
                Err(e) => {
                    self.fail();
                    if e.raw_os_error() == Some(libc::EIO) && matches!(self.out, Out::Own(_)) {
                        // A hung-up tty: this open file is dead, a new one works.
                        self.out = Out::Retry(now + REOPEN_RETRY);
                    }
                    break;
                }
            }
        }
        progress
    }

    /// The fd failed (EPIPE, EIO, ...): what waits is lost; a note in the buffer gives its
    /// count back.
    fn fail(&mut self) {
        let mut lost = self.ring.lines();
        if self.note.0 > 0 {
            lost = lost.saturating_sub(1) + self.note.0;
        }
        self.dropped += lost;
        self.note = (0, 0);
        self.ring.clear();
    }

    fn write_some(&self) -> io::Result<usize> {
        let data = self.ring.front();
        // The fd is open: ours, or the process's stderr, which custos never closes.
        match &self.out {
            Out::Direct(fd) => sys::fd::write(*fd, data),
            Out::Own(fd) => sys::fd::write(fd.as_raw_fd(), data),
            Out::Socket(fd) => sys::fd::send_nowait(*fd, data),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTCONN)),
        }
    }
}

/// What the file behind `fd` is, and how to write to it without blocking.
fn classify(fd: RawFd, now: Mono) -> Out {
    let Ok(kind) = sys::fd::file_type(fd) else {
        return Out::Closed;
    };
    match kind {
        libc::S_IFSOCK => Out::Socket(fd),
        libc::S_IFIFO => reopen(fd, now),
        libc::S_IFCHR if sys::fd::isatty(fd) => reopen(fd, now),
        _ => Out::Direct(fd),
    }
}

/// A new non-blocking file description of the tty or pipe behind `fd`.
fn reopen(fd: RawFd, now: Mono) -> Out {
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{fd}"));
    match opened {
        // std opens with O_CLOEXEC: the scripts custos runs do not inherit it.
        Ok(f) => Out::Own(f.into()),
        Err(_) => match sys::fd::status_flags(fd) {
            Ok(fl) if fl & libc::O_NONBLOCK != 0 => Out::Direct(fd),
            Err(_) => Out::Closed,
            Ok(_) => Out::Retry(now + REOPEN_RETRY),
        },
    }
}

/// custos's stderr.
static STDERR: Mutex<Sink<LOG_BUFFER>> = Mutex::new(Sink::new(libc::STDERR_FILENO));

/// The sink of custos's stderr (the syslog logger's fallback).
pub fn stderr_sink() -> &'static Mutex<Sink<LOG_BUFFER>> {
    &STDERR
}

fn stderr() -> MutexGuard<'static, Sink<LOG_BUFFER>> {
    // With panic=abort nothing can poison it; if it were, the sink is still consistent.
    STDERR.lock().unwrap_or_else(|e| e.into_inner())
}

/// One line to stderr, never blocking (the syslog logger's fallback uses this too).
pub fn line(level: Level, target: &str, msg: fmt::Arguments<'_>) {
    stderr().line(level, target, msg, boottime());
}

/// stderr's fd to poll for POLLOUT while log bytes wait for it.
pub fn pending() -> Option<RawFd> {
    stderr().pending(boottime())
}

/// Writes waiting log bytes that stderr takes now (call when `pending()` is writable).
pub fn flush() {
    stderr().flush(boottime());
}

/// The `log` logger for `log = "stderr"`.
pub struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = if record.target().is_empty() {
            record.module_path().unwrap_or_default()
        } else {
            record.target()
        };
        line(record.level(), target, *record.args());
    }

    fn flush(&self) {
        flush();
    }
}

/// Looks at what stderr is now, before custos opens anything else (a closed fd 2 stays
/// "closed" even if a later open gets number 2).
pub fn prepare() {
    stderr().open(boottime());
}

/// Installs the stderr logger at `level` (what RUST_LOG says).
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    prepare();
    log::set_boxed_logger(Box::new(StderrLogger { level }))?;
    log::set_max_level(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn text<const N: usize>(r: &Ring<N>) -> String {
        let mut v = r.front().to_vec();
        let mut copy = Ring::<N> {
            buf: r.buf.clone(),
            head: r.head,
            len: r.len,
        };
        copy.consume(v.len());
        v.extend_from_slice(copy.front());
        String::from_utf8(v).expect("utf8")
    }

    #[test]
    fn lines_have_the_simple_logger_format() {
        let mut r = Ring::<256>::new();
        assert!(r.push_line(
            Level::Info,
            "custos::supervisor",
            format_args!("testd: running as pid {}", 12)
        ));
        assert!(r.push_line(Level::Warn, "custos", format_args!("w")));
        assert!(r.push_line(Level::Error, "x", format_args!("e")));
        assert!(r.push_line(Level::Debug, "x", format_args!("d")));
        assert!(r.push_line(Level::Trace, "x", format_args!("t")));
        assert_eq!(
            text(&r),
            "INFO  [custos::supervisor] testd: running as pid 12\nWARN  [custos] w\nERROR [x] e\nDEBUG [x] d\nTRACE [x] t\n"
        );
        assert_eq!(r.lines(), 5);
    }

    #[test]
    fn a_line_goes_in_whole_or_not_at_all_and_wraps() {
        let mut r = Ring::<32>::new();
        // "INFO  [t] " is 10 bytes; + 9 + newline = 20.
        assert!(r.push_line(Level::Info, "t", format_args!("123456789")));
        assert_eq!(r.len(), 20);
        assert!(!r.push_line(Level::Info, "t", format_args!("123456789")));
        assert_eq!(
            r.len(),
            20,
            "a line that does not fit leaves nothing behind"
        );
        r.consume(15);
        assert_eq!(r.len(), 5);
        assert!(r.push_line(Level::Info, "t", format_args!("abcdefghi")));
        assert_eq!(r.len(), 25);
        assert_eq!(text(&r), "6789\nINFO  [t] abcdefghi\n");
        assert_eq!(r.front(), &b"6789\nINFO  [t] abcdefghi\n"[..17]);
        assert_eq!(r.lines(), 2);
        r.consume(25);
        assert!(r.is_empty());
        assert_eq!(r.lines(), 0);
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_cut_at_a_char_boundary_when_empty() {
        let mut r = Ring::<16>::new();
        assert!(r.push_line(Level::Info, "t", format_args!("abcé€xyz")));
        // 15 bytes of text at most: "INFO  [t] abcé" is 15 bytes (é is 2).
        assert_eq!(text(&r), "INFO  [t] abcé\n");
        assert!(!r.push_line(Level::Info, "t", format_args!("no room")));
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: new fds owned here.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_all(fd: &OwnedFd) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd; read into a valid buffer.
            if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
                break;
            }
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        String::from_utf8(out).expect("utf8")
    }

    fn flags(fd: &OwnedFd) -> i32 {
        // SAFETY: F_GETFL on a valid fd.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) }
    }

    #[test]
    fn a_full_pipe_drops_lines_and_a_note_follows_once_it_drained() {
        let (r, w) = pipe();
        // SAFETY: shrink the pipe to one page (a failure keeps the default).
        unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        let mut s = Sink::<1024>::new(w.as_raw_fd());
        let now = Duration::from_secs(1);
        let mut i = 0;
        while s.dropped() == 0 {
            s.line(
                Level::Info,
                "t",
                format_args!("line {i:05} {}", "x".repeat(80)),
                now,
            );
            i += 1;
            assert!(i < 100_000, "never dropped");
        }
        assert_eq!(
            flags(&w) & libc::O_NONBLOCK,
            0,
            "the shared fd stays blocking"
        );
        assert!(s.pending(now).is_some());
        for _ in 0..5 {
            s.line(Level::Info, "t", format_args!("lost"), now);
        }
        assert_eq!(s.dropped(), 6);
        // Drain the pipe; the buffer goes out, then the note, then new lines.
        let mut got = String::new();
        while s.pending(now).is_some() {
            got.push_str(&read_all(&r));
            s.flush(now);
        }
        got.push_str(&read_all(&r));
        s.line(Level::Info, "t", format_args!("after"), now);
        got.push_str(&read_all(&r));
        let lines: Vec<&str> = got.lines().collect();
        // Lines 0..i-1 went in (line i-1 was the first dropped), then the note and `after`.
        assert_eq!(lines.len() as u64, i + 1, "{got}");
        for (k, l) in lines[..lines.len() - 2].iter().enumerate() {
            assert!(l.starts_with(&format!("INFO  [t] line {k:05} ")), "{l}");
        }
        assert_eq!(
            lines[lines.len() - 2],
            "WARN  [custos] 6 log line(s) dropped: stderr was not writable"
        );
        assert_eq!(lines[lines.len() - 1], "INFO  [t] after");
        assert!(!got.contains("lost"));
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn a_closed_pipe_counts_lines_and_never_fails() {
        let (r, w) = pipe();
        let mut s = Sink::<1024>::new(w.as_raw_fd());
        let now = Duration::from_secs(1);
        s.line(Level::Info, "t", format_args!("one"), now);
        assert_eq!(read_all(&r), "INFO  [t] one\n");
        drop(r);
        for _ in 0..3 {
            s.line(Level::Info, "t", format_args!("into EPIPE"), now);
        }
        assert_eq!(s.dropped(), 3);
        assert!(s.pending(now).is_none(), "nothing to poll for: no spin");
        s.flush(now);
        assert_eq!(s.dropped(), 3, "the note is not counted as a lost line");
    }

    #[test]
    fn a_fifo_without_a_reader_is_opened_again_later() {
        let dir = std::env::temp_dir().join(format!("custos-logger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo on a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A reader and a writer (the writer stands for custos's inherited stderr).
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("reader");
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("writer");
        drop(reader);
        let w: OwnedFd = writer.into();
        let mut s = Sink::<1024>::new(w.as_raw_fd());
        let t0 = Duration::from_secs(10);
        s.line(Level::Info, "t", format_args!("nobody reads"), t0);
        assert_eq!(s.dropped(), 1);
        let r: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("reader")
            .into();
        s.line(Level::Info, "t", format_args!("too early"), t0);
        assert_eq!(s.dropped(), 2);
        s.line(Level::Info, "t", format_args!("back"), t0 + REOPEN_RETRY);
        assert_eq!(
            read_all(&r),
            "WARN  [custos] 2 log line(s) dropped: stderr was not writable\nINFO  [t] back\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_hung_up_tty_is_opened_again() {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; default termios and size.
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
            eprintln!("SKIP: openpty: {}", io::Error::last_os_error());
            return;
        }
        // SAFETY: new fds owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Raw output: no \n -> \r\n.
        // SAFETY: tcgetattr/tcsetattr on a valid tty fd and termios.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave.as_raw_fd(), &mut t);
            t.c_oflag &= !libc::OPOST;
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        }
        let mut s = Sink::<1024>::new(slave.as_raw_fd());
        let t0 = Duration::from_secs(10);
        s.line(Level::Info, "t", format_args!("before"), t0);
        assert_eq!(read_all(&master), "INFO  [t] before\n");
        // SAFETY: TIOCVHANGUP takes no argument.
        if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCVHANGUP) } != 0 {
            eprintln!("SKIP: TIOCVHANGUP: {}", io::Error::last_os_error());
            return;
        }
        s.line(Level::Info, "t", format_args!("into EIO"), t0);
        s.line(Level::Info, "t", format_args!("not yet"), t0);
        assert_eq!(s.dropped(), 2);
        s.line(Level::Info, "t", format_args!("after"), t0 + REOPEN_RETRY);
        // The new open file has the tty's settings afresh (OPOST: \r\n).
        assert_eq!(
            read_all(&master).replace("\r\n", "\n"),
            "WARN  [custos] 2 log line(s) dropped: stderr was not writable\nINFO  [t] after\n"
        );
    }

    #[test]
    fn a_regular_file_is_written_as_it_is() {
        let dir = std::env::temp_dir().join(format!("custos-logger-f-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("log");
        let f: OwnedFd = std::fs::File::create(&path).expect("file").into();
        let mut s = Sink::<64>::new(f.as_raw_fd());
        let now = Duration::from_secs(1);
        s.line(Level::Info, "custos", format_args!("a"), now);
        s.line(Level::Error, "custos::x", format_args!("b"), now);
        assert!(s.pending(now).is_none());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "INFO  [custos] a\nERROR [custos::x] b\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

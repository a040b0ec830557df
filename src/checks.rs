//! Health checks. Each check is a small state machine driven by the one poll loop:
//! - `Tracker` (pure): consecutive failures, grace after a start, when to act;
//! - `evaluate_http` (pure): a strict, bounded reading of an HTTP/1.x reply;
//! - `NetProbe`: a non-blocking TCP connect (and HTTP exchange) on one socket, with a deadline;
//! - resource and heartbeat readings from /proc and the file system.
//!
//! Nothing here blocks: a probe is started, polled and finished by the supervisor.

use core::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::clock::{Dur, Mono};
use crate::config::{CheckConfig, Size};
use crate::core::Cause;
use crate::sys;

/// Bytes of HTTP headers custos reads; a reply whose headers do not end within them fails.
pub const MAX_HTTP_HEADERS: usize = 2048;
/// Bytes of HTTP body searched for `expect`; the rest of a longer body is not read.
pub const MAX_HTTP_BODY: usize = 4096;
const HTTP_BUF: usize = MAX_HTTP_HEADERS + MAX_HTTP_BODY;

/// Why a check failed. Fixed size: no allocation per failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    Timeout(Duration),
    Refused,
    Reset,
    Connect(i32),
    ClosedEarly {
        got: usize,
    },
    NotHttp,
    HeadersTooLong,
    Status {
        got: u16,
        want: u16,
    },
    ContentMismatch {
        searched: usize,
    },
    Memory {
        rss: u64,
        max: u64,
    },
    Cpu {
        percent: f64,
        max: f64,
        over: Duration,
    },
    Fds {
        count: u64,
        max: u64,
    },
    HeartbeatMissing,
    /// The heartbeat path is not a regular file (a FIFO, a device, a directory, ...).
    HeartbeatNotRegular(crate::files::Kind),
    /// The heartbeat file has not changed for `age` (on the boot clock, since custos saw it
    /// change or first looked at it).
    HeartbeatOld {
        age: Duration,
        max: Duration,
    },
    Program(Cause),
    ProgramSpawn(i32),
    ProcGone,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Failure::Timeout(d) => write!(f, "timeout after {}", Dur(d)),
            Failure::Refused => f.write_str("connection refused"),
            Failure::Reset => f.write_str("connection reset"),
            Failure::Connect(e) => write!(f, "connect failed: {}", io::Error::from_raw_os_error(e)),
            Failure::ClosedEarly { got: 0 } => f.write_str("connection closed without a reply"),
            Failure::ClosedEarly { got } => {
                write!(
                    f,
                    "connection closed after {got} bytes, before the reply was complete"
                )
            }
            Failure::NotHttp => f.write_str("not an HTTP reply"),
            Failure::HeadersTooLong => {
                write!(f, "reply headers longer than {MAX_HTTP_HEADERS} bytes")
            }
            Failure::Status { got, want } => write!(f, "status {got}, expected {want}"),
            Failure::ContentMismatch { searched } => {
                write!(
                    f,
                    "expected content not found in the first {searched} bytes of the body"
                )
            }
            Failure::Memory { rss, max } => {
                write!(f, "resident memory {} over {}", Size(rss), Size(max))
            }
            Failure::Cpu { percent, max, over } => {
                write!(f, "cpu {percent:.0}% over {max}% for {}", Dur(over))
            }
            Failure::Fds { count, max } => write!(f, "{count} open file descriptors, over {max}"),
            Failure::HeartbeatMissing => f.write_str("heartbeat file missing"),
            Failure::HeartbeatNotRegular(k) => {
                write!(f, "heartbeat file is {k}, not a regular file")
            }
            Failure::HeartbeatOld { age, max } => {
                write!(
                    f,
                    "heartbeat file unchanged for {}, over {}",
                    Dur(age),
                    Dur(max)
                )
            }
            Failure::Program(c) => write!(f, "program {c}"),
            Failure::ProgramSpawn(e) => {
                write!(
                    f,
                    "program could not be run: {}",
                    io::Error::from_raw_os_error(e)
                )
            }
            Failure::ProcGone => f.write_str("process gone"),
        }
    }
}

/// What the tracker says about one result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Passed, as before: nothing to log.
    Quiet,
    /// Passed after failures: log the recovery.
    Recovered { after: u32 },
    /// Failed, counted `n` of `of`: log it.
    Counted { n: u32, of: u32, failure: Failure },
    /// Failed within the grace after a start, before any pass: logged, not counted.
    InGrace { failure: Failure },
    /// Failed `n` times in a row: act.
    Act { n: u32, failure: Failure },
}

/// Consecutive failures and the grace after a start. Pure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracker {
    /// Consecutive failures since the last pass.
    pub failures: u32,
    /// Passed once since the process was pinned (ends the grace at once).
    pub passed: bool,
    pub grace_until: Mono,
}

impl Tracker {
    /// A fresh tracker for a process pinned at `now`.
    pub fn pinned(now: Mono, grace: Duration) -> Tracker {
        Tracker {
            failures: 0,
            passed: false,
            grace_until: now + grace,
        }
    }

    pub fn result(&mut self, cfg: &CheckConfig, r: Result<(), Failure>, now: Mono) -> Verdict {
        match r {
            Ok(()) => {
                self.passed = true;
                let after = core::mem::take(&mut self.failures);
                if after > 0 {
                    Verdict::Recovered { after }
                } else {
                    Verdict::Quiet
                }
            }
            Err(failure) => {
                if !self.passed && now < self.grace_until {
                    return Verdict::InGrace { failure };
                }
                self.failures = self.failures.saturating_add(1);
                // Count in rounds of `failures`: act at the end of each round, so a check whose
                // action is "log" reports every round, and the consecutive total stays known.
                let of = cfg.failures.max(1);
                let n = (self.failures - 1) % of + 1;
                if n == of {
                    Verdict::Act { n, failure }
                } else {
                    Verdict::Counted { n, of, failure }
                }
            }
        }
    }
}

/// Progress of an HTTP reply read so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Http {
    NeedMore,
    Pass,
    Fail(Failure),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads an HTTP/1.x reply strictly: status line `HTTP/1.x NNN ...`, headers ending in an empty
/// CRLF line within MAX_HTTP_HEADERS, then up to MAX_HTTP_BODY bytes of body searched for
/// `expect`. `eof` says the peer closed. Decides as early as it can.
pub fn evaluate_http(buf: &[u8], eof: bool, want: u16, expect: Option<&[u8]>) -> Http {
    const PREFIX: &[u8] = b"HTTP/1.";
    let head = &buf[..buf.len().min(PREFIX.len())];
    if head != &PREFIX[..head.len()] {
        return Http::Fail(Failure::NotHttp);
    }
    let Some(end) = find(&buf[..buf.len().min(MAX_HTTP_HEADERS)], b"\r\n\r\n") else {
        if buf.len() >= MAX_HTTP_HEADERS {
            return Http::Fail(Failure::HeadersTooLong);
        }
        return if eof {
            Http::Fail(Failure::ClosedEarly { got: buf.len() })
        } else {
            Http::NeedMore
        };
    };
    // "HTTP/1.x NNN": version digit, space, three digits, then space or CRLF.
    let line = &buf[..end];
    let ok_line = line.len() >= 12
        && line[7].is_ascii_digit()
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
        && (line.len() == 12 || line[12] == b' ' || line[12] == b'\r');
    if !ok_line {
        return Http::Fail(Failure::NotHttp);
    }
    let got = line[9..12]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if got != want {
        return Http::Fail(Failure::Status { got, want });
    }
    let Some(expect) = expect else {
        return Http::Pass;
    };
    let body = &buf[end + 4..];
    let body = &body[..body.len().min(MAX_HTTP_BODY)];
    if find(body, expect).is_some() {
        return Http::Pass;
    }
    if eof || body.len() >= MAX_HTTP_BODY {
        return Http::Fail(Failure::ContentMismatch {
            searched: body.len(),
        });
    }
    Http::NeedMore
}

/// A TCP connect, and for HTTP a request and a bounded reply, on one non-blocking socket.
pub struct NetProbe {
    sock: OwnedFd,
    pub deadline: Mono,
    connected: bool,
    /// The request to send once connected (HTTP only).
    http: Option<HttpExchange>,
}

struct HttpExchange {
    request: heapless::Vec<u8, 512>,
    sent: bool,
    buf: heapless::Vec<u8, HTTP_BUF>,
    want: u16,
    expect: Option<heapless::Vec<u8, 256>>,
}

/// The errno of a failed socket call (0 if it somehow has none).
fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn errno_failure(e: i32) -> Failure {
    match e {
        libc::ECONNREFUSED => Failure::Refused,
        libc::ECONNRESET | libc::EPIPE => Failure::Reset,
        e => Failure::Connect(e),
    }
}

impl NetProbe {
    /// Starts a non-blocking connect. For HTTP, `http` carries (path, status, expect).
    pub fn start(
        addr: &SocketAddr,
        http: Option<(&str, u16, Option<&str>)>,
        deadline: Mono,
    ) -> Result<NetProbe, Failure> {
        let sock = sys::net::tcp_socket(addr).map_err(|e| Failure::Connect(errno(&e)))?;
        let connected = match sys::net::connect(sock.as_fd(), addr) {
            Ok(()) => true,
            Err(e) if errno(&e) == libc::EINPROGRESS => false,
            Err(e) => return Err(errno_failure(errno(&e))),
        };
        let http = match http {
            None => None,
            Some((path, want, expect)) => {
                let mut request = heapless::Vec::new();
                let mut w = Writer(&mut request);
                let ok = fmt::write(
                    &mut w,
                    format_args!(
                        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: custos\r\nConnection: close\r\n\r\n",
                        HostHeader(addr)
                    ),
                );
                if ok.is_err() {
                    return Err(Failure::Connect(libc::E2BIG));
                }
                let expect =
                    expect.map(|e| heapless::Vec::from_slice(e.as_bytes()).unwrap_or_default());
                Some(HttpExchange {
                    request,
                    sent: false,
                    buf: heapless::Vec::new(),
                    want,
                    expect,
                })
            }
        };
        Ok(NetProbe {
            sock,
            deadline,
            connected,
            http,
        })
    }

    /// The poll events this probe waits for now.
    pub fn events(&self) -> i16 {
        match &self.http {
            _ if !self.connected => libc::POLLOUT,
            Some(h) if !h.sent => libc::POLLOUT,
            Some(_) => libc::POLLIN,
            None => libc::POLLOUT,
        }
    }

    /// Advances on readiness. `Some` when the probe is finished.
    pub fn ready(&mut self) -> Option<Result<(), Failure>> {
        let fd = self.sock.as_fd();
        if !self.connected {
            let err = match sys::net::so_error(fd) {
                Ok(err) => err,
                Err(e) => return Some(Err(Failure::Connect(errno(&e)))),
            };
            if err != 0 {
                return Some(Err(errno_failure(err)));
            }
            self.connected = true;
        }
        let Some(h) = &mut self.http else {
            return Some(Ok(()));
        };
        if !h.sent {
            let n = match sys::net::send(fd, &h.request) {
                Ok(n) => n,
                Err(e) if errno(&e) == libc::EAGAIN => return None,
                Err(e) => return Some(Err(errno_failure(errno(&e)))),
            };
            if n != h.request.len() {
                // A fresh socket takes a few hundred bytes at once; a short write means trouble.
                return Some(Err(Failure::Reset));
            }
            h.sent = true;
            return None;
        }
        let mut eof = false;
        loop {
            let room = h.buf.capacity() - h.buf.len();
            if room == 0 {
                break;
            }
            let mut chunk = [0u8; 1024];
            let want = room.min(chunk.len());
            let n = match sys::net::read(fd, &mut chunk[..want]) {
                Ok(n) => n,
                Err(e) if errno(&e) == libc::EAGAIN => break,
                Err(e) if errno(&e) == libc::EINTR => continue,
                Err(e) => return Some(Err(errno_failure(errno(&e)))),
            };
            if n == 0 {
                eof = true;
                break;
            }
            let _ = h.buf.extend_from_slice(&chunk[..n]);
        }
        let full = h.buf.len() == h.buf.capacity();
        match evaluate_http(&h.buf, eof || full, h.want, h.expect.as_deref()) {
            Http::NeedMore => None,
            Http::Pass => Some(Ok(())),
            Http::Fail(f) => Some(Err(f)),
        }
    }
}

impl AsFd for NetProbe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The Host header value: an IPv6 address goes in brackets.
struct HostHeader<'a>(&'a SocketAddr);

impl fmt::Display for HostHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SocketAddr::V4(a) => write!(f, "{}", a.ip()),
            SocketAddr::V6(a) => write!(f, "[{}]", a.ip()),
        }
    }
}

struct Writer<'a>(&'a mut heapless::Vec<u8, 512>);

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

/// The next multiple of `every` on the supervisor clock after `now`: checks with the same
/// period run in the same pass of the loop, however their services were started, so that 20
/// services cost one wake-up a period instead of 20 (measured: the idle CPU of custos with 20
/// HTTP checks).
pub fn aligned(now: Mono, every: Duration) -> Mono {
    // In u64 nanoseconds (584 years): a 128-bit division is a long routine on 32-bit ARM. A
    // time or period beyond that range puts the next multiple beyond it too: the end.
    let (Ok(now_ns), Ok(every_ns)) = (
        u64::try_from(now.as_nanos()),
        u64::try_from(every.as_nanos()),
    ) else {
        return Duration::from_nanos(u64::MAX);
    };
    let every_ns = every_ns.max(1);
    let next = (now_ns / every_ns)
        .checked_add(1)
        .and_then(|q| q.checked_mul(every_ns));
    Duration::from_nanos(next.unwrap_or(u64::MAX))
}

/// A check's work in progress.
pub enum InFlight {
    Idle,
    /// Boxed: its reply buffer (6 KiB) exists only while a probe is in flight.
    Net(Box<NetProbe>),
    /// A `program` check runs as this process group leader until the deadline.
    Program {
        pid: i32,
        deadline: Mono,
    },
}

/// One check's run-time state, reset each time its service's process is pinned.
pub struct CheckRt {
    pub tracker: Tracker,
    /// Failed runs since the check was set up (for the metrics).
    pub failed_total: u32,
    pub next_due: Mono,
    pub inflight: InFlight,
    /// Last CPU sample (time, utime+stime ticks) and since when usage has been over the limit.
    cpu_sample: Option<(Mono, u64)>,
    cpu_over_since: Option<Mono>,
    /// The heartbeat file as last seen, and since when (boot clock) it has looked so.
    beat: Option<(Stamp, Mono)>,
}

impl CheckRt {
    pub fn new() -> CheckRt {
        CheckRt {
            failed_total: 0,
            tracker: Tracker::pinned(Duration::ZERO, Duration::ZERO),
            next_due: Duration::ZERO,
            inflight: InFlight::Idle,
            cpu_sample: None,
            cpu_over_since: None,
            beat: None,
        }
    }

    /// A new process was pinned: start over, grace first, first probe now.
    pub fn reset(&mut self, cfg: &CheckConfig, now: Mono) {
        self.tracker = Tracker::pinned(now, cfg.grace);
        self.next_due = now;
        self.inflight = InFlight::Idle;
        self.cpu_sample = None;
        self.cpu_over_since = None;
        self.beat = None;
    }

    /// The deadline of the work in flight, or when the next probe is due.
    pub fn wake_at(&self) -> Mono {
        match &self.inflight {
            InFlight::Idle => self.next_due,
            InFlight::Net(p) => p.deadline,
            InFlight::Program { deadline, .. } => *deadline,
        }
    }

    /// Starts a probe of the process `pid`. Returns the result at once for the kinds that need
    /// no waiting; `spawn` runs a program check's argv and returns its PID.
    pub fn begin(
        &mut self,
        cfg: &CheckConfig,
        pid: i32,
        now: Mono,
        spawn: impl FnOnce(&crate::config::Argv) -> io::Result<i32>,
    ) -> Option<Result<(), Failure>> {
        use crate::config::CheckKind;
        self.next_due = aligned(now, cfg.every);
        let deadline = now + cfg.timeout;
        match &cfg.kind {
            CheckKind::Http {
                addr,
                path,
                status,
                expect,
            } => {
                match NetProbe::start(addr, Some((path, *status, expect.as_deref())), deadline) {
                    Ok(p) => self.inflight = InFlight::Net(Box::new(p)),
                    Err(f) => return Some(Err(f)),
                }
                None
            }
            CheckKind::Tcp { addr } => {
                match NetProbe::start(addr, None, deadline) {
                    Ok(p) => self.inflight = InFlight::Net(Box::new(p)),
                    Err(f) => return Some(Err(f)),
                }
                None
            }
            CheckKind::Program { argv } => match spawn(argv) {
                Ok(pid) => {
                    self.inflight = InFlight::Program { pid, deadline };
                    None
                }
                Err(e) => Some(Err(Failure::ProgramSpawn(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))),
            },
            CheckKind::Memory { max_bytes } => Some(match rss_bytes(pid) {
                None => Err(Failure::ProcGone),
                Some(rss) if rss > *max_bytes => Err(Failure::Memory {
                    rss,
                    max: *max_bytes,
                }),
                Some(_) => Ok(()),
            }),
            CheckKind::Fds { max } => Some(match fd_count(pid) {
                None => Err(Failure::ProcGone),
                Some(n) if n > *max => Err(Failure::Fds {
                    count: n,
                    max: *max,
                }),
                Some(_) => Ok(()),
            }),
            CheckKind::Heartbeat { path, max_age } => {
                let stamp = match heartbeat_meta(path) {
                    Ok(m) => Stamp::of(&m),
                    Err(f) => {
                        self.beat = None;
                        return Some(Err(f));
                    }
                };
                let age = self.beat_age(stamp, now);
                Some(if age > *max_age {
                    Err(Failure::HeartbeatOld { age, max: *max_age })
                } else {
                    Ok(())
                })
            }
            CheckKind::Cpu { max_percent, over } => {
                let Some(ticks) = cpu_ticks(pid) else {
                    return Some(Err(Failure::ProcGone));
                };
                let prev = self.cpu_sample.replace((now, ticks));
                let Some((t0, k0)) = prev else {
                    return Some(Ok(()));
                };
                let secs = now.saturating_sub(t0).as_secs_f64();
                if secs <= 0.0 {
                    return Some(Ok(()));
                }
                let used =
                    ticks.saturating_sub(k0) as f64 / crate::procs::ticks_per_second() as f64;
                let percent = used / secs * 100.0;
                if percent <= *max_percent {
                    self.cpu_over_since = None;
                    return Some(Ok(()));
                }
                let since = *self.cpu_over_since.get_or_insert(t0);
                if now.saturating_sub(since) >= *over {
                    Some(Err(Failure::Cpu {
                        percent,
                        max: *max_percent,
                        over: *over,
                    }))
                } else {
                    Some(Ok(()))
                }
            }
        }
    }
}

impl CheckRt {
    /// How long the heartbeat file has looked like `stamp`, on the boot clock. Any change of
    /// its timestamps, size or inode is a beat, whatever the dates say: the wall clock that
    /// wrote them may have been stepped either way. A file first looked at counts from now.
    pub fn beat_age(&mut self, stamp: Stamp, now: Mono) -> Duration {
        let since = match self.beat {
            Some((seen, since)) if seen == stamp => since,
            _ => now,
        };
        self.beat = Some((stamp, since));
        now.saturating_sub(since)
    }
}

impl Default for CheckRt {
    fn default() -> Self {
        CheckRt::new()
    }
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident: u64 = statm_resident(&text)?;
    Some(resident.saturating_mul(crate::procs::page_size()))
}

/// The resident field (pages) of /proc/PID/statm: "size resident shared text lib data dt".
pub fn statm_resident(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    // Linux 6.2 and later give the count as the directory's size.
    let size = std::fs::metadata(&dir).ok()?.len();
    if size > 0 {
        return Some(size);
    }
    Some(std::fs::read_dir(&dir).ok()?.count() as u64)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = crate::procs::stat_fields(pid).ok()??;
    Some(s.utime.saturating_add(s.stime))
}

/// What identifies one version of a heartbeat file: a beat changes at least one of these.
/// Compared only with itself, never with a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A heartbeat file's metadata. Only its metadata is read (stat(2), following symlinks): the
/// file is never opened, so a FIFO or a device there cannot block or be armed; anything but a
/// regular file fails the check.
pub fn heartbeat_meta(path: &std::path::Path) -> Result<std::fs::Metadata, Failure> {
    let meta = std::fs::metadata(path).map_err(|_| Failure::HeartbeatMissing)?;
    if !meta.is_file() {
        use std::os::unix::fs::MetadataExt;
        let kind = crate::files::Kind::of(meta.mode() as libc::mode_t);
        return Err(Failure::HeartbeatNotRegular(kind));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckAction, CheckKind};

    #[test]
    fn statm_gives_the_resident_pages() {
        assert_eq!(statm_resident("2500 731 512 12 0 300 0\n"), Some(731));
        for bad in ["", "2500", "2500 x 1", "2500 -3 1"] {
            assert_eq!(statm_resident(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_and_fds_of_a_live_process_are_read() {
        let me = std::process::id() as i32;
        let rss = rss_bytes(me).expect("own rss");
        assert!(
            rss >= 64 * 1024 && rss.is_multiple_of(crate::procs::page_size()),
            "{rss}"
        );
        // Another process, whose fds nothing else opens or closes meanwhile (the test threads
        // of this one do): stdin, stdout, stderr and whatever the harness let it inherit, the
        // same as a listing of its fd directory.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let fds = fd_count(pid);
        let listed = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64);
        let _ = child.kill();
        let _ = child.wait();
        assert!(fds.is_some_and(|n| n >= 3), "{fds:?}");
        assert_eq!(fds, listed.ok());
        assert_eq!(rss_bytes(-1), None);
        assert_eq!(fd_count(-1), None);
    }

    fn cfg(failures: u32) -> CheckConfig {
        CheckConfig {
            kind: CheckKind::Tcp {
                addr: "127.0.0.1:1".parse().expect("addr"),
            },
            timeout: Duration::from_secs(1),
            every: Duration::from_secs(1),
            failures,
            grace: Duration::from_secs(10),
            action: CheckAction::Restart,
        }
    }

    fn s(n: u64) -> Mono {
        Duration::from_secs(n)
    }

    #[test]
    fn check_periods_are_aligned_to_a_common_grid() {
        let ms = Duration::from_millis;
        assert_eq!(aligned(ms(1_300), ms(1_000)), ms(2_000));
        assert_eq!(
            aligned(ms(2_000), ms(1_000)),
            ms(3_000),
            "strictly after now"
        );
        assert_eq!(aligned(ms(2_999), ms(1_000)), aligned(ms(2_001), ms(1_000)));
        // Sub-millisecond periods, a zero period, and the ends of the range.
        let ns = Duration::from_nanos;
        assert_eq!(aligned(ns(1_000_001), ns(7)), ns(1_000_006));
        assert_eq!(aligned(ns(5), Duration::ZERO), ns(6));
        assert_eq!(aligned(ns(u64::MAX - 1), ns(1)), ns(u64::MAX));
        assert_eq!(aligned(ns(u64::MAX), ns(1)), ns(u64::MAX));
        assert_eq!(
            aligned(ns(u64::MAX - 2), ns(u64::MAX / 2)),
            ns(u64::MAX - 1)
        );
        assert_eq!(aligned(s(1), Duration::MAX), ns(u64::MAX));
        assert_eq!(aligned(Duration::MAX, s(1)), ns(u64::MAX));
    }

    #[test]
    fn failures_within_the_grace_do_not_count_until_the_first_pass() {
        let c = cfg(1);
        let mut t = Tracker::pinned(s(0), c.grace);
        let f = Failure::Refused;
        assert_eq!(t.result(&c, Err(f), s(1)), Verdict::InGrace { failure: f });
        assert_eq!(t.result(&c, Err(f), s(5)), Verdict::InGrace { failure: f });
        assert_eq!(t.result(&c, Ok(()), s(6)), Verdict::Quiet);
        // Passed once: the grace is over, even though 10 s have not run out.
        assert_eq!(
            t.result(&c, Err(f), s(7)),
            Verdict::Act { n: 1, failure: f }
        );
    }

    #[test]
    fn a_grace_that_runs_out_counts_failures() {
        let c = cfg(2);
        let mut t = Tracker::pinned(s(0), c.grace);
        let f = Failure::Timeout(s(1));
        assert_eq!(
            t.result(&c, Err(f), s(10)),
            Verdict::Counted {
                n: 1,
                of: 2,
                failure: f
            }
        );
        assert_eq!(
            t.result(&c, Err(f), s(11)),
            Verdict::Act { n: 2, failure: f }
        );
    }

    #[test]
    fn one_flaky_reply_in_three_never_acts_with_failures_2() {
        let c = cfg(2);
        let mut t = Tracker::pinned(s(0), c.grace);
        t.result(&c, Ok(()), s(1));
        for i in 0..30 {
            let r = if i % 3 == 0 {
                Err(Failure::Reset)
            } else {
                Ok(())
            };
            let v = t.result(&c, r, s(2 + i));
            assert!(!matches!(v, Verdict::Act { .. }), "acted at {i}");
        }
        assert_eq!(
            t.result(&c, Err(Failure::Reset), s(40)),
            Verdict::Counted {
                n: 1,
                of: 2,
                failure: Failure::Reset
            }
        );
        assert_eq!(t.result(&c, Ok(()), s(41)), Verdict::Recovered { after: 1 });
    }

    #[test]
    fn http_replies_are_read_strictly() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<p>woof woof still alive</p>";
        let woof = Some(&b"woof woof still alive"[..]);
        assert_eq!(evaluate_http(ok, false, 200, woof), Http::Pass);
        assert_eq!(evaluate_http(ok, true, 200, None), Http::Pass);
        assert_eq!(evaluate_http(&ok[..20], false, 200, woof), Http::NeedMore);
        assert_eq!(
            evaluate_http(&ok[..20], true, 200, woof),
            Http::Fail(Failure::ClosedEarly { got: 20 })
        );
        assert_eq!(
            evaluate_http(b"", true, 200, woof),
            Http::Fail(Failure::ClosedEarly { got: 0 })
        );
        assert_eq!(
            evaluate_http(b"HTTP/1.1 500 Oops\r\n\r\n", true, 200, woof),
            Http::Fail(Failure::Status {
                got: 500,
                want: 200
            })
        );
        assert_eq!(
            evaluate_http(b"SSH-2.0-OpenSSH\r\n", false, 200, woof),
            Http::Fail(Failure::NotHttp)
        );
        assert_eq!(
            evaluate_http(b"HTTP/1.1 2000 x\r\n\r\n", true, 200, None),
            Http::Fail(Failure::NotHttp)
        );
        assert_eq!(
            evaluate_http(b"HTTP/1.1 20\r\n\r\n", true, 200, None),
            Http::Fail(Failure::NotHttp)
        );
        let wrong = b"HTTP/1.0 200 OK\r\n\r\nmeow";
        assert_eq!(evaluate_http(wrong, false, 200, woof), Http::NeedMore);
        assert_eq!(
            evaluate_http(wrong, true, 200, woof),
            Http::Fail(Failure::ContentMismatch { searched: 4 })
        );
        let mut long = b"HTTP/1.0 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HTTP_HEADERS + 10, b'a');
        assert_eq!(
            evaluate_http(&long, false, 200, None),
            Http::Fail(Failure::HeadersTooLong)
        );
        let mut big = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + MAX_HTTP_BODY, b'x');
        assert_eq!(
            evaluate_http(&big, false, 200, woof),
            Http::Fail(Failure::ContentMismatch {
                searched: MAX_HTTP_BODY
            })
        );
        big.extend_from_slice(b"woof woof still alive");
        assert_eq!(
            evaluate_http(&big, false, 200, woof),
            Http::Fail(Failure::ContentMismatch {
                searched: MAX_HTTP_BODY
            }),
            "only the first 4 KiB count"
        );
    }

    #[test]
    fn a_heartbeat_must_be_a_regular_file_and_is_never_opened() {
        let dir = std::env::temp_dir().join(format!("custos-hb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("beat");
        std::fs::write(&file, "").expect("write");
        assert!(heartbeat_meta(&file).is_ok());
        assert_eq!(
            heartbeat_meta(&dir.join("none")).err(),
            Some(Failure::HeartbeatMissing)
        );
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = heartbeat_meta(&fifo).expect_err("a FIFO");
        assert_eq!(
            e.to_string(),
            "heartbeat file is a FIFO, not a regular file"
        );
        let e = heartbeat_meta(&dir).expect_err("a directory");
        assert_eq!(
            e.to_string(),
            "heartbeat file is a directory, not a regular file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_heartbeat_ages_on_the_boot_clock_from_its_last_change() {
        let stamp = |mtime: i64| Stamp {
            dev: 1,
            ino: 2,
            size: 0,
            mtime: (mtime, 0),
            ctime: (mtime, 0),
        };
        let mut c = CheckRt::new();
        // First look: its age counts from now, whatever its date.
        assert_eq!(c.beat_age(stamp(i64::MAX / 2), s(100)), s(0));
        assert_eq!(c.beat_age(stamp(i64::MAX / 2), s(103)), s(3));
        // Any change is a beat, even to an earlier date (a clock set back).
        assert_eq!(c.beat_age(stamp(5), s(104)), s(0));
        assert_eq!(c.beat_age(stamp(5), s(106)), s(2));
        c.reset(&cfg(1), s(200));
        assert_eq!(c.beat_age(stamp(5), s(201)), s(0), "a new pin looks afresh");
    }

    #[test]
    fn failure_reasons_read_well() {
        assert_eq!(Failure::Timeout(s(1)).to_string(), "timeout after 1s");
        assert_eq!(
            Failure::Status {
                got: 500,
                want: 200
            }
            .to_string(),
            "status 500, expected 200"
        );
        assert_eq!(
            Failure::Memory {
                rss: 80 << 20,
                max: 64 << 20
            }
            .to_string(),
            "resident memory 80MiB over 64MiB"
        );
    }
}

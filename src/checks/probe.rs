//! `NetProbe`: a non-blocking TCP connect, and for HTTP a request and a bounded reply, on one
//! socket with a deadline.

use core::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::http::{evaluate_http, Http, HTTP_BUF};
use super::Failure;
use crate::clock::Mono;
use crate::sys;

/// A TCP connect, and for HTTP a request and a bounded reply, on one non-blocking socket.
pub struct NetProbe {
    sock: OwnedFd,
    pub deadline: Mono,
    connected: bool,
    /// The request to send once connected (HTTP only).
    http: Option<HttpExchange>,
}

struct HttpExchange {
    request: heapless::String<512>,
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
                let mut request = heapless::String::new();
                let ok = fmt::write(
                    &mut request,
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
        let mut probe = NetProbe {
            sock,
            deadline,
            connected,
            http,
        };
        // On loopback, and often on a LAN, the handshake is over when connect() returns (with
        // EINPROGRESS all the same): the request goes out at once, and the probe waits for the
        // answer without a wake-up for POLLOUT and a getsockopt for the connect's outcome. If
        // the handshake is still on, send() says EAGAIN and POLLOUT is waited for as before; a
        // refused connect shows as send()'s ECONNREFUSED.
        if probe.http.is_some() {
            match probe.send_request() {
                Some(Err(f)) => return Err(f),
                Some(Ok(())) => probe.connected = true,
                None => {}
            }
        }
        Ok(probe)
    }

    /// Sends the HTTP request: `Some(Ok)` when it is sent, `None` when the socket cannot take
    /// it yet (`EAGAIN`; right after connect() also `ENOTCONN`: the connect goes on),
    /// `Some(Err)` when it failed.
    fn send_request(&mut self) -> Option<Result<(), Failure>> {
        let connecting = !self.connected;
        let h = self.http.as_mut()?;
        let n = match sys::net::send(self.sock.as_fd(), h.request.as_bytes()) {
            Ok(n) => n,
            Err(e) if errno(&e) == libc::EAGAIN => return None,
            Err(e) if connecting && errno(&e) == libc::ENOTCONN => return None,
            Err(e) => return Some(Err(errno_failure(errno(&e)))),
        };
        if n != h.request.len() {
            // A fresh socket takes a few hundred bytes at once; a short write means trouble.
            return Some(Err(Failure::Reset));
        }
        h.sent = true;
        Some(Ok(()))
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
        match &self.http {
            None => return Some(Ok(())),
            Some(h) if !h.sent => {
                return match self.send_request() {
                    Some(Ok(())) | None => None,
                    Some(Err(f)) => Some(Err(f)),
                };
            }
            Some(_) => {}
        }
        let h = self.http.as_mut()?;
        // Reads until the reply decides (the verdict is given as soon as the bytes decide it:
        // no read for the EOF once the status and the expected text are in), the peer closes,
        // or nothing more is there yet. Each read asks for all the room left, so a reply that
        // fits is taken whole: bytes left unread when the socket is closed would make the
        // kernel reset the server's connection instead of closing it.
        loop {
            let room = h.buf.capacity() - h.buf.len();
            let mut chunk = [0u8; HTTP_BUF];
            let want = room.min(chunk.len());
            let eof = match sys::net::read(fd, &mut chunk[..want]) {
                Ok(0) => true,
                Ok(n) => {
                    let _ = h.buf.extend_from_slice(&chunk[..n]);
                    false
                }
                Err(e) if errno(&e) == libc::EAGAIN => return None,
                Err(e) if errno(&e) == libc::EINTR => continue,
                Err(e) => return Some(Err(errno_failure(errno(&e)))),
            };
            let full = h.buf.len() == h.buf.capacity();
            match evaluate_http(&h.buf, eof || full, h.want, h.expect.as_deref()) {
                Http::NeedMore => {}
                Http::Pass => return Some(Ok(())),
                Http::Fail(f) => return Some(Err(f)),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    fn wait_ready(p: &NetProbe, ms: i32) -> bool {
        let mut fd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&p.as_fd()),
            events: p.events(),
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fd, 1, ms) == 1 }
    }

    #[test]
    fn on_loopback_the_request_leaves_with_the_connect_and_the_reply_decides_at_once() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let far = Duration::from_secs(3600);
        let mut p = NetProbe::start(&addr, Some(("/health", 200, Some("ok"))), far).expect("start");
        // The handshake ended inside connect(): the request is out, the probe waits to read.
        assert_eq!(p.events(), libc::POLLIN, "waits for POLLOUT first");
        let (mut conn, _) = l.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = [0u8; 512];
        let n = conn.read(&mut req).expect("request");
        assert!(req[..n].starts_with(b"GET /health HTTP/1.0\r\n"));
        // The whole answer, and the connection left open: the verdict needs no EOF.
        conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nall ok\n")
            .expect("answer");
        assert!(wait_ready(&p, 5000), "the answer is readable");
        assert_eq!(p.ready(), Some(Ok(())));
        // A closed port: refused, from start() or the first readiness.
        drop(l);
        let r = match NetProbe::start(&addr, Some(("/", 200, None)), far) {
            Err(f) => Err(f),
            Ok(mut p) => {
                assert!(wait_ready(&p, 5000));
                p.ready().expect("decided")
            }
        };
        assert_eq!(r, Err(Failure::Refused));
    }

    #[test]
    fn a_reply_of_a_few_kib_is_taken_whole_so_the_server_sees_a_close_not_a_reset() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let far = Duration::from_secs(3600);
        let mut p = NetProbe::start(&addr, Some(("/", 200, None)), far).expect("start");
        let (mut conn, _) = l.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = [0u8; 512];
        let _ = conn.read(&mut req).expect("request");
        let mut reply = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        reply.resize(3000, b'x');
        conn.write_all(&reply).expect("answer");
        assert!(wait_ready(&p, 5000), "the answer is readable");
        assert_eq!(p.ready(), Some(Ok(())), "the status decides");
        drop(p);
        // What the server reads next: the end of the stream, not ECONNRESET.
        let got = conn.read(&mut req).map_err(|e| e.kind());
        assert_eq!(got, Ok(0), "the server's connection was reset");
    }
}

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
            let n = match sys::net::send(fd, h.request.as_bytes()) {
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

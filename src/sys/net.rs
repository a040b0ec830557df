//! TCP sockets for the health checks: a non-blocking socket, connect, the pending error, send
//! without SIGPIPE, read. Each returns a plain value or the errno as an `io::Error`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// A new non-blocking, close-on-exec TCP socket of `addr`'s family.
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes plain values and returns a new fd or -1.
    let fd = cvt(unsafe { libc::socket(family, kind, 0) })?;
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `addr` as the kernel's sockaddr, and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// connect(2). On a non-blocking socket `EINPROGRESS` is an error like any other: the caller
/// tells it apart.
pub fn connect(sock: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    cvt(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(())
}

/// The socket's pending error (SO_ERROR): 0 when a connect went through.
pub fn so_error(sock: BorrowedFd<'_>) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt SO_ERROR writes one int into err, whose size len gives.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(err)
}

/// send(2) with `MSG_NOSIGNAL`: a reset peer is `EPIPE`, never a SIGPIPE. How many bytes went.
pub fn send(sock: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    // SAFETY: send from a valid buffer of data.len() bytes.
    let n = cvt(unsafe {
        libc::send(
            sock.as_raw_fd(),
            data.as_ptr() as *const libc::c_void,
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    })?;
    Ok(n as usize)
}

/// read(2) into `buf`; 0 is the end of the stream.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read into a valid buffer of buf.len() bytes.
    let n = cvt(unsafe {
        libc::read(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    })?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn connect_send_and_read_on_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sock = tcp_socket(&addr).expect("socket");
        match connect(sock.as_fd(), &addr) {
            Ok(()) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINPROGRESS)),
        }
        let (mut peer, _) = listener.accept().expect("accept");
        let mut fds = [libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        }];
        // SAFETY: one valid pollfd, a bounded wait.
        assert_eq!(unsafe { libc::poll(fds.as_mut_ptr(), 1, 5000) }, 1);
        assert_eq!(so_error(sock.as_fd()).expect("SO_ERROR"), 0);
        assert_eq!(send(sock.as_fd(), b"ping").expect("send"), 4);
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).expect("peer reads");
        assert_eq!(&got, b"ping");
        peer.write_all(b"pong").expect("peer writes");
        drop(peer);
        let mut buf = [0u8; 16];
        let mut all = Vec::new();
        loop {
            match read(sock.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        assert_eq!(all, b"pong");
    }

    #[test]
    fn a_closed_port_is_refused() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let sock = tcp_socket(&addr).expect("socket");
        let refused = match connect(sock.as_fd(), &addr) {
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => true,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                let mut fds = [libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd, a bounded wait.
                unsafe { libc::poll(fds.as_mut_ptr(), 1, 5000) };
                so_error(sock.as_fd()).expect("SO_ERROR") == libc::ECONNREFUSED
            }
            other => panic!("{other:?}"),
        };
        assert!(refused);
    }
}

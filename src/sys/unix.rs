//! UNIX stream sockets of the control socket: a peer's credentials and groups as the kernel
//! recorded them at connect(2), and a connect that never waits.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::cvt;

/// SO_PEERCRED: the peer's PID, UID and GID at connect(2).
pub fn peer_cred(sock: BorrowedFd<'_>) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes one ucred of `len` bytes.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(cred)
}

/// SO_PEERGROUPS: the peer's supplementary groups at connect(2), into `groups`; how many.
/// ERANGE when there are more than `groups` holds; ENOPROTOOPT before Linux 4.13.
pub fn peer_groups(sock: BorrowedFd<'_>, groups: &mut [libc::gid_t]) -> io::Result<usize> {
    let mut len = std::mem::size_of_val(groups) as libc::socklen_t;
    // SAFETY: SO_PEERGROUPS writes at most `len` bytes of gid_t into `groups` and sets `len`.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok((len as usize / std::mem::size_of::<libc::gid_t>()).min(groups.len()))
}

/// A non-blocking connect(2) to the UNIX stream socket at `path`: `Ok` when it connected at
/// once, else the errno (EAGAIN: a listener whose backlog is full; ECONNREFUSED: nobody
/// listens). The socket is closed again either way.
pub fn connect_nowait(path: &Path) -> io::Result<()> {
    let bytes = path.as_os_str().as_encoded_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) returns a new fd or -1.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, flags, 0) })?;
    // SAFETY: the kernel just returned this fd; it is closed when `sock` drops.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: a valid fd and a sockaddr_un of `len` bytes.
    cvt(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn a_peer_is_seen_as_it_connected_and_a_dead_socket_refuses() {
        let dir = std::env::temp_dir().join(format!("custos-sys-unix-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        connect_nowait(&path).expect("a listener takes the connect");
        let client = UnixStream::connect(&path).expect("connect");
        let cred = peer_cred(client.as_fd()).expect("SO_PEERCRED");
        assert_eq!(cred.pid, std::process::id() as i32);
        // SAFETY: getuid takes nothing and cannot fail.
        assert_eq!(cred.uid, unsafe { libc::getuid() });
        let mut groups = [0 as libc::gid_t; 256];
        match peer_groups(client.as_fd(), &mut groups) {
            Ok(n) => assert!(n <= groups.len()),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}"),
        }
        drop(listener);
        let e = connect_nowait(&path).expect_err("nobody listens");
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

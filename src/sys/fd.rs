//! File descriptors by number: reads and writes that never block custos's loop on a
//! non-blocking fd, fd flags, fstat's file type, and closing (one fd, or a range with
//! close_range(2)). Every call here is a plain system call, async-signal-safe: a forked child
//! uses them too. An fd that is not open fails with EBADF.

use std::io;
use std::os::fd::RawFd;

use super::cvt;

/// close_range(2) flag: mark close-on-exec instead of closing (Linux 5.11).
pub const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// read(2) into `buf`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read writes at most buf.len() bytes into a valid, writable buffer.
    let n = cvt(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// write(2) from `data`.
pub fn write(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: write reads data.len() bytes from a valid buffer.
    let n = cvt(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) })?;
    Ok(n as usize)
}

/// send(2) from `data` on a socket, without blocking and without SIGPIPE.
pub fn send_nowait(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: send reads data.len() bytes from a valid buffer.
    let n = cvt(unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })?;
    Ok(n as usize)
}

/// The fd flags (F_GETFD: FD_CLOEXEC).
pub fn fd_flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: fcntl F_GETFD takes and returns integers only.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

/// Sets the fd flags (F_SETFD).
pub fn set_fd_flags(fd: RawFd, flags: i32) -> io::Result<()> {
    // SAFETY: fcntl F_SETFD takes integers only.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// The file status flags (F_GETFL: O_NONBLOCK, the access mode, ...).
pub fn status_flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: fcntl F_GETFL takes and returns integers only.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

/// The type of the file behind `fd`: its st_mode & S_IFMT (S_IFSOCK, S_IFIFO, S_IFCHR, ...).
pub fn file_type(fd: RawFd) -> io::Result<libc::mode_t> {
    // SAFETY: an all-zero stat is a valid value for fstat to fill in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one stat into the valid pointer we pass.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT)
}

/// Whether `fd` is a terminal.
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// The soft limit on open fds (RLIMIT_NOFILE), if it can be read.
pub fn nofile_limit() -> Option<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Closes fd number `fd`; errors are ignored. For code that holds fds by number (a forked
/// child's fd table); an OwnedFd closes itself.
pub fn close(fd: RawFd) {
    // SAFETY: close takes an integer; a number that is not open fails with EBADF.
    unsafe { libc::close(fd) };
}

/// close_range(2) over `first..=last` with `flags` (0: close; CLOSE_RANGE_CLOEXEC: mark).
/// Fails where the kernel has no close_range (before 5.9; the flag before 5.11).
pub fn close_range(first: libc::c_uint, last: libc::c_uint, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range takes integers only.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn close_range_with_cloexec_marks_and_keeps_the_fd_open() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let r = r.into_raw_fd();
        // Unmarked only between here and close_range: the other test threads spawn children,
        // which would inherit it meanwhile.
        set_fd_flags(r, 0).expect("unmark");
        assert_eq!(fd_flags(r).expect("open") & libc::FD_CLOEXEC, 0);
        match close_range(r as libc::c_uint, r as libc::c_uint, CLOSE_RANGE_CLOEXEC) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) => {
                println!("SKIP: no close_range(CLOSE_RANGE_CLOEXEC) here: {e}");
            }
            Err(e) => panic!("close_range: {e}"),
            Ok(()) => {
                let flags = fd_flags(r).expect("marked, not closed");
                assert_ne!(flags & libc::FD_CLOEXEC, 0, "not marked close-on-exec");
            }
        }
        close(r);
        assert_eq!(
            fd_flags(r).map_err(|e| e.raw_os_error()),
            Err(Some(libc::EBADF))
        );
        drop(w);
    }

    #[test]
    fn reads_and_writes_on_a_pipe_never_block() {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .expect("pipe");
        let (r, w) = (r.as_raw_fd(), w.as_raw_fd());
        let mut buf = [0u8; 8];
        let e = read(r, &mut buf).expect_err("empty");
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
        assert_eq!(write(w, b"abc").expect("write"), 3);
        assert_eq!(read(r, &mut buf).expect("read"), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(file_type(r).expect("fstat"), libc::S_IFIFO);
        assert_ne!(status_flags(r).expect("flags") & libc::O_NONBLOCK, 0);
        assert!(!isatty(r));
        let e = send_nowait(w, b"x").expect_err("a pipe is no socket");
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
    }
}

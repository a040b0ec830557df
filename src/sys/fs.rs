//! Files: open and openat with the caller's flags, fstat, readlinkat. Each returns an owned fd
//! or a plain value; -1 becomes the errno as an `io::Error`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::cvt;

/// `path` as a C string; a NUL byte inside is `EINVAL`.
pub fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// open(2) with exactly `flags` (no mode: never used with `O_CREAT`).
pub fn open(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: open(2) on a valid NUL-terminated path; it reads nothing else.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat(2) of `name` in the directory `dir`, with exactly `flags` (no `O_CREAT`).
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: a valid directory fd and NUL-terminated name.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    // SAFETY: the kernel just returned this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data; all-zero is a valid value that fstat overwrites.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a pointer to a stat we own.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// readlinkat(2) into `buf`: the target's first bytes (cut at `buf.len()`), and how many.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: a valid directory fd, a NUL-terminated name and a buffer of buf.len() bytes.
    let n = cvt(unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn open_fstat_and_readlinkat() {
        let root = open(c"/", libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC).expect("/");
        let st = fstat(root.as_fd()).expect("fstat");
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
        let e = open(c"/no/such/path", libc::O_RDONLY).expect_err("missing");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let proc = open(
            c"/proc/self",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .expect("/proc/self");
        let stat = openat(proc.as_fd(), c"stat", libc::O_RDONLY | libc::O_CLOEXEC).expect("stat");
        assert!(fstat(stat.as_fd()).is_ok());
        let mut buf = [0u8; 256];
        let n = readlinkat(proc.as_fd(), c"cwd", &mut buf).expect("cwd");
        assert_eq!(buf[0], b'/');
        assert!(n > 0);
        assert!(cpath(Path::new("a\0b")).is_err());
    }
}

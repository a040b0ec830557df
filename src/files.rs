//! Opening files that someone else may control (pidfiles, the config, the watchdog device)
//! without ever blocking the main loop or touching what is not meant to be touched.
//!
//! `open(2)` itself has effects on what it opens: a FIFO blocks until a writer appears, a
//! terminal may become the controlling terminal, and /dev/watchdog is *armed* by any open (and a
//! close without the magic 'V' leaves it armed: a reset). So the type of a file is checked
//! before it is opened: the path is first opened with `O_PATH` (which only names the inode and
//! runs no driver code), `fstat` says what it is, and only a kind the caller accepts is opened
//! for real, through `/proc/self/fd/N`: the very inode just checked, with no window for a swap.
//! With `follow = false` the last component is not followed (`O_NOFOLLOW`): a symlink is an
//! error, never a way to reach a device.
//!
//! Every open carries `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, including the `O_PATH` one: a kernel
//! older than 2.6.39 ignores `O_PATH` and that open is then a plain non-blocking, no-follow,
//! read-only one, which is still safe for every kind but a device (see the README).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use crate::sys::fs::{cpath, fstat, open as sys_open};

/// What a path turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Directory,
    Socket,
    Unknown,
}

impl Kind {
    pub fn of(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::Regular,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::Unknown,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Regular => "a regular file",
            Kind::Symlink => "a symbolic link",
            Kind::Fifo => "a FIFO",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Directory => "a directory",
            Kind::Socket => "a socket",
            Kind::Unknown => "of an unknown type",
        })
    }
}

/// Why a file was not opened.
#[derive(Debug)]
pub enum FileError {
    /// It is there but of a kind the caller does not accept: it was not opened.
    Kind(Kind),
    Io(io::Error),
}

impl FileError {
    pub fn not_found(&self) -> bool {
        matches!(self, FileError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for FileError {
    /// "is a FIFO, not a regular file", or the OS error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Kind(k) => write!(f, "is {k}, not a regular file"),
            FileError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> FileError {
        FileError::Io(e)
    }
}

/// Opens `path` with `access` (`O_RDONLY` or `O_WRONLY`) only if it is one of the `accept`ed
/// kinds; never blocks, never opens anything else (see the module doc).
pub fn open(path: &Path, follow: bool, access: i32, accept: &[Kind]) -> Result<File, FileError> {
    let c = cpath(path)?;
    let safe = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let probe = match sys_open(&c, libc::O_PATH | libc::O_RDONLY | nofollow | safe) {
        Ok(fd) => fd,
        // Only where O_PATH is ignored: O_NOFOLLOW on a symlink.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && !follow => {
            return Err(FileError::Kind(Kind::Symlink))
        }
        Err(e) => return Err(e.into()),
    };
    let st = fstat(probe.as_fd())?;
    let kind = Kind::of(st.st_mode);
    if !accept.contains(&kind) {
        return Err(FileError::Kind(kind));
    }
    // The inode just checked, opened for real. Without /proc (not mounted yet), the path
    // again: then the inode must still be the same one.
    let proc = format!("/proc/self/fd/{}", probe.as_raw_fd());
    let fd = match sys_open(&cpath(Path::new(&proc))?, access | safe) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => sys_open(&c, access | nofollow | safe)?,
        Err(e) => return Err(e.into()),
    };
    let again = fstat(fd.as_fd())?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(FileError::Io(io::Error::other(
            "it was replaced while being opened",
        )));
    }
    Ok(File::from(fd))
}

/// Opens a regular file for reading (see `open`).
pub fn open_regular(path: &Path, follow: bool) -> Result<File, FileError> {
    open(path, follow, libc::O_RDONLY, &[Kind::Regular])
}

/// Reads a regular file custos keeps in its state_dir, opened as `open_regular` does (never
/// through a symlink, never a FIFO or a device), up to `max + 1` bytes so that the caller can
/// tell a file over `max`. Anything but a regular file is an `InvalidData` error that says what
/// it is; a missing file is `NotFound`.
pub fn read_regular(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let f = match open_regular(path, false) {
        Ok(f) => f,
        Err(FileError::Io(e)) => return Err(e),
        Err(e @ FileError::Kind(_)) => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        }
    };
    let mut data = Vec::new();
    f.take(max as u64 + 1).read_to_end(&mut data)?;
    Ok(data)
}

/// Reads at most `buf.len()` bytes from the start of `f`; returns how many.
pub fn read_some(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_accepted_kinds_are_opened() {
        let dir = std::env::temp_dir().join(format!("custos-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("file");
        std::fs::write(&file, "1234\n").expect("write");
        let mut f = open_regular(&file, false).expect("a regular file opens");
        let mut buf = [0u8; 3];
        assert_eq!(read_some(&mut f, &mut buf).expect("read"), 3);
        assert_eq!(&buf, b"123");

        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let e = open_regular(&link, false).expect_err("a symlink is refused");
        assert_eq!(e.to_string(), "is a symbolic link, not a regular file");
        assert!(open_regular(&link, true).is_ok(), "followed when asked");

        let fifo = dir.join("fifo");
        let c = cpath(&fifo).expect("path");
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo, false).expect_err("a FIFO is refused");
        assert_eq!(e.to_string(), "is a FIFO, not a regular file");
        let e = open(
            &fifo,
            true,
            libc::O_WRONLY,
            &[Kind::CharDevice, Kind::Regular],
        )
        .err();
        assert!(matches!(e, Some(FileError::Kind(Kind::Fifo))), "{e:?}");

        let e = open_regular(&dir, false).expect_err("a directory is refused");
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let e = open_regular(Path::new("/dev/null"), false).expect_err("a device");
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        assert!(open_regular(&dir.join("nope"), false)
            .expect_err("missing")
            .not_found());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

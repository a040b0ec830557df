//! Thin wrappers over the kernel and libc: every `unsafe` of custos outside the poll loop lives
//! under here, each with the one reason it is sound. Callers get `io::Result`s and plain values.

use std::io;

pub mod child;
pub mod epoll;
pub mod fd;
pub mod fs;
pub mod net;
pub mod pidfd;
pub mod proc;
pub mod process;
pub mod signal;
pub mod time;
pub mod unix;
pub mod watchdog;

/// A libc call's return value as a `Result`: -1 (or any negative value) means the reason is in
/// errno.
pub fn cvt<T: Default + PartialOrd + Copy>(rc: T) -> io::Result<T> {
    if rc < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Looks a group name up in /etc/group.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? == name {
            f.next()?;
            f.next()?.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvt_maps_minus_one_to_errno() {
        // SAFETY: close(-1) touches nothing and fails with EBADF.
        let err = cvt(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(cvt(3i32).ok(), Some(3));
    }

    #[test]
    fn group_id_finds_root() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no such group here"), None);
    }
}

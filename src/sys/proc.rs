//! This process: its limits (sysconf), its process group, and the one extra thread it runs
//! (started with pthread_create on a small stack, without std's thread machinery).

use std::ffi::CStr;
use std::io;

/// sysconf(name), or `None` when the system does not say.
pub fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads the name.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

/// This process's process group.
pub fn getpgrp() -> i32 {
    // SAFETY: getpgrp(2) takes nothing and cannot fail.
    unsafe { libc::getpgrp() }
}

/// The process group and session of process `pid`: two syscalls, no /proc path, no text.
/// The PID may name another process by the time the caller looks at the answer: a caller that
/// needs it to be a given process checks that it still lives afterwards (a pidfd).
pub fn group_and_session(pid: i32) -> io::Result<(i32, i32)> {
    Ok((process_group(pid)?, session(pid)?))
}

/// The process group of process `pid` (getpgid(2)); the same caveat as [`group_and_session`].
pub fn process_group(pid: i32) -> io::Result<i32> {
    // SAFETY: getpgid(2) takes a PID and only returns a number.
    crate::sys::cvt(unsafe { libc::getpgid(pid) })
}

/// The session of process `pid` (getsid(2)); the same caveat as [`group_and_session`].
pub fn session(pid: i32) -> io::Result<i32> {
    // SAFETY: getsid(2) takes a PID and only returns a number.
    crate::sys::cvt(unsafe { libc::getsid(pid) })
}

/// Starts `body` on a detached thread with a `stack`-byte stack, named `name` (at most 15
/// bytes are kept). The thread inherits the caller's signal mask.
pub fn spawn_detached<F: FnOnce() + Send + 'static>(
    name: &'static CStr,
    stack: usize,
    body: F,
) -> io::Result<()> {
    let theirs: *mut (&'static CStr, F) = Box::into_raw(Box::new((name, body)));
    // SAFETY: attr is initialized by pthread_attr_init before use and destroyed after;
    // pthread_create gets a valid function and an argument that only the new thread uses
    // (it takes ownership of the box); on failure the box is taken back here.
    let rc = unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        let mut rc = libc::pthread_attr_init(attr.as_mut_ptr());
        if rc == 0 {
            let _ = libc::pthread_attr_setstacksize(attr.as_mut_ptr(), stack);
            let _ =
                libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED);
            let mut thread = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
            rc = libc::pthread_create(
                thread.as_mut_ptr(),
                attr.as_ptr(),
                thread_main::<F>,
                theirs.cast(),
            );
            libc::pthread_attr_destroy(attr.as_mut_ptr());
        }
        if rc != 0 {
            drop(Box::from_raw(theirs));
        }
        rc
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

extern "C" fn thread_main<F: FnOnce()>(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: arg is the box leaked by spawn_detached for this thread alone, of this F.
    let args = unsafe { Box::from_raw(arg.cast::<(&'static CStr, F)>()) };
    let (name, body) = *args;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (the kernel keeps 16 bytes of it).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    body();
    std::ptr::null_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_thread_runs_with_its_name() {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_detached(c"custos-test", 64 * 1024, move || {
            let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
            let _ = tx.send(name);
        })
        .expect("spawn");
        let name = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the thread ran");
        assert_eq!(name.trim_end(), "custos-test");
        assert!(sysconf(libc::_SC_PAGESIZE).is_some_and(|p| p >= 4096));
        assert!(getpgrp() > 0);
    }
}

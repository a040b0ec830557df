//! Processes: signals by PID and by process group, collecting exits without waiting, the child
//! subreaper flag, signal dispositions, sync(2) and reboot(2). The callers decide whom to
//! signal (a process verified by PID and start time, never init or custos); these only make the
//! calls.

use std::io;

use super::cvt;

/// Sends `signal` to `pid` (kill(2)).
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes two integers; no memory is involved.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Sends `signal` to every process of process group `pgid` (kill(2) with a negative PID).
pub fn kill_group(pgid: i32, signal: i32) -> io::Result<()> {
    kill(-pgid, signal)
}

/// The process group of `pid`.
pub fn getpgid(pid: i32) -> io::Result<i32> {
    // SAFETY: getpgid(2) takes an integer; no memory is involved.
    cvt(unsafe { libc::getpgid(pid) })
}

/// Collects the exit of child `pid` (-1: any child) without waiting (waitpid(2) with WNOHANG):
/// its PID and wait status, `Ok(None)` when none has exited yet.
pub fn wait_nohang(pid: i32) -> io::Result<Option<(i32, i32)>> {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer for the duration of the call.
    let rc = cvt(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) })?;
    Ok((rc != 0).then_some((rc, status)))
}

/// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag; no memory is involved.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Puts `signal` back to its default disposition. Failures (invalid signal numbers, SIGKILL,
/// SIGSTOP) change nothing and are ignored.
pub fn default_disposition(signal: i32) {
    // SAFETY: setting a default disposition installs no handler; no memory is involved.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Schedules every dirty buffer to be written to disk (sync(2)).
pub fn sync() {
    // SAFETY: sync(2) takes no arguments.
    unsafe { libc::sync() };
}

/// Restarts the system at once (reboot(2) with RB_AUTOBOOT); returns only when that fails.
pub fn reboot() -> io::Result<()> {
    // SAFETY: reboot(2) with a command constant takes no pointers.
    cvt(unsafe { libc::reboot(libc::RB_AUTOBOOT) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_signalled_child_is_collected_with_its_signal() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        assert_eq!(wait_nohang(pid).expect("waitpid"), None, "alive: nothing");
        kill(pid, libc::SIGKILL).expect("kill");
        let mut got = None;
        for _ in 0..500 {
            got = wait_nohang(pid).expect("waitpid");
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (p, status) = got.expect("exit collected");
        assert_eq!(p, pid);
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
        // Collected: the PID is no longer our child.
        assert_eq!(
            wait_nohang(pid).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ECHILD))
        );
        let _ = child.try_wait();
    }

    #[test]
    fn a_process_group_is_named_by_its_leader() {
        let own = std::process::id() as i32;
        assert!(getpgid(own).expect("getpgid") > 0);
        assert_eq!(
            getpgid(-5).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ESRCH))
        );
    }
}

//! Running init.d scripts: argv without a shell, stdin /dev/null, a minimal environment, their own
//! process group, a clean signal state and no inherited fds (crate::child), and stdout/stderr into
//! a pipe that custos drains into the log line by line (and the output keeper, crate::keeper,
//! once custos is gone).
//! custos never waits for a script: the exit arrives through SIGCHLD like any other.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::{Argv, SCRIPT_PATH};
use crate::limits::{MAX_LOG_LINE, MAX_LOG_LINES_PER_SEC};
use crate::sys::epoll::{Epoll, Registration};

/// Starts `argv` as a new process group leader and returns its PID. The child begins clean (see
/// crate::child): empty signal mask, default dispositions, no fds but 0, 1 and 2.
pub fn spawn(argv: &Argv, service: &str, out: &OutputPipe) -> io::Result<i32> {
    spawn_with(argv, &[("CUSTOS_SERVICE", service)], None, out)
}

/// `spawn` with these environment variables (besides PATH) and, when given, `stdin` (the read
/// end of a pipe) instead of /dev/null.
pub fn spawn_with(
    argv: &Argv,
    env: &[(&str, &str)],
    stdin: Option<OwnedFd>,
    out: &OutputPipe,
) -> io::Result<i32> {
    let stdout = out.write.try_clone()?;
    let stderr = out.write.try_clone()?;
    let path = SCRIPT_PATH.strip_prefix("PATH=").unwrap_or(SCRIPT_PATH);
    let mut cmd = Command::new(OsStr::from_bytes(argv.program().to_bytes()));
    cmd.args(
        argv.args
            .iter()
            .skip(1)
            .map(|a| OsStr::from_bytes(a.to_bytes())),
    )
    .env_clear()
    .env("PATH", path)
    .envs(env.iter().copied())
    .current_dir("/")
    .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
    .stdout(Stdio::from(stdout))
    .stderr(Stdio::from(stderr))
    .process_group(0);
    crate::sys::child::before_exec(&mut cmd, crate::child::clean_for_exec);
    let child = cmd.spawn()?;
    // The Child handle is dropped without waiting: custos reaps with waitpid(-1) in its loop.
    Ok(child.id() as i32)
}

/// Kills the whole process group of a script or check program that custos spawned, but only
/// while its leader is custos's unreaped child (alive, or a zombie): until it is reaped its PID,
/// which is also the group ID, cannot be reused. Once reaped (say, earlier in the same batch of
/// reaps), an empty group's ID is free and may already name a stranger's group, so nothing is
/// sent and `Ok(false)` says so. Only custos's loop reaps, so the leader cannot be reaped
/// between the look and the kill.
pub fn kill_group(pgid: i32) -> io::Result<bool> {
    if pgid <= 1 {
        return Ok(false);
    }
    // Not (or no longer) custos's child: already reaped.
    if !crate::sys::child::unreaped(pgid)? {
        return Ok(false);
    }
    crate::sys::signal::kill(-pgid, libc::SIGKILL)?;
    Ok(true)
}

/// Bytes of script output read per service per pass of the loop.
const DRAIN_MAX: usize = 16 * 1024;

/// One pipe per service, made at load: every script of the service writes into it, and so
/// does a daemon that keeps the script's stdout. custos keeps both ends open while it supervises
/// the service, and the output keeper (crate::keeper) holds a second read end, so a daemon that
/// writes to an inherited stdout gets neither SIGPIPE nor a blocked write, whether custos lives
/// or not.
pub struct OutputPipe {
    /// Its read end's registration in the loop's epoll: declared before the fd, so that it is
    /// removed before the fd is closed (the output keeper holds a copy of the pipe).
    watch: Registration,
    read: OwnedFd,
    write: OwnedFd,
    line: heapless::Vec<u8, MAX_LOG_LINE>,
    /// The current line overflowed: drop bytes until its newline.
    cut: bool,
    window_start: Duration,
    lines_in_window: u32,
    dropped: u32,
}

impl OutputPipe {
    pub fn new() -> io::Result<OutputPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        // Only our end is non-blocking: scripts see an ordinary blocking pipe.
        nix::fcntl::fcntl(
            read.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(io::Error::from)?;
        Ok(OutputPipe {
            watch: Registration::default(),
            read,
            write,
            line: heapless::Vec::new(),
            cut: false,
            window_start: Duration::ZERO,
            lines_in_window: 0,
            dropped: 0,
        })
    }

    /// Reads what is there and calls `emit` for each complete line, at most
    /// MAX_LOG_LINES_PER_SEC a second; lines over that are counted and reported once.
    pub fn drain(&mut self, now: Duration, mut emit: impl FnMut(&str)) {
        let mut buf = [0u8; 512];
        // At most DRAIN_MAX bytes a call: a daemon that writes to its inherited stdout without
        // pause must not keep the loop (and the watchdog) from the rest of the pass. The pipe
        // stays readable, so poll brings us back.
        let mut budget = DRAIN_MAX;
        while budget > 0 {
            let n = match nix::unistd::read(self.read.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            budget = budget.saturating_sub(n);
            for &b in &buf[..n] {
                if b == b'\n' {
                    if !self.cut || !self.line.is_empty() {
                        self.flush(now, &mut emit);
                    }
                    self.cut = false;
                    self.line.clear();
                } else if !self.cut && self.line.push(b).is_err() {
                    self.cut = true;
                    self.flush(now, &mut emit);
                    self.line.clear();
                }
            }
        }
    }

    /// A script has exited: reads what is left and logs a last line that has no newline as a
    /// line of its own, so that it is never glued to what the next script writes.
    pub fn end_of_script(&mut self, now: Duration, mut emit: impl FnMut(&str)) {
        self.drain(now, &mut emit);
        if !self.line.is_empty() {
            self.flush(now, &mut emit);
        }
        self.line.clear();
        self.cut = false;
    }

    fn flush(&mut self, now: Duration, emit: &mut impl FnMut(&str)) {
        if now.saturating_sub(self.window_start) >= Duration::from_secs(1) {
            if self.dropped > 0 {
                let mut msg = heapless::String::<64>::new();
                let _ = core::fmt::write(
                    &mut msg,
                    format_args!(
                        "({} more lines dropped: over {MAX_LOG_LINES_PER_SEC}/s)",
                        self.dropped
                    ),
                );
                emit(&msg);
            }
            self.window_start = now;
            self.lines_in_window = 0;
            self.dropped = 0;
        }
        if self.lines_in_window >= MAX_LOG_LINES_PER_SEC {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.lines_in_window += 1;
        let text = String::from_utf8_lossy(&self.line);
        if self.cut {
            emit(&format!("{text}…"));
        } else {
            emit(&text);
        }
    }
}

impl OutputPipe {
    /// The read end, for the output keeper once the service is gone; the write end is closed.
    pub fn into_read(mut self) -> OwnedFd {
        // Unregistered first: custos no longer reads it, the keeper does.
        self.watch.clear();
        self.read
    }

    /// Registers the read end in `epoll`, once. The error, the one time registering fails:
    /// it is then polled, and not tried again.
    pub fn watch_in(&mut self, epoll: &Epoll) -> Option<io::Error> {
        self.watch.ensure(epoll, self.read.as_fd())
    }

    /// Its token in the loop's epoll, if it is registered there.
    pub fn token(&self) -> Option<u64> {
        self.watch.token()
    }
}

impl AsFd for OutputPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn argv(a: &[&str]) -> Argv {
        Argv {
            args: a.iter().map(|s| CString::new(*s).expect("cstr")).collect(),
        }
    }

    fn wait(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        status
    }

    fn lines(p: &mut OutputPipe, now: Duration) -> Vec<String> {
        let mut v = Vec::new();
        p.drain(now, |l| v.push(l.to_string()));
        v
    }

    #[test]
    fn scripts_get_a_clean_start_and_their_output_reaches_the_log() {
        let mut out = OutputPipe::new().expect("pipe");
        let script = "echo \"svc=$CUSTOS_SERVICE path=$PATH\"; \
                      echo \"pgrp=$(cut -d' ' -f5 /proc/$$/stat) pid=$$\"; \
                      read x && echo \"stdin gave $x\" || echo stdin-empty; \
                      echo oops >&2; env | wc -l";
        let pid = spawn(&argv(&["/bin/sh", "-c", script]), "web", &out).expect("spawn");
        assert_eq!(wait(pid), 0);
        let got = lines(&mut out, Duration::from_secs(1));
        assert_eq!(got[0], format!("svc=web path={}", &SCRIPT_PATH[5..]));
        assert_eq!(got[1], format!("pgrp={pid} pid={pid}"), "own process group");
        assert_eq!(got[2], "stdin-empty");
        assert_eq!(got[3], "oops");
        // PATH, CUSTOS_SERVICE, and what sh itself adds (PWD).
        assert!(got[4].trim().parse::<u32>().expect("count") <= 3, "{got:?}");
    }

    #[test]
    fn children_get_an_empty_mask_and_default_dispositions() {
        let mut out = OutputPipe::new().expect("pipe");
        // grep itself, no shell between: a shell may change its mask and dispositions, and
        // then what custos passed on would not show.
        let script = argv(&["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
        // As in custos: the signals of its signalfd blocked (in this thread, which spawns), and
        // a signal ignored (as nohup or a careless init leaves SIGHUP). Both would reach the
        // child through fork and exec.
        let mut blocked = crate::signals::handled();
        blocked.add(nix::sys::signal::Signal::SIGUSR2);
        let mut before = nix::sys::signal::SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&blocked),
            Some(&mut before),
        )
        .expect("block");
        // SAFETY: SIGUSR2 is not used by the test harness; restored below.
        let old = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        let spawned = spawn(&script, "web", &out);
        // SAFETY: as above.
        unsafe { libc::signal(libc::SIGUSR2, old) };
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&before),
            None,
        )
        .expect("restore");
        let pid = spawned.expect("spawn");
        assert_eq!(wait(pid), 0);
        let mut got = lines(&mut out, Duration::from_secs(1));
        if std::env::var_os("CUSTOS_TEST_EMULATED").is_some_and(|v| !v.is_empty()) {
            // qemu-user maps the guest's realtime signals onto host ones and keeps some host
            // signals for itself: a disposition the emulator was started with there cannot be
            // changed from inside. Only the standard signals are custos's to answer for.
            let ign = u64::from_str_radix(got[1].trim_start_matches("SigIgn:\t"), 16).expect("hex");
            if ign >> 31 != 0 {
                println!(
                    "NOTE: under qemu-user, realtime signals ignored in the child: {ign:016x}"
                );
            }
            got[1] = format!("SigIgn:\t{:016x}", ign & 0x7fff_ffff);
        }
        assert_eq!(
            got,
            vec!["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"]
        );
    }

    #[test]
    fn a_missing_script_is_an_error_not_a_crash() {
        let out = OutputPipe::new().expect("pipe");
        let e = spawn(&argv(&["/nonexistent/init.d/x", "start"]), "x", &out).expect_err("missing");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn long_lines_are_cut_and_floods_are_rate_limited() {
        let mut out = OutputPipe::new().expect("pipe");
        let script = "head -c 1000 /dev/zero | tr '\\0' x; echo; i=0; while [ $i -lt 50 ]; do echo line$i; i=$((i+1)); done";
        let pid = spawn(&argv(&["/bin/sh", "-c", script]), "x", &out).expect("spawn");
        assert_eq!(wait(pid), 0);
        let got = lines(&mut out, Duration::from_secs(5));
        assert_eq!(
            got[0].chars().count(),
            MAX_LOG_LINE + 1,
            "cut with an ellipsis"
        );
        assert_eq!(got.len() as u32, MAX_LOG_LINES_PER_SEC);
        // The next second reports what was dropped.
        let pid = spawn(&argv(&["/bin/sh", "-c", "echo later"]), "x", &out).expect("spawn");
        assert_eq!(wait(pid), 0);
        let got = lines(&mut out, Duration::from_secs(7));
        assert_eq!(got, vec!["(31 more lines dropped: over 20/s)", "later"]);
    }
}

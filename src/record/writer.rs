//! The writer thread: it takes snapshots (whole files) from a one-slot mailbox and writes them
//! atomically, off the poll loop; the loop only ever try-locks the mailbox.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use super::{FILE_NAME, TEMP_NAME, WRITER_STACK};
use crate::sys;

/// What the loop and the writer thread share. The lock is held only to swap values in and out.
pub(super) struct Mailbox {
    /// The newest snapshot (a whole file) not taken by the writer yet.
    pub(super) next: Option<Vec<u8>>,
    /// The writer is writing a snapshot it took.
    pub(super) busy: bool,
    /// Files written since the loop last looked.
    written: u64,
    /// The outcome of the last finished write, until the loop looks.
    outcome: Option<io::Result<()>>,
    /// A small side file (name in state_dir, whole content) not taken by the writer yet,
    /// written with a rename but no fsync: the pins file, rewritten often, worth little after
    /// a power cut.
    side: Option<(&'static str, Vec<u8>)>,
    /// The outcome of the last side-file write, until the loop looks.
    side_outcome: Option<io::Result<()>>,
    /// The `Record` is gone: the writer ends once its mailbox is empty.
    closed: bool,
}

pub(super) struct Shared {
    pub(super) mailbox: Mutex<Mailbox>,
    /// Signalled when a snapshot arrives or the record closes.
    wake: Condvar,
    /// Signalled when a write finishes.
    idle: Condvar,
}

pub(super) fn lock(m: &Mutex<Mailbox>) -> MutexGuard<'_, Mailbox> {
    // A panicking writer cannot leave the mailbox half-changed: every change is one assignment.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn try_lock(m: &Mutex<Mailbox>) -> Option<MutexGuard<'_, Mailbox>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The loop's handle on the writer thread. The thread is detached: dropping the handle tells it
/// to end after its last write, and a write stuck on a dead disk ends with the process.
pub(crate) struct Writer {
    pub(super) shared: Arc<Shared>,
}

/// The files one writer thread writes: the file, its temporary, and the thread's name.
#[derive(Clone, Copy)]
pub(crate) struct Names {
    pub file: &'static str,
    pub temp: &'static str,
    pub thread: &'static std::ffi::CStr,
    /// A file worth nothing after a power cut, in a directory that others write to (the
    /// metrics): no fsync, and the temporary is opened without following a symlink or waiting
    /// on a FIFO, and must be a regular file. Else (custos's own state_dir): fsync of the file
    /// and of the directory.
    pub volatile: bool,
}

/// The record's files.
pub(super) const RECORD_NAMES: Names = Names {
    file: FILE_NAME,
    temp: TEMP_NAME,
    thread: c"custos-record",
    volatile: false,
};

impl Writer {
    /// Starts the thread with pthread_create, detached, on a small stack (std's thread spawn
    /// costs 16 KiB more of the armv7 binary). It inherits the caller's signal mask.
    pub(crate) fn start(dir: &Path, names: Names) -> io::Result<Writer> {
        let shared = Arc::new(Shared {
            mailbox: Mutex::new(Mailbox {
                next: None,
                busy: false,
                written: 0,
                outcome: None,
                side: None,
                side_outcome: None,
                closed: false,
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
        });
        let (theirs, dir) = (Arc::clone(&shared), dir.to_path_buf());
        sys::proc::spawn_detached(names.thread, WRITER_STACK, move || {
            write_loop(&theirs, &dir, names)
        })?;
        Ok(Writer { shared })
    }

    /// Leaves `data` in the mailbox. Without `wait` it gives up (false) if the lock is taken.
    pub(crate) fn post(&self, data: Vec<u8>, wait: bool) -> bool {
        let old = {
            let Some(mut m) = (if wait {
                Some(lock(&self.shared.mailbox))
            } else {
                try_lock(&self.shared.mailbox)
            }) else {
                return false;
            };
            m.next.replace(data)
        };
        // A replaced snapshot is freed outside the lock.
        drop(old);
        self.shared.wake.notify_one();
        true
    }

    /// Leaves a side file in the mailbox (replacing one not written yet); false if the lock is
    /// taken.
    pub(super) fn post_side(&self, name: &'static str, data: Vec<u8>) -> bool {
        let old = {
            let Some(mut m) = try_lock(&self.shared.mailbox) else {
                return false;
            };
            m.side.replace((name, data))
        };
        drop(old);
        self.shared.wake.notify_one();
        true
    }

    /// The last side-file outcome since the last call; `None` if none or the lock is taken.
    pub(super) fn take_side_outcome(&self) -> Option<io::Result<()>> {
        try_lock(&self.shared.mailbox)?.side_outcome.take()
    }

    /// Files written and the last outcome since the last call; `None` if the lock is taken.
    pub(crate) fn take_outcome(&self, wait: bool) -> Option<(u64, Option<io::Result<()>>)> {
        let mut m = if wait {
            lock(&self.shared.mailbox)
        } else {
            try_lock(&self.shared.mailbox)?
        };
        let written = std::mem::take(&mut m.written);
        Some((written, m.outcome.take()))
    }

    /// Whether the writer became idle (nothing in hand, nothing in the mailbox) within `bound`.
    pub(crate) fn wait_idle(&self, bound: Duration) -> bool {
        let end = crate::clock::boottime() + bound;
        let mut m = lock(&self.shared.mailbox);
        while m.busy || m.next.is_some() || m.side.is_some() {
            let left = end.saturating_sub(crate::clock::boottime());
            if left.is_zero() {
                return false;
            }
            m = self
                .shared
                .idle
                .wait_timeout(m, left)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        true
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.mailbox).closed = true;
        self.shared.wake.notify_one();
    }
}

/// The writer thread: takes the newest snapshot, writes it (the lock released), reports.
/// It never pets the watchdog and never logs: the loop does both.
fn write_loop(shared: &Shared, dir: &Path, names: Names) {
    let mut m = lock(&shared.mailbox);
    loop {
        if let Some(data) = m.next.take() {
            m.busy = true;
            drop(m);
            let outcome = write_atomic(dir, names, &data);
            drop(data);
            m = lock(&shared.mailbox);
            m.busy = false;
            if outcome.is_ok() {
                m.written += 1;
            }
            m.outcome = Some(outcome);
            shared.idle.notify_all();
        } else if let Some((name, data)) = m.side.take() {
            m.busy = true;
            drop(m);
            let outcome = write_side_file(dir, name, &data);
            drop(data);
            m = lock(&shared.mailbox);
            m.busy = false;
            m.side_outcome = Some(outcome);
            shared.idle.notify_all();
        } else if m.closed {
            return;
        } else {
            m = shared.wake.wait(m).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Makes sure `dir` exists and is a writable directory.
pub(crate) fn usable_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir)?,
        Err(e) => return Err(e),
    }
    // A read-only file system (EROFS) or, for a non-root custos, permissions.
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(io::Error::from)
}

/// A side file: a temporary file in `dir`, then a rename over `name`; no fsync.
fn write_side_file(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let done = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        drop(f);
        fs::rename(&tmp, dir.join(name))
    })();
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Temp file in the same directory, fsync, rename over, fsync the directory. In the writer
/// thread only.
fn write_atomic(dir: &Path, names: Names, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(names.temp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(if names.volatile {
                // Never through a symlink, never waiting on a FIFO put in the temporary's place.
                libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK
            } else {
                libc::O_CLOEXEC
            })
            .open(&tmp)?;
        if names.volatile {
            if !f.metadata()?.is_file() {
                return Err(io::Error::other(format!(
                    "{} is not a regular file",
                    tmp.display()
                )));
            }
            f.write_all(data)?;
            drop(f);
            return fs::rename(&tmp, dir.join(names.file));
        }
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(names.file))?;
        // The rename itself is durable only once the directory is.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

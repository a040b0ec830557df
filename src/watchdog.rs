//! The hardware watchdog, through the kernel's API (Documentation/watchdog/watchdog-api.rst):
//! open /dev/watchdog (which arms it), ask what it is (WDIOC_GETSUPPORT) and why the board last
//! reset (WDIOC_GETBOOTSTATUS), set the timeout and read back the one the driver chose, pet with
//! WDIOC_KEEPALIVE, and on an orderly exit write the magic 'V' only when configured and the
//! driver supports it. Only the supervisor's main loop calls `keepalive`: a
//! pet says that loop is healthy, so no thread or timer may send one.
//!
//! The backend is chosen once, when the device is opened: a real watchdog answers the ioctls;
//! a regular file (the tests' stand-in, which counts pets) or a device that does not answer
//! them (ENOSYS under qemu-user) is petted by writing one byte per keepalive, which is also
//! what the kernel's API accepts from a real device. Anything else at the path (a FIFO, a
//! directory, ...) is refused without being opened, and the device is opened non-blocking, so
//! neither the open nor a keepalive can stall the loop.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Dur;
use crate::config::WatchdogConfig;
use crate::files::{self, FileError, Kind};
use crate::sys::watchdog as ioctl;

pub use crate::sys::watchdog::WatchdogInfo;

pub const WDIOF_OVERHEAT: u32 = 0x0001;
pub const WDIOF_FANFAULT: u32 = 0x0002;
pub const WDIOF_EXTERN1: u32 = 0x0004;
pub const WDIOF_EXTERN2: u32 = 0x0008;
pub const WDIOF_POWERUNDER: u32 = 0x0010;
pub const WDIOF_CARDRESET: u32 = 0x0020;
pub const WDIOF_POWEROVER: u32 = 0x0040;
pub const WDIOF_SETTIMEOUT: u32 = 0x0080;
pub const WDIOF_MAGICCLOSE: u32 = 0x0100;
pub const WDIOF_PRETIMEOUT: u32 = 0x0200;
pub const WDIOF_KEEPALIVEPING: u32 = 0x8000;

const FLAG_NAMES: [(u32, &str, &str); 11] = [
    (WDIOF_OVERHEAT, "overheat", "the CPU overheated (OVERHEAT)"),
    (WDIOF_FANFAULT, "fanfault", "a fan failed (FANFAULT)"),
    (WDIOF_EXTERN1, "extern1", "external relay 1 (EXTERN1)"),
    (WDIOF_EXTERN2, "extern2", "external relay 2 (EXTERN2)"),
    (
        WDIOF_POWERUNDER,
        "powerunder",
        "the power was bad (POWERUNDER)",
    ),
    (WDIOF_CARDRESET, "cardreset", "the watchdog (CARDRESET)"),
    (WDIOF_POWEROVER, "powerover", "over-voltage (POWEROVER)"),
    (WDIOF_SETTIMEOUT, "settimeout", ""),
    (WDIOF_MAGICCLOSE, "magicclose", ""),
    (WDIOF_PRETIMEOUT, "pretimeout", ""),
    (WDIOF_KEEPALIVEPING, "keepaliveping", ""),
];

/// The driver's option bits, in words ("settimeout, magicclose, keepaliveping").
pub struct Options(pub u32);

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name, _) in FLAG_NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// WDIOC_GETBOOTSTATUS in words.
pub struct BootStatus(pub u32);

impl fmt::Display for BootStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let causes = FLAG_NAMES
            .iter()
            .filter(|(bit, _, words)| self.0 & bit != 0 && !words.is_empty());
        let mut any = false;
        for (_, _, words) in causes {
            f.write_str(if any {
                " and "
            } else {
                "previous reset was caused by "
            })?;
            f.write_str(words)?;
            any = true;
        }
        if !any {
            f.write_str("no watchdog reset reported")?;
        }
        Ok(())
    }
}

enum Backend {
    /// A real watchdog device.
    Kernel { options: u32 },
    /// Not a watchdog (ENOTTY): keepalives are bytes written to it.
    Writes,
}

/// An open, armed watchdog.
pub struct Watchdog {
    file: File,
    backend: Backend,
    pub device: PathBuf,
    /// The timeout in force (the driver's, read back).
    pub timeout: Duration,
    pub identity: String,
    pub boot_status: u32,
    pub pets: u64,
    /// Something about opening it worth a warning (a timeout the driver would not take).
    pub note: Option<String>,
}

/// Why the watchdog could not be used.
#[derive(Debug)]
pub struct OpenError {
    pub device: PathBuf,
    pub error: io::Error,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match self.error.raw_os_error() {
            Some(libc::EBUSY) => " (another daemon holds it: only one process may open a watchdog)",
            Some(libc::ENOENT) => " (no such device: is the driver loaded, e.g. softdog?)",
            Some(libc::EACCES) | Some(libc::EPERM) => {
                " (permission denied: custos runs as root on a board)"
            }
            _ => "",
        };
        write!(
            f,
            "cannot use {}: {}{hint}",
            self.device.display(),
            self.error
        )
    }
}

/// A process that holds a watchdog device open (what makes custos's open fail with EBUSY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    /// Its comm (/proc/PID/comm).
    pub name: String,
    /// The path its fd names.
    pub path: String,
}

/// At most this many holders are named.
const MAX_HOLDERS: usize = 4;

/// The processes other than custos that hold `device` open, found through the links in
/// /proc/PID/fd (readlink only: nothing is opened or stat'ed, so no file can stall this).
/// A watchdog's other nodes count as the device: /dev/watchdog and /dev/watchdogN are one
/// watchdog, and a daemon holding either makes the other busy. Called once, when the open
/// failed with EBUSY, before the main loop runs. At most `MAX_HOLDERS`.
pub fn holders(device: &std::path::Path) -> Vec<Holder> {
    let mut names: Vec<String> = vec![device.to_string_lossy().into_owned()];
    if let Ok(c) = std::fs::canonicalize(device) {
        names.push(c.to_string_lossy().into_owned());
    }
    let any_watchdog = names.iter().any(|n| n.starts_with("/dev/watchdog"));
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            let hit =
                names.contains(&target) || (any_watchdog && target.starts_with("/dev/watchdog"));
            if hit {
                let name = std::fs::read_to_string(e.path().join("comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_else(|_| "?".to_string());
                found.push(Holder {
                    pid,
                    name,
                    path: target,
                });
                break;
            }
        }
        if found.len() >= MAX_HOLDERS {
            break;
        }
    }
    found
}

/// The holders in words, for the log.
pub struct HoldersText<'a>(pub &'a [Holder]);

impl fmt::Display for HoldersText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(
                "no process found holding it (one in another PID namespace, or the kernel itself)",
            );
        }
        f.write_str("held by ")?;
        for (i, h) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "pid {} ({}) through {}", h.pid, h.name, h.path)?;
        }
        Ok(())
    }
}

/// Sets the timeout when the driver can, and reads back the one in force: that timeout, and
/// what to say when it is not the one asked for.
fn negotiate_timeout(
    fd: BorrowedFd<'_>,
    cfg: &WatchdogConfig,
    options: u32,
) -> (Duration, Option<String>) {
    let mut timeout = cfg.timeout;
    let mut note = None;
    if options & WDIOF_SETTIMEOUT != 0 {
        let secs = cfg.timeout.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
        if let Err(e) = ioctl::set_timeout(fd, secs) {
            // Keep the armed device with the driver's own timeout (read back below).
            note = Some(format!(
                "the driver rejects a timeout of {} ({e}); using its own",
                Dur(cfg.timeout)
            ));
        }
    } else {
        note = Some(format!(
            "the driver cannot set its timeout; using its own instead of {}",
            Dur(cfg.timeout)
        ));
    }
    if let Ok(secs) = ioctl::timeout(fd) {
        if secs > 0 {
            timeout = Duration::from_secs(secs as u64);
        }
    }
    (timeout, note)
}

impl Watchdog {
    /// Opens (and so arms) the device, sets the timeout and reads back the one in force.
    pub fn open(cfg: &WatchdogConfig) -> Result<Watchdog, OpenError> {
        let err = |error| OpenError {
            device: cfg.device.clone(),
            error,
        };
        // Non-blocking (a FIFO or a terminal at the path must never stall start-up or a pet),
        // and only a character device (a watchdog) or a regular file (a stand-in that counts
        // pets) is opened at all; symlinks (/dev/watchdog -> watchdog0) are followed.
        let file = files::open(
            &cfg.device,
            true,
            libc::O_WRONLY,
            &[Kind::CharDevice, Kind::Regular],
        )
        .map_err(|e| match e {
            FileError::Kind(k) => err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is {k}, not a watchdog device (a character device) or a regular file"),
            )),
            FileError::Io(e) => err(e),
        })?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        // Once open, the device may be armed: never drop this fd without petting it. A device
        // that does not answer the ioctls (ENOTTY, EINVAL; ENOSYS under qemu-user) is petted by
        // writes, which every watchdog driver accepts.
        let support = if regular {
            Err(nix::errno::Errno::ENOTTY)
        } else {
            ioctl::support(file.as_fd())
        };
        let info = match support {
            Ok(info) => info,
            Err(e) => {
                return Ok(Watchdog {
                    file,
                    backend: Backend::Writes,
                    device: cfg.device.clone(),
                    timeout: cfg.timeout,
                    identity: format!("no WDIOC_GETSUPPORT ({e}): petted by writes"),
                    boot_status: 0,
                    pets: 0,
                    note: None,
                })
            }
        };
        let identity = String::from_utf8_lossy(&info.identity)
            .trim_end_matches('\0')
            .to_string();
        let boot_status = ioctl::boot_status(file.as_fd()).unwrap_or(0);
        let (timeout, note) = negotiate_timeout(file.as_fd(), cfg, info.options);
        Ok(Watchdog {
            file,
            backend: Backend::Kernel {
                options: info.options,
            },
            device: cfg.device.clone(),
            timeout,
            identity,
            boot_status,
            pets: 0,
            note,
        })
    }

    /// The driver's options, or `None` when the path is not a watchdog device.
    pub fn options(&self) -> Option<u32> {
        match self.backend {
            Backend::Kernel { options } => Some(options),
            Backend::Writes => None,
        }
    }

    /// Pets the watchdog. Called from the healthy main loop only.
    pub fn keepalive(&mut self) -> io::Result<()> {
        match self.backend {
            Backend::Kernel { .. } => {
                ioctl::keepalive(self.file.as_fd()).map_err(io::Error::from)?;
            }
            Backend::Writes => self.file.write_all(b"k")?,
        }
        self.pets += 1;
        Ok(())
    }

    /// Orderly exit: disarm with the magic 'V' when asked and supported. Returns whether the
    /// watchdog was disarmed; when not, the board resets `timeout` after the last pet unless
    /// someone opens and pets it again.
    pub fn close(mut self, magic_close: bool) -> io::Result<bool> {
        let supported = match self.backend {
            Backend::Kernel { options } => options & WDIOF_MAGICCLOSE != 0,
            Backend::Writes => true,
        };
        if magic_close && supported {
            self.file.write_all(b"V")?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// What custos will do with the watchdog, in plain words (for `custos check`).
pub fn describe(cfg: &WatchdogConfig) -> String {
    format!(
        "{}: armed when custos starts, timeout {}, petted every {} by the main loop only when a pass of the loop was healthy; {}",
        cfg.device.display(),
        Dur(cfg.timeout),
        Dur(cfg.pet_every),
        if cfg.magic_close {
            "disarmed with the magic 'V' on SIGTERM when the driver supports it"
        } else {
            "left armed on SIGTERM: the board resets unless custos is started again"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_status_and_options_in_words() {
        assert_eq!(
            BootStatus(WDIOF_CARDRESET).to_string(),
            "previous reset was caused by the watchdog (CARDRESET)"
        );
        assert_eq!(BootStatus(0).to_string(), "no watchdog reset reported");
        assert_eq!(
            BootStatus(WDIOF_CARDRESET | WDIOF_POWERUNDER).to_string(),
            "previous reset was caused by the power was bad (POWERUNDER) and the watchdog (CARDRESET)"
        );
        assert_eq!(
            Options(WDIOF_SETTIMEOUT | WDIOF_MAGICCLOSE | WDIOF_KEEPALIVEPING).to_string(),
            "settimeout, magicclose, keepaliveping"
        );
    }

    #[test]
    fn a_path_that_is_not_a_watchdog_is_petted_by_writes() {
        let dir = std::env::temp_dir().join(format!("custos-wd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let dev = dir.join("fake-watchdog");
        std::fs::write(&dev, "").expect("file");
        let cfg = WatchdogConfig {
            device: dev.clone(),
            timeout: Duration::from_secs(5),
            pet_every: Duration::from_secs(1),
            magic_close: true,
        };
        let mut wd = Watchdog::open(&cfg).expect("open");
        assert!(
            wd.options().is_none(),
            "a plain file answers no watchdog ioctl"
        );
        wd.keepalive().expect("pet");
        wd.keepalive().expect("pet");
        assert!(wd.close(true).expect("close"));
        assert_eq!(std::fs::read(&dev).expect("read"), b"kkV");
        let missing = WatchdogConfig {
            device: dir.join("nope"),
            ..cfg
        };
        let e = Watchdog::open(&missing).err().expect("missing");
        assert!(e.to_string().contains("is the driver loaded"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_processes_holding_a_device_are_named() {
        let dir = std::env::temp_dir().join(format!("custos-wd-held-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let dev = dir.join("watchdog");
        std::fs::write(&dev, "").expect("file");
        // Another daemon holding the device open.
        let mut other = std::process::Command::new("/bin/sleep")
            .arg("30")
            .stdin(std::fs::File::open(&dev).expect("open"))
            .spawn()
            .expect("sleep");
        let pid = other.id() as i32;
        let found = holders(&dev);
        let _ = other.kill();
        let _ = other.wait();
        assert!(
            found.iter().any(|h| h.pid == pid && h.name == "sleep"),
            "pid {pid} (sleep) not among {found:?}"
        );
        assert!(
            !found.iter().any(|h| h.pid == std::process::id() as i32),
            "custos itself is not a holder: {found:?}"
        );
        let text = HoldersText(&found).to_string();
        assert!(text.contains(&format!("pid {pid} (sleep)")), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Rule 4 on the host: the watchdog is petted only by a running main loop. A file stands in for
//! /dev/watchdog (custos writes one byte per keepalive to a path that is not a watchdog device;
//! the real device is tested on the emulated board by scripts/board test).

mod common;

use std::fs;
use std::time::Duration;

use common::*;

fn pets(dev: &std::path::Path) -> usize {
    fs::read(dev)
        .map(|b| b.iter().filter(|&&c| c == b'k').count())
        .unwrap_or(0)
}

fn config(dir: &std::path::Path, magic: bool) -> String {
    format!(
        "[supervisor]\ninterval = \"100ms\"\n[watchdog]\ndevice = \"{}/wd\"\ntimeout = \"3s\"\npet_every = \"100ms\"\nmagic_close = {magic}\n",
        dir.display()
    )
}

#[test]
fn only_a_running_loop_pets_and_sigterm_leaves_it_armed() {
    let dir = tempdir("wd-armed");
    let dev = dir.join("wd");
    fs::write(&dev, "").expect("file");
    let mut c = Custos::start(&dir, &config(&dir, false));
    c.wait_log("watchdog: first keepalive", 10);
    c.wait_log("is not a watchdog device (no watchdog ioctls)", 1);
    std::thread::sleep(Duration::from_millis(600));
    assert!(pets(&dev) >= 3, "pets: {}", pets(&dev));
    // A stopped (hung) custos pets nothing: no thread pets on its behalf.
    c.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(200));
    let frozen = pets(&dev);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(pets(&dev), frozen, "petted while stopped");
    c.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(600));
    assert!(pets(&dev) > frozen, "no pets after SIGCONT");
    assert_eq!(c.stop(), Some(0));
    let text = c.log_text();
    assert!(
        text.contains(
            "watchdog: left armed: the board resets in 3s unless custos is started again"
        ),
        "{text}"
    );
    assert!(
        !fs::read(&dev).expect("read").ends_with(b"V"),
        "disarmed without magic_close"
    );
}

#[test]
fn magic_close_disarms_on_sigterm_when_configured() {
    let dir = tempdir("wd-magic");
    let dev = dir.join("wd");
    fs::write(&dev, "").expect("file");
    let mut c = Custos::start(&dir, &config(&dir, true));
    c.wait_log("watchdog: first keepalive", 10);
    assert_eq!(c.stop(), Some(0));
    assert!(c.log_text().contains("watchdog: magic close: disarmed"));
    assert!(fs::read(&dev).expect("read").ends_with(b"V"));
}

#[test]
fn a_missing_device_is_a_clear_error_and_supervision_goes_on() {
    let dir = tempdir("wd-missing");
    let cfg = format!(
        "[watchdog]\ndevice = \"{}/no-such-watchdog\"\ntimeout = \"3s\"\n\n{}",
        dir.display(),
        testd_config(&dir, "")
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_log("watchdog: cannot use ", 10);
    c.wait_log("(no such device: is the driver loaded, e.g. softdog?); supervising without a hardware watchdog", 1);
    c.wait_log("testd: running as pid", 10);
}

#[test]
fn a_fifo_device_is_a_clear_error_and_never_blocks() {
    // A FIFO at the device path: an open for writing would wait for a reader forever.
    let dir = tempdir("wd-fifo");
    let dev = dir.join("wd");
    let c_path = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let cfg = format!(
        "[watchdog]\ndevice = \"{}\"\ntimeout = \"3s\"\n\n{}",
        dev.display(),
        testd_config(&dir, "")
    );
    let c = Custos::start(&dir, &cfg);
    c.wait_log(
        &format!(
            "watchdog: cannot use {}: it is a FIFO, not a watchdog device (a character device) or a regular file; supervising without a hardware watchdog",
            dev.display()
        ),
        10,
    );
    c.wait_log("testd: running as pid", 10);
}

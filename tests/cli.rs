//! The command line contract: `custos check`, exit codes, usage.

mod common;

use std::fs;

use common::*;

#[test]
fn check_explains_a_valid_config_in_plain_words() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/board/rootfs/etc/custos.toml");
    let (code, out, _) = run_custos(&["check", "-c", cfg]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid: 1 service(s)"), "{out}");
    assert!(out.contains("web_server:"), "{out}");
    assert!(out.contains("pinned with its start time"), "{out}");
    assert!(out.contains("never a stop first"), "{out}");
    assert!(out.contains("only to the pinned PID"), "{out}");
    assert!(
        out.contains("check http 127.0.0.1:80/watchdog_page.html"),
        "{out}"
    );
}

#[test]
fn check_names_file_line_and_key_and_exits_1() {
    let dir = tempdir("cli-bad");
    let p = dir.join("bad.toml");
    fs::write(
        &p,
        "[[service]]\nname = \"x\"\npidfile = \"relative.pid\"\nstart = [\"/bin/true\"]\n",
    )
    .expect("write");
    let (code, _, err) = run_custos(&["check", "-c", p.to_str().expect("utf8")]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "{}:3: service.pidfile (service `x`): `relative.pid` is not an absolute path",
            p.display()
        )),
        "{err}"
    );
    // `run` refuses it too, with the same words, before touching anything.
    let (code, _, err) = run_custos(&["run", "-c", p.to_str().expect("utf8")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid config: not starting"), "{err}");
    let (code, _, err) = run_custos(&["check", "-c", "/nonexistent/custos.toml"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("/nonexistent/custos.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn check_warns_about_reboot_without_a_watchdog_and_still_exits_0() {
    let dir = tempdir("cli-warn");
    let p = dir.join("warn.toml");
    fs::write(
        &p,
        "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/true\"]\n[service.restart]\non_exhausted = \"reboot\"\n",
    )
    .expect("write");
    let (code, out, err) = run_custos(&["check", "-c", p.to_str().expect("utf8")]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}:6: warning: service.restart.on_exhausted (service `x`): \"reboot\" with no [watchdog]",
            p.display()
        )),
        "{err}"
    );
    assert!(out.contains("valid: 1 service(s)"), "{out}");
}

#[test]
fn usage_errors_exit_2_and_help_and_version_exit_0() {
    assert_eq!(run_custos(&[]).0, Some(2));
    assert_eq!(run_custos(&["frobnicate"]).0, Some(2));
    assert_eq!(run_custos(&["check", "-c"]).0, Some(2));
    let (code, out, _) = run_custos(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("custos run"));
    let (code, out, _) = run_custos(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("custos "));
}

#[test]
fn check_says_how_restarts_end_in_plain_words() {
    let dir = tempdir("cli-restart");
    let base = "[[service]]\nname = \"x\"\npidfile = \"/run/x.pid\"\nstart = [\"/bin/true\"]\n";
    let p = dir.join("default.toml");
    fs::write(&p, base).expect("write");
    let (code, out, _) = run_custos(&["check", "-c", p.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("a death after 10s of running is started again at once"),
        "{out}"
    );
    assert!(
        out.contains("it never gives up: it keeps trying every 1m and shows it as crash-looping"),
        "{out}"
    );
    // An old config that asked for a reboot, relying on the former default limit, keeps it.
    let p = dir.join("reboot.toml");
    fs::write(
        &p,
        format!("{base}[service.restart]\non_exhausted = \"reboot\"\n"),
    )
    .expect("write");
    let (code, out, _) = run_custos(&["check", "-c", p.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("after 10 restarts within 10m it gives up and reboots the board"),
        "{out}"
    );
}

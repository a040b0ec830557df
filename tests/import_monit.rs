//! `custos import-monit` against control files nobody here wrote: the seed story's, the
//! examples of Monit's manual, and every file Debian's monit package ships (its monitrc,
//! /etc/monit/conf-available/* and the templates they include). Each converts, the result
//! passes `custos check` (the real binary), and the summary of what was not converted is
//! asserted line by line.
//!
//! Debian's package is downloaded and unpacked by scripts/setup into target/monit-deb/root;
//! without it (no network on a fresh machine) the Debian tests print SKIP and why.
#![cfg(feature = "import-monit")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const DEB_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/monit-deb/root");

/// Converts `monitrc` into `out`, checks the result with `custos check`, and returns the
/// converted config and the summary lines (`FILE:LINE: not converted: WHAT (WHY)`).
fn convert(monitrc: &Path, out: &Path, root: Option<&Path>) -> (String, Vec<String>) {
    let mut args = vec![
        "import-monit",
        monitrc.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ];
    if let Some(r) = root {
        args.extend(["--root", r.to_str().expect("utf8")]);
    }
    let (code, _, err) = run_custos(&args);
    assert_eq!(code, Some(0), "import-monit {}: {err}", monitrc.display());
    let (code, described, cerr) = run_custos(&["check", "-c", out.to_str().expect("utf8")]);
    assert_eq!(
        code,
        Some(0),
        "custos check {}: {cerr}\n{}",
        out.display(),
        fs::read_to_string(out).unwrap_or_default()
    );
    assert!(described.contains(": valid: "), "{described}");
    let summary: Vec<String> = err
        .lines()
        .filter(|l| l.contains(": not converted: "))
        .map(str::to_string)
        .collect();
    assert!(
        err.lines().any(|l| l.starts_with("custos import-monit: ")
            && l.contains(&format!("{} directive(s) not converted", summary.len()))),
        "{err}"
    );
    (
        fs::read_to_string(out).expect("read the converted config"),
        summary,
    )
}

/// Each summary line is `FILE:LINE: not converted: WHAT (WHY)`; `expected` lists `LINE: WHAT`
/// in order, all of `file`.
fn assert_summary(summary: &[String], file: &Path, expected: &[&str]) {
    let prefixes: Vec<String> = expected
        .iter()
        .map(|e| {
            let (line, what) = e.split_once(": ").expect("LINE: WHAT");
            format!("{}:{line}: not converted: {what} (", file.display())
        })
        .collect();
    assert_summary_prefixes(summary, &prefixes);
}

fn assert_summary_prefixes(summary: &[String], prefixes: &[String]) {
    for (i, p) in prefixes.iter().enumerate() {
        let got = summary.get(i).map(String::as_str).unwrap_or("(nothing)");
        assert!(
            got.starts_with(p.as_str()) && got.ends_with(')'),
            "summary line {i}:\n  expected {p}…)\n  got      {got}\nall:\n{}",
            summary.join("\n")
        );
    }
    assert_eq!(
        summary.len(),
        prefixes.len(),
        "summary has {} lines, expected {}:\n{}",
        summary.len(),
        prefixes.len(),
        summary.join("\n")
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join("monit").join(name)
}

#[test]
fn the_seed_config_converts_to_what_the_readme_shows() {
    let dir = tempdir("monit-seed");
    let out = dir.join("custos.toml");
    let (toml, summary) = convert(&fixture("seed.monitrc"), &out, None);
    assert_summary(
        &summary,
        &fixture("seed.monitrc"),
        &[
            "4: matching \"vital_company_process\"",
            "8: matching \"web_server\"",
        ],
    );
    for want in [
        "name = \"WEB_SERVER\"",
        "pidfile = \"/var/run/web_server.pid\"",
        "start = [\"/etc/init.d/web_server\", \"start\"]",
        "stop = [\"/etc/init.d/web_server\", \"stop\"]",
        "kind = \"http\"",
        "port = 80",
        "path = \"/watchdog_page.html\"",
        "expect = \"woof woof still alive\"",
    ] {
        assert!(toml.contains(want), "missing `{want}`:\n{toml}");
    }
    // The README's "Coming from Monit" shows this very output (run from the repository's
    // root, with the relative path): the two must not drift apart.
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let (code, stdout, _) = custos_command()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["import-monit", "tests/fixtures/monit/seed.monitrc"])
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::new(),
            )
        })
        .expect("run custos");
    assert_eq!(code, Some(0));
    assert!(
        readme.contains(&format!("```toml\n{stdout}```\n")),
        "README.md's \"Coming from Monit\" does not show this output:\n{stdout}"
    );
}

#[test]
fn the_manuals_examples_convert() {
    let dir = tempdir("monit-manual");
    let rc = fixture("manual.monitrc");
    let (toml, summary) = convert(&rc, &dir.join("custos.toml"), None);
    assert_summary(
        &summary,
        &rc,
        &[
            "8: check process nginx without a start program",
            "20: as uid nobody gid nobody",
            "22: as uid 99 gid 99",
            "25: then alert",
            "30: if failed port 53 use type udp protocol dns then restart",
            "35: if failed unix /var/run/sophie then restart",
            "40: if failed host www.sol.no port 80 then alert",
            "41: if failed host shop.sol.no port 443 then alert",
            "42: if failed host chat.sol.no port 80 then alert",
            "47: if failed host www.sol.no port 80 protocol http then alert",
            "54: if failed host www.sol.no port 80 and send \"GET / HTTP/1.1\\r\\nHost: www.sol.no\\r\\n\\r\\n\" expect \"HTTP/[0-9\\.]{3} 200.*\" then alert",
            "60: check host www.tildeslash.com and its 1 directive(s)",
            "66: if failed host www.tildeslash.com port 80 then restart",
            "67: depends on apache_bin",
            "69: check file apache_bin and its 1 directive(s)",
            "72: check host mmonit.com and its 1 directive(s)",
            "83: then alert",
            "84: then alert",
            "86: then alert",
            "87: if failed port 5060 type udp protocol SIP target me@foo.bar and maxforward 10 then restart",
            "96: then alert",
            "97: then alert",
            "99: then alert",
            "100: if failed port 5060 type udp protocol SIP and target me@foo.bar maxforward 10 then restart",
            "108: then alert",
            "113: mode passive",
            "114: group database",
            "119: protocol tns",
            "122: group database",
            "127: then alert",
            "128: then alert",
            "130: then stop",
            "132: check file httpd.conf and its 1 directive(s)",
            "139: alert admin@bar on {nonexist, timeout} with mail-format { from: bofh@$HOST subject: apache $EVENT - $ACTION message: This event occurred on $HOST at $DATE. Your faithful employee, monit }",
            "147: if failed host www.tildeslash.com port 80 then restart",
            "148: depend httpd_bin",
            "149: group apache",
            "151: check file httpd_bin and its 7 directive(s)",
            "167: depends on oracle",
            "183: depends on oracle",
            "189: depends on oracle",
        ],
    );
    // What was carried over, in custos's words.
    for want in [
        // apache: start timeout, two tcp checks for 2 cycles of 30 s
        "start_timeout = \"1m\"",
        "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 443\nevery = \"30s\"   # Monit's cycle\nfailures = 2",
        // freeswitch: total memory > 2000 MB for 5 cycles then restart
        "kind = \"memory\"\nmax = \"2000MiB\"\nevery = \"30s\"   # Monit's cycle\nfailures = 5\n",
        // apache: total cpu > 80% for 5 cycles then restart
        "kind = \"cpu\"\nmax_percent = 80.0",
        "over = \"2m30s\"",
        // asterisk: a quoted argument stays one argument
        "stop = [\"/usr/sbin/asterisk\", \"-r\", \"-x\", \"shutdown now\"]",
        // dynamo: every 2 cycles
        "every = \"1m\"   # Monit's cycle x every",
        // names stay unique
        "name = \"apache-2\"",
        // nginx without a start program: commented out, not dropped
        "# [[service]]\n# name = \"nginx\"\n# pidfile = \"/var/run/nginx.pid\"",
    ] {
        if want == "over = \"2m30s\"" {
            // 5 cycles of 30 s: a whole number and one unit
            assert!(toml.contains("over = \"150s\""), "missing over 150s:\n{toml}");
            continue;
        }
        assert!(toml.contains(want), "missing `{want}`:\n{toml}");
    }
}

/// What Debian's monit 5.33 files do not carry over, file by file (`LINE: WHAT`).
const DEBIAN: &[(&str, &[&str])] = &[
    (
        "acpid",
        &[
            "2: group system",
            "3: group acpid",
            "7: depends on acpid_bin",
            "8: depends on acpid_rc",
            "10: check file acpid_bin and its 5 directive(s)",
            "14: check file acpid_rc and its 5 directive(s)",
        ],
    ),
    (
        "apache2",
        &[
            "2: group www",
            "3: group apache",
            "8: depend apache_bin",
            "9: depend apache_rc",
            "11: check file apache_bin and its 5 directive(s)",
            "15: check file apache_rc and its 5 directive(s)",
        ],
    ),
    (
        "at",
        &[
            "2: group system",
            "3: group atd",
            "7: depends on atd_bin",
            "8: depends on atd_rc",
            "10: check file atd_bin and its 5 directive(s)",
            "14: check file atd_rc and its 5 directive(s)",
        ],
    ),
    (
        "cron",
        &[
            "2: group system",
            "3: group crond",
            "7: depend cron_bin",
            "8: depend cron_rc",
            "9: depend cron_spool",
            "11: check file cron_bin and its 5 directive(s)",
            "15: check file cron_rc and its 5 directive(s)",
            "19: check directory cron_spool and its 4 directive(s)",
        ],
    ),
    (
        "mdadm",
        &[
            "2: group system",
            "3: group mdadm",
            "7: depend mdadm_bin",
            "8: depend mdadm_rc",
            "9: depend mdadm_conf",
            "11: check file mdadm_bin and its 5 directive(s)",
            "15: check file mdadm_conf and its 5 directive(s)",
            "19: check file mdadm_rc and its 5 directive(s)",
        ],
    ),
    (
        "memcached",
        &[
            "2: group cache",
            "3: group memcached",
            "6: protocol memcache",
            "7: then alert",
            "10: depend memcache_bin",
            "11: depend memcache_rc",
            "13: check file memcache_bin and its 5 directive(s)",
            "17: check file memcache_rc and its 5 directive(s)",
        ],
    ),
    (
        "mysql",
        &[
            "2: group database",
            "3: group mysql",
            "6: protocol mysql",
            "7: if failed unixsocket /var/run/mysqld/mysqld.sock protocol mysql for 3 times within 4 cycles then restart",
            "9: depend mysql_bin",
            "10: depend mysql_rc",
            "12: check file mysql_bin and its 5 directive(s)",
            "16: check file mysql_rc and its 5 directive(s)",
        ],
    ),
    (
        "nginx",
        &[
            "2: group www",
            "3: group nginx",
            "8: depend nginx_bin",
            "9: depend nginx_rc",
            "11: check file nginx_bin and its 5 directive(s)",
            "15: check file nginx_rc and its 5 directive(s)",
        ],
    ),
    (
        "openntpd",
        &[
            "2: group system",
            "3: group ntpd",
            "7: depend ntpd_bin",
            "8: depend ntpd_rc",
            "10: check file ntpd_bin and its 5 directive(s)",
            "14: check file ntpd_rc and its 5 directive(s)",
        ],
    ),
    (
        "openssh-server",
        &[
            "2: group system",
            "3: group sshd",
            "6: protocol ssh",
            "8: depend on sshd_bin",
            "9: depend on sftp_bin",
            "10: depend on sshd_rc",
            "11: depend on sshd_rsa_key",
            "12: depend on sshd_dsa_key",
            "14: check file sshd_bin and its 5 directive(s)",
            "18: check file sftp_bin and its 5 directive(s)",
            "22: check file sshd_rsa_key and its 5 directive(s)",
            "26: check file sshd_dsa_key and its 5 directive(s)",
            "30: check file sshd_ecdsa_key and its 5 directive(s)",
            "34: check file sshd_ed25519_key and its 5 directive(s)",
            "38: check file sshd_rc and its 5 directive(s)",
        ],
    ),
    (
        "pdns-recursor",
        &[
            "2: group system",
            "3: group dns",
            "4: group pdns-recursor",
            "7: if failed host 127.0.0.1 port 53 type udp protocol dns for 3 times within 4 cycles then restart",
            "9: depend pdns-recursor_bin",
            "10: depend pdns-recursor_rc",
            "12: check file pdns-recursor_bin and its 5 directive(s)",
            "16: check file pdns-recursor_rc and its 5 directive(s)",
        ],
    ),
    (
        "postfix",
        &[
            "2: group system",
            "3: group mail",
            "4: group postfix",
            "7: protocol smtp",
            "9: depend master_bin",
            "10: depend postfix_rc",
            "11: depend postdrop_bin",
            "12: depend postqueue_bin",
            "13: depend master_cf",
            "14: depend main_cf",
            "16: check file master_bin and its 5 directive(s)",
            "20: check file postdrop_bin and its 5 directive(s)",
            "27: check file postqueue_bin and its 5 directive(s)",
            "34: check file master_cf and its 5 directive(s)",
            "38: check file main_cf and its 5 directive(s)",
            "42: check file postfix_rc and its 5 directive(s)",
        ],
    ),
    (
        "rsyslog",
        &[
            "2: group system",
            "3: group rsyslogd",
            "7: depend on rsyslogd_bin",
            "8: depend on rsyslogd_rc",
            "9: depend on rsyslog_file",
            "11: check file rsyslogd_bin and its 5 directive(s)",
            "15: check file rsyslogd_rc and its 5 directive(s)",
            "19: check file rsyslog_file and its 5 directive(s)",
        ],
    ),
    (
        "smartmontools",
        &[
            "2: group system",
            "3: group smartd",
            "7: depend smartd_bin",
            "8: depend smartd_rc",
            "10: check file smartd_bin and its 5 directive(s)",
            "14: check file smartd_rc and its 5 directive(s)",
        ],
    ),
    (
        "snmpd",
        &["4: if failed host localhost port 161 type udp then restart"],
    ),
];

/// The unpacked package, or None (with the reason printed) when scripts/setup could not
/// fetch it.
fn debian_root() -> Option<PathBuf> {
    let root = PathBuf::from(DEB_ROOT);
    if root.join("etc/monit/monitrc").is_file() {
        Some(root)
    } else {
        eprintln!(
            "SKIP: Debian's monit package is not unpacked in {DEB_ROOT} (scripts/setup fetches it with apt-get download; no network?)"
        );
        None
    }
}

#[test]
fn every_snippet_debian_ships_converts() {
    let Some(root) = debian_root() else { return };
    let dir = tempdir("monit-debian");
    let avail = root.join("etc/monit/conf-available");
    let mut names: Vec<String> = fs::read_dir(&avail)
        .expect("conf-available")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let listed: Vec<&str> = DEBIAN.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, listed,
        "Debian ships other snippets than this test knows"
    );
    for (name, expected) in DEBIAN {
        let file = avail.join(name);
        // --root: the snippets include /etc/monit/templates/* from the package, not this host.
        let (toml, summary) = convert(&file, &dir.join(format!("{name}.toml")), Some(&root));
        assert_summary(&summary, &file, expected);
        assert!(toml.contains("[[service]]\nname = "), "{name}:\n{toml}");
    }
}

#[test]
fn debians_monitrc_with_every_snippet_enabled_converts() {
    let Some(root) = debian_root() else { return };
    // A copy of the package's /etc/monit with every snippet enabled, as `ln -s
    // ../conf-available/X conf-enabled/` does on a real system.
    let dir = tempdir("monit-debian-all");
    let etc = dir.join("root/etc/monit");
    fs::create_dir_all(etc.join("conf-enabled")).expect("mkdir");
    fs::create_dir_all(etc.join("conf.d")).expect("mkdir");
    for sub in ["conf-available", "templates"] {
        fs::create_dir_all(etc.join(sub)).expect("mkdir");
        for e in fs::read_dir(root.join("etc/monit").join(sub)).expect("read_dir") {
            let e = e.expect("entry");
            fs::copy(e.path(), etc.join(sub).join(e.file_name())).expect("copy");
        }
    }
    fs::copy(root.join("etc/monit/monitrc"), etc.join("monitrc")).expect("copy monitrc");
    for (name, _) in DEBIAN {
        std::os::unix::fs::symlink(
            format!("../conf-available/{name}"),
            etc.join("conf-enabled").join(name),
        )
        .expect("symlink");
    }
    let monitrc = etc.join("monitrc");
    let (toml, summary) = convert(&monitrc, &dir.join("custos.toml"), Some(&dir.join("root")));
    let mut prefixes: Vec<String> = [
        "27: set log",
        "41: set idfile",
        "50: set statefile",
        "94: set eventqueue",
    ]
    .iter()
    .map(|e| {
        let (line, what) = e.split_once(": ").expect("LINE: WHAT");
        format!("{}:{line}: not converted: {what} (", monitrc.display())
    })
    .collect();
    for (name, expected) in DEBIAN {
        let file = etc.join("conf-enabled").join(name);
        for e in *expected {
            let (line, what) = e.split_once(": ").expect("LINE: WHAT");
            prefixes.push(format!(
                "{}:{line}: not converted: {what} (",
                file.display()
            ));
        }
    }
    assert_summary_prefixes(&summary, &prefixes);
    // set daemon 120: the cycle of every check and restart window.
    assert!(toml.contains("# set daemon 120"), "{toml}");
    assert!(toml.contains("every = \"2m\"   # Monit's cycle"), "{toml}");
    // apache2: if 4 restarts within 20 cycles then timeout; its http check
    assert!(
        toml.contains("max_restarts = 4\nwindow = \"40m\"\non_exhausted = \"give-up\""),
        "{toml}"
    );
    assert!(
        toml.contains("kind = \"http\"\nhost = \"127.0.0.1\"\nport = 80\npath = \"/server-status\"\ntimeout = \"25s\"\nevery = \"2m\"   # Monit's cycle\nfailures = 4   # 4 times within 5 cycles: custos counts 4 failures in a row"),
        "{toml}"
    );
    // conf.d/* matches nothing: said, not an error.
    assert!(
        toml.contains("include /etc/monit/conf.d/* matched no file"),
        "{toml}"
    );
    let (code, described, _) = run_custos(&[
        "check",
        "-c",
        dir.join("custos.toml").to_str().expect("utf8"),
    ]);
    assert_eq!(code, Some(0));
    assert!(described.contains("valid: 15 service(s)"), "{described}");
}

#[test]
fn bad_input_names_file_and_line_and_exits_1() {
    let dir = tempdir("monit-bad");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unterminated",
            "set daemon 30\ncheck process a with pidfile \"/run/a.pid\n",
            ":2: error: unterminated string",
        ),
        (
            "relative-start",
            "check process a with pidfile /run/a.pid\n  start program = \"service a start\"\n",
            ":2: error: start program `service a start` does not start with an absolute path",
        ),
        (
            "no-identity",
            "check process a\n  start program = \"/etc/init.d/a start\"\n",
            ":1: error: `check process` needs `with pidfile PATH` or `matching REGEX`",
        ),
        (
            "garbage",
            "set daemon 30\nhello world\n",
            ":2: error: `hello`: expected `start delay N` or a new statement",
        ),
        (
            "self-include",
            "include self-include\n",
            ":1: error: include of ",
        ),
        (
            "nul",
            "set daemon 30\ncheck process a with pidfile \"/run/\0a.pid\"\n",
            ":2: error: a NUL byte",
        ),
        (
            "not-a-number",
            "set daemon often\n",
            ":1: error: `set daemon` needs a number of seconds",
        ),
    ];
    for (name, text, want) in cases {
        let p = dir.join(name);
        fs::write(&p, text).expect("write");
        let out = dir.join(format!("{name}.toml"));
        let (code, stdout, err) = run_custos(&[
            "import-monit",
            p.to_str().expect("utf8"),
            "-o",
            out.to_str().expect("utf8"),
        ]);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert!(
            err.contains(&format!("{}{want}", p.display())),
            "{name}: expected `{}{want}` in:\n{err}",
            p.display()
        );
        assert!(!out.exists(), "{name}: nothing is written on an error");
    }
}

#[test]
fn includes_are_relative_to_their_file_and_bounded() {
    let dir = tempdir("monit-include");
    fs::create_dir_all(dir.join("conf.d/sub")).expect("mkdir");
    fs::write(
        dir.join("monitrc"),
        "set daemon 10\ninclude conf.d/*.rc\ninclude 'conf.d/none-*'\n",
    )
    .expect("write");
    fs::write(
        dir.join("conf.d/a.rc"),
        "check process a with pidfile /run/a.pid\n  start program = \"/etc/init.d/a start\"\n  include ../tests.inc\n",
    )
    .expect("write");
    fs::write(dir.join("conf.d/b.rc~"), "this is not read\n").expect("write");
    fs::write(
        dir.join("tests.inc"),
        "  if failed port 8080 for 3 cycles then restart\n  if children > 10 then alert\n",
    )
    .expect("write");
    let (toml, summary) = convert(&dir.join("monitrc"), &dir.join("out.toml"), None);
    assert_summary(
        &summary,
        // The path as the include reached it.
        &dir.join("conf.d/../tests.inc"),
        &["2: if children > 10 then alert"],
    );
    assert!(
        toml.contains("port = 8080\nevery = \"10s\"   # Monit's cycle\nfailures = 3"),
        "{toml}"
    );
    assert!(
        toml.contains("include conf.d/none-* matched no file"),
        "{toml}"
    );
    // A file that includes itself ends at the depth bound, with an error, not a hang.
    fs::write(dir.join("loop.rc"), "include loop.rc\n").expect("write");
    let (code, _, err) = run_custos(&["import-monit", dir.join("loop.rc").to_str().expect("utf8")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is nested more than 8 deep"), "{err}");
}

#[test]
fn a_url_test_becomes_an_http_check() {
    let dir = tempdir("monit-url");
    let rc = dir.join("monitrc");
    fs::write(
        &rc,
        "set daemon 5\ncheck process app with pidfile /run/app.pid\n  start program = \"/etc/init.d/app start\"\n  if failed url http://127.0.0.1:8080/health and content == \"ok\" for 3 cycles then restart\n  if failed url https://127.0.0.1/ then restart\n",
    )
    .expect("write");
    let (toml, summary) = convert(&rc, &dir.join("out.toml"), None);
    assert_summary(
        &summary,
        &rc,
        &["5: if failed url https://127.0.0.1/ then restart"],
    );
    assert!(
        toml.contains("kind = \"http\"\nhost = \"127.0.0.1\"\nport = 8080\npath = \"/health\"\nexpect = \"ok\"\nevery = \"5s\"   # Monit's cycle\nfailures = 3\n"),
        "{toml}"
    );
}

#[test]
fn a_fifth_check_is_not_converted_and_said_once() {
    let dir = tempdir("monit-fifth");
    let rc = dir.join("monitrc");
    fs::write(
        &rc,
        "check process app with pidfile /run/app.pid\n  start program = \"/etc/init.d/app start\"\n  if failed port 1 then restart\n  if failed port 2 then restart\n  if failed port 3 then restart\n  if failed port 4 then restart\n  if failed port 5 protocol smtp then alert\n",
    )
    .expect("write");
    let (toml, summary) = convert(&rc, &dir.join("out.toml"), None);
    assert_summary(
        &summary,
        &rc,
        &["7: if failed port 5 protocol smtp then alert"],
    );
    assert!(
        summary[0].contains("at most 4 checks per service"),
        "{summary:?}"
    );
    assert!(!toml.contains("port = 5\n"), "{toml}");
}

//! A fleet's view: the Prometheus text file read by the real node_exporter from Debian
//! (prometheus-node-exporter, installed by scripts/setup) on 127.0.0.1, and the same text from
//! `custos status --prometheus`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

fn metrics_config(dir: &Path, textfile: &Path) -> String {
    format!(
        "{}\n[metrics]\ntextfile = \"{}\"\nevery = \"1s\"\n",
        testd_config(dir, ""),
        textfile.display()
    )
}

/// node_exporter with only its textfile collector, on 127.0.0.1; killed (by its PID) on drop.
struct NodeExporter {
    child: Child,
    addr: SocketAddr,
}

impl NodeExporter {
    fn start(textfile_dir: &Path, log: &Path) -> NodeExporter {
        // A free port: bound, read, released, then given to node_exporter.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address={addr}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile_dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(fs::File::create(log).expect("log"))
            .stderr(fs::File::create(log.with_extension("err")).expect("log"))
            .spawn()
            .expect("spawn node_exporter");
        NodeExporter { child, addr }
    }

    /// GET /metrics over HTTP/1.0, bounded: 5 s to connect, 5 s per read, 1 MiB.
    fn scrape(&self) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .ok()?;
        let mut body = Vec::new();
        s.take(1 << 20).read_to_end(&mut body).ok()?;
        let text = String::from_utf8_lossy(&body).into_owned();
        text.starts_with("HTTP/1.0 200").then_some(text)
    }

    /// Scrapes until `want` is in the answer (at most `secs`); the last answer either way.
    fn scrape_until(&self, want: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        while Instant::now() < end {
            if let Some(t) = self.scrape() {
                if t.contains(want) {
                    return t;
                }
                last = t;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_node_exporter() -> bool {
    if Path::new(NODE_EXPORTER).exists() {
        return true;
    }
    println!(
        "SKIP: {NODE_EXPORTER} is not installed (scripts/setup installs prometheus-node-exporter)"
    );
    false
}

fn textfile_dir(dir: &Path) -> PathBuf {
    let d = dir.join("textfile");
    fs::create_dir_all(&d).expect("textfile dir");
    d
}

#[test]
fn node_exporter_reads_the_metrics_with_the_right_values_after_a_crash() {
    if !have_node_exporter() {
        return;
    }
    let dir = tempdir("fleet-node-exporter");
    let tf = textfile_dir(&dir);
    let prom = tf.join("custos.prom");
    // A regular file stands in for /dev/watchdog: custos writes a byte per pet to it.
    fs::write(dir.join("wd"), "").expect("file");
    let config = format!(
        "{}[watchdog]\ndevice = \"{}/wd\"\ntimeout = \"3s\"\npet_every = \"100ms\"\n",
        metrics_config(&dir, &prom),
        dir.display()
    );
    let mut c = Custos::start(&dir, &config);
    c.wait_running("testd", 10);
    c.wait_log("watchdog: first keepalive", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    let new = wait_new_pid(&dir.join("testd.pid"), pid, 10);
    c.wait_service("testd", 10, |s| {
        s["state"] == "running" && s["pid"] == i64::from(new)
    });

    let ne = NodeExporter::start(&tf, &dir.join("node_exporter.log"));
    // node_exporter sorts the labels by name.
    let death = if emulated() {
        // No subreaper under qemu-user: the cause is unknown to custos.
        r#"custos_service_deaths_total{cause="unknown",service="testd",signal=""} 1"#
    } else {
        r#"custos_service_deaths_total{cause="killed",service="testd",signal="SIGKILL"} 1"#
    };
    // The textfile is rewritten on change but at most every `every` (1 s): the page may show
    // the death a moment before the restart that follows it.
    let page = ne.scrape_until(r#"custos_service_restarts_total{service="testd"} 1"#, 15);
    for want in [
        death,
        r#"custos_service_restarts_total{service="testd"} 1"#,
        r#"custos_service_up{service="testd"} 1"#,
        r#"custos_service_state{service="testd",state="running"} 1"#,
        r#"# TYPE custos_service_deaths_total counter"#,
        r#"# HELP custos_service_up "#,
        r#"custos_info{version=""#,
        r#"custos_service_last_death_timestamp_seconds{service="testd"} "#,
        "node_textfile_scrape_error 0",
        "# TYPE custos_watchdog_pets_total counter",
    ] {
        assert!(
            page.contains(want),
            "no `{want}` in node_exporter's page:\n{page}"
        );
    }
    let value = |name: &str| -> f64 {
        let line = page
            .lines()
            .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
            .unwrap_or_else(|| panic!("no {name} in the page:\n{page}"));
        line[name.len() + 1..].parse().expect("a number")
    };
    assert!(value("custos_watchdog_pets_total") >= 1.0, "{page}");
    // Petted every 100 ms; whole seconds.
    assert!(
        value("custos_watchdog_last_pet_age_seconds") <= 1.0,
        "{page}"
    );
    // No temporary file is left where node_exporter looks.
    let names: Vec<_> = fs::read_dir(&tf)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("custos.prom")]);

    // The same text, once, through the control socket.
    let Reply { code, out, .. } = c.ctl(&["status", "--prometheus"]);
    assert_eq!(code, Some(0), "{out}");
    // Apart from the watchdog's lines, which move with every pet.
    let steady = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("custos_watchdog_"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        steady(&out),
        steady(&fs::read_to_string(&prom).expect("the file"))
    );
    assert!(out.contains("custos_watchdog_pets_total "), "{out}");
    c.stop();
    kill(new, libc::SIGKILL);
}

#[test]
fn a_fifo_in_place_of_the_temporary_file_is_refused_not_waited_on() {
    let dir = tempdir("fleet-fifo");
    let tf = textfile_dir(&dir);
    let prom = tf.join("custos.prom");
    let tmp = tf.join(".custos.prom.tmp");
    let c_tmp = std::ffi::CString::new(tmp.to_str().expect("utf-8")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_tmp.as_ptr(), 0o600) }, 0);
    let mut c = Custos::start(&dir, &metrics_config(&dir, &prom));
    c.wait_running("testd", 10);
    let log = c.wait_log("metrics: cannot write", 10);
    assert!(log.contains(&prom.display().to_string()), "{log}");
    // The loop goes on, and the FIFO (custos's own temporary name) gives way to the file.
    let Reply { code, out, .. } = c.ctl(&["status"]);
    assert_eq!(code, Some(0), "{out}");
    c.wait_log("metrics: ", 10);
    c.wait_log(&format!("metrics: {} is written again", prom.display()), 10);
    let text = fs::read_to_string(&prom).expect("the file");
    assert!(
        text.contains(r#"custos_service_up{service="testd"} 1"#),
        "{text}"
    );
    c.stop();
    let pid = wait_pid(&dir.join("testd.pid"), 1);
    kill(pid, libc::SIGKILL);
}

#[test]
fn a_metrics_section_without_a_textfile_is_refused() {
    let dir = tempdir("fleet-bad");
    let cfg = dir.join("custos.toml");
    fs::write(
        &cfg,
        format!("{}\n[metrics]\nevery = \"500ms\"\n", testd_config(&dir, "")),
    )
    .expect("config");
    let out = custos_command()
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .expect("run check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("metrics.every: 500ms is shorter than the minimum 1s"),
        "{err}"
    );
    assert!(err.contains("metrics.textfile: missing"), "{err}");
}

/// A python3 with the jsonschema module (Debian's python3-jsonschema, installed by
/// scripts/setup), or None.
fn python_with_jsonschema() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import jsonschema"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Validates each (schema file, JSON text) pair; the validator's errors if any.
fn validate(py: &str, docs: &[(&str, &str)], dir: &Path) -> Result<(), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut args = Vec::new();
    for (n, (schema, json)) in docs.iter().enumerate() {
        let f = dir.join(format!("doc{n}.json"));
        fs::write(&f, json).expect("write doc");
        args.push(format!("{root}/schema/{schema}"));
        args.push(f.display().to_string());
    }
    let script = r#"
import json, sys, jsonschema
bad = 0
it = iter(sys.argv[1:])
for schema, doc in zip(it, it):
    s = json.load(open(schema))
    jsonschema.Draft202012Validator.check_schema(s)
    for e in jsonschema.Draft202012Validator(s).iter_errors(json.load(open(doc))):
        bad += 1
        print(f"{doc} against {schema}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
sys.exit(1 if bad else 0)
"#;
    let out = Command::new(py)
        .args(["-c", script])
        .args(&args)
        .output()
        .expect("run python3");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn status_and_events_json_validate_against_the_schemas() {
    let Some(py) = python_with_jsonschema() else {
        println!("SKIP: no python3 with jsonschema (scripts/setup installs python3-jsonschema)");
        return;
    };
    let dir = tempdir("fleet-schema");
    let config = format!(
        r#"{}vital = true
[[service.check]]
kind = "tcp"
host = "127.0.0.1"
port = 1

[[service]]
name = "failing"
pidfile = "{dir}/failing.pid"
start = ["/bin/false"]

[boot]
healthy_after = "1s"
on_healthy = ["/bin/true"]
"#,
        testd_config(&dir, ""),
        dir = dir.display()
    );
    let mut c = Custos::start(&dir, &config);
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    let new = wait_new_pid(&dir.join("testd.pid"), pid, 10);
    c.wait_service("testd", 10, |s| {
        s["state"] == "running" && s["pid"] == i64::from(new)
    });

    let mut docs = Vec::new();
    for (schema, args) in [
        ("status.schema.json", &["status", "--json"][..]),
        ("events.schema.json", &["events", "--json"][..]),
        ("events.schema.json", &["why", "testd", "--json"][..]),
        ("events.schema.json", &["why", "failing", "--json"][..]),
    ] {
        let Reply { code, out, .. } = c.ctl(args);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        docs.push((schema, out));
    }
    assert!(
        docs[0].1.contains(r#""schema":"custos.status/1""#),
        "{}",
        docs[0].1
    );
    assert!(docs[1].1.contains(r#""kind":"died""#), "{}", docs[1].1);
    let pairs: Vec<(&str, &str)> = docs.iter().map(|(s, j)| (*s, j.as_str())).collect();
    if let Err(e) = validate(py, &pairs, &dir) {
        panic!("real output does not match the schema:\n{e}");
    }
    // The schemas are strict: an unknown field is an error.
    let drifted = docs[0]
        .1
        .replacen(r#"{"ok":true,"#, r#"{"ok":true,"new_field":1,"#, 1);
    let e = validate(py, &[("status.schema.json", &drifted)], &dir)
        .expect_err("a field the schema does not know is refused");
    assert!(e.contains("new_field"), "{e}");
    c.stop();
    kill(new, libc::SIGKILL);
}

#[test]
fn a_reload_that_changes_the_metrics_says_it_takes_effect_at_the_next_start() {
    let dir = tempdir("fleet-reload");
    let tf = textfile_dir(&dir);
    let prom = tf.join("custos.prom");
    let mut c = Custos::start(&dir, &metrics_config(&dir, &prom));
    c.wait_running("testd", 10);
    c.wait_log("control: listening on", 10);
    fs::write(
        &c.config,
        metrics_config(&dir, &prom).replace("every = \"1s\"", "every = \"1m\""),
    )
    .expect("config");
    let Reply { code, out, .. } = c.ctl(&["reload"]);
    assert_eq!(code, Some(0), "{out}");
    c.wait_log(
        "metrics: [metrics] changed: the new settings take effect when custos is restarted",
        5,
    );
    c.stop();
    let pid = wait_pid(&dir.join("testd.pid"), 1);
    kill(pid, libc::SIGKILL);
}

/// Prometheus's own linter, `promtool check metrics`, finds nothing to say about the textfile
/// (names, HELP and TYPE lines, units, counters' `_total`), with a death's labels in it.
#[test]
fn promtool_finds_nothing_to_lint_in_the_metrics() {
    let promtool =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/prometheus-deb/root/usr/bin/promtool");
    if !promtool.exists() {
        println!(
            "SKIP: {} is missing (scripts/setup unpacks Debian's prometheus package there)",
            promtool.display()
        );
        return;
    }
    let dir = tempdir("fleet-promtool");
    let tf = textfile_dir(&dir);
    let prom = tf.join("custos.prom");
    let c = Custos::start(&dir, &metrics_config(&dir, &prom));
    c.wait_running("testd", 10);
    let pid = wait_pid(&dir.join("testd.pid"), 5);
    kill(pid, libc::SIGKILL);
    wait_new_pid(&dir.join("testd.pid"), pid, 10);
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let t = fs::read_to_string(&prom).unwrap_or_default();
        if t.contains("custos_service_deaths_total{") {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no death in the textfile within 15 s:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut p = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = p.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\nthe file:\n{text}",
        out.status
    );
}

use super::glob::fnmatch;
use super::lex::lex;
use super::values::{parse_url, regex_literal, split_argv};
use super::*;

#[test]
fn globs_match_like_the_shell() {
    assert!(fnmatch(b"*", b"apache2"));
    assert!(fnmatch(b"*.conf", b"a.conf"));
    assert!(!fnmatch(b"*.conf", b"a.conf~"));
    assert!(fnmatch(b"a?c", b"abc"));
    assert!(fnmatch(b"[a-c]x", b"bx"));
    assert!(!fnmatch(b"[!a-c]x", b"bx"));
    assert!(fnmatch(b"[", b"["));
}

#[test]
fn argv_splits_on_spaces_with_quotes() {
    assert_eq!(
        split_argv("/usr/sbin/asterisk -r -x 'shutdown now'"),
        ["/usr/sbin/asterisk", "-r", "-x", "shutdown now"]
    );
    assert_eq!(split_argv("  /bin/a   b "), ["/bin/a", "b"]);
}

/// Mutated control files (chars replaced, spans deleted, lines repeated) never panic the
/// importer, and every config it writes loads as `custos check` loads it.
#[test]
fn mutated_control_files_give_an_error_or_a_valid_config() {
    let corpus = [
        include_str!("../../tests/fixtures/monit/manual.monitrc"),
        include_str!("../../tests/fixtures/monit/seed.monitrc"),
        "set daemon 10 with start delay 5\nset log syslog\ncheck process a with pidfile /run/a.pid every 3 cycles\n start program = \"/bin/a -x 'y z'\" as uid 1 with timeout 700 seconds\n stop program = \"/bin/a stop\" with timeout 2 cycles\n if failed url http://127.0.0.1:81/h and content == \"o.k\" for 2 times within 3 cycles then restart else if succeeded then alert\n if failed port 9 status != 200 then exec \"/bin/x\"\n if totalmem > 1.5 GB then restart\n if memory > 50% then alert\n if cpu > 300% for 4000 cycles then restart\n if 65 restarts within 2 cycles then unmonitor\n if 3 restarts within 9000 cycles then timeout\n",
    ];
    let dir = std::env::temp_dir().join(format!("custos-monit-mut-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (rc, out) = (dir.join("monitrc"), dir.join("custos.toml"));
    let pieces = [
        "\"",
        "{",
        "}",
        "\n",
        " ",
        "#",
        "=",
        ">",
        "%",
        "0",
        "99999999999999999999",
        "if ",
        " then ",
        " check process x ",
        " include ",
        " cycles ",
        " restart ",
        "'",
        "\\",
        "é",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let (mut ok, mut errors) = (0, 0);
    for i in 0..1500 {
        let mut text: Vec<char> = corpus[i % corpus.len()].chars().collect();
        for _ in 0..1 + rnd(4) {
            let at = rnd(text.len());
            match rnd(3) {
                0 => {
                    let p: Vec<char> = pieces[rnd(pieces.len())].chars().collect();
                    text.splice(at..at, p);
                }
                1 => {
                    let end = (at + rnd(40)).min(text.len());
                    text.drain(at..end);
                }
                _ => {
                    let end = (at + rnd(80)).min(text.len());
                    let copy: Vec<char> = text[at..end].to_vec();
                    let to = rnd(text.len());
                    text.splice(to..to, copy);
                }
            }
        }
        let text: String = text.into_iter().collect();
        std::fs::write(&rc, &text).expect("write");
        match import(&rc, None) {
            Ok(imp) => {
                ok += 1;
                std::fs::write(&out, &imp.toml).expect("write");
                if let Err(e) = crate::config::load(&out) {
                    panic!(
                        "input:\n{text}\n\noutput:\n{}\n\ndoes not load: {e}",
                        imp.toml
                    );
                }
            }
            Err(e) => {
                errors += 1;
                assert!(e.contains(": error: "), "{e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok > 100 && errors > 100, "ok {ok}, errors {errors}");
}

#[test]
fn urls_split_into_host_port_path() {
    assert_eq!(
        parse_url("http://127.0.0.1:8080/health?x=1"),
        Some(("127.0.0.1".into(), 8080, "/health?x=1".into()))
    );
    assert_eq!(
        parse_url("http://localhost"),
        Some(("localhost".into(), 80, "/".into()))
    );
    assert_eq!(parse_url("https://127.0.0.1/"), None);
    assert_eq!(parse_url("http://user:pw@127.0.0.1/"), None);
    assert_eq!(parse_url("http://127.0.0.1:x/"), None);
}

#[test]
fn regex_literal_text() {
    assert_eq!(regex_literal("web_server"), "web_server");
    assert_eq!(
        regex_literal("^/usr/bin/python3 .*app\\.py$"),
        "/usr/bin/python3"
    );
    assert_eq!(regex_literal("mongo"), "mongo");
    assert_eq!(regex_literal(".*"), "");
}

/// Found by the fuzzer: a second `if N restarts within M cycles` in one service wrote the
/// restart keys twice, and the converted config did not load ("duplicate key").
#[test]
fn a_second_restart_limit_is_said_not_converted_and_the_config_loads() {
    let path = Path::new("/nonexistent-custos-test/monitrc");
    let text = "check process a with pidfile /run/a.pid\n start program = \"/bin/a\"\n \
                if 3 restarts within 5 cycles then unmonitor\n \
                if 4 restarts within 6 cycles then timeout\n";
    let out = import_text(path, text, None).expect("converts");
    assert!(
        crate::config::parse_bytes(out.toml.as_bytes()).is_ok(),
        "{}",
        out.toml
    );
    assert_eq!(
        out.toml.matches("max_restarts = 3").count(),
        1,
        "{}",
        out.toml
    );
    assert!(
        out.toml
            .contains("not converted (/nonexistent-custos-test/monitrc:4)"),
        "{}",
        out.toml
    );
    let crash = include_bytes!("../../tests/fixtures/fuzz/monit-crash-1");
    let text = std::str::from_utf8(crash).expect("utf-8");
    let root = Path::new("/nonexistent-custos-test-root");
    if let Ok(out) = import_text(path, text, Some(root)) {
        assert!(
            crate::config::parse_bytes(out.toml.as_bytes()).is_ok(),
            "{}",
            out.toml
        );
    }
}

#[test]
fn unterminated_string_is_an_error_with_its_line() {
    let e = lex("set daemon 30\ncheck process a with pidfile \"/x\n", 0).unwrap_err();
    assert_eq!(e.0, 2);
}

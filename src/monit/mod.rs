//! `custos import-monit`: reads a Monit control file (monitrc) and writes a custos config.
//!
//! Monit's control file is free-format and token-oriented: `#` comments, double- or
//! single-quoted strings, `{…}` blocks (alert lists, mail formats), noise words that are
//! ignored (`if`, `and`, `with(in)`, `has`, `us(ing|e)`, `on(ly)`, `then`, `for`, `of`),
//! `include GLOB` anywhere, and statements that begin with `set` or `check`.
//!
//! The importer carries over what has a custos equivalent and, for every directive it cannot,
//! writes a TOML comment where the directive was (in its service, or at the top for global
//! settings) and one summary line: `FILE:LINE: not converted: WHAT (why)`. Nothing is dropped
//! silently. Bad input (an unterminated string, a `check process` without a name, a start
//! program that is not an absolute path) is an error `FILE:LINE: error: …`.
//!
//! Reading is bounded: each file at most `MAX_FILE_BYTES`, includes at most `MAX_INCLUDE_DEPTH`
//! deep and `MAX_FILES` files in all, `MAX_TOKENS` tokens in all. This runs once, from the
//! command line, never on the supervisor's loop.

//!
//! The steps, one file each: `lex` (tokens, includes through `glob`), `directive` (statements
//! and directives), `convert` (settings and the `check` line), `service` (a service's
//! directives), `checks` (tests that become checks; `port` reads a port test's options),
//! `values` (Monit values read as custos's) and `write` (the TOML written and the
//! not-converted report).

use std::fmt::Write as _;
use std::path::Path;

mod checks;
mod convert;
mod directive;
mod glob;
mod lex;
mod port;
mod service;
mod values;
mod write;

use convert::Converter;
use directive::{statements, Stmt};
use lex::Lexer;
use write::push_line;

/// Largest control file (or included file) read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Includes nested deeper than this are an error (a file that includes itself ends here).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Files read in all, the control file and every include.
pub const MAX_FILES: usize = 256;
/// Tokens read in all.
pub const MAX_TOKENS: usize = 200_000;
/// Monit's cycle when the control file has no `set daemon`.
const DEFAULT_CYCLE_SECS: u64 = 30;

/// What the import produced: the config text and one summary line per directive not carried
/// over.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub not_converted: Vec<String>,
    /// Services written (not commented out).
    pub services: usize,
}

/// Converts the control file at `path`. `root`, when given, is prepended to absolute include
/// paths (a board's root filesystem unpacked on a workstation).
pub fn import(path: &Path, root: Option<&Path>) -> Result<Imported, String> {
    import_with(path, None, root)
}

/// Converts `text` as if it were the control file at `path` (its includes are still read from
/// disk, relative to `path`). For the fuzzer and tests.
pub fn import_text(path: &Path, text: &str, root: Option<&Path>) -> Result<Imported, String> {
    import_with(path, Some(text), root)
}

fn import_with(path: &Path, text: Option<&str>, root: Option<&Path>) -> Result<Imported, String> {
    let mut lx = Lexer {
        files: Vec::new(),
        tokens: Vec::new(),
        root: root.map(Path::to_path_buf),
        notes: Vec::new(),
    };
    match text {
        Some(t) => lx.lex_file(path, t, 0)?,
        None => lx.read_file(path, 0, None)?,
    }
    let stmts = statements(&lx.tokens, &lx.files)?;
    let mut conv = Converter {
        files: &lx.files,
        cycle: DEFAULT_CYCLE_SECS,
        cycle_given: false,
        header: Vec::new(),
        body: String::new(),
        notes: Vec::new(),
        names: Vec::new(),
        services: 0,
        log_syslog: false,
    };
    // The cycle applies to every service wherever `set daemon` is written.
    for s in &stmts {
        if let Stmt::Set(d) = s {
            conv.set_daemon_cycle(d);
        }
    }
    for n in &lx.notes {
        conv.header.push(format!("# {n}"));
    }
    for s in &stmts {
        match s {
            Stmt::Set(d) => conv.set(d)?,
            Stmt::Check(c) => conv.check(c)?,
        }
    }
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# custos config converted from {} by `custos import-monit`.",
        path.display()
    );
    toml.push_str(
        "# Review every \"not converted\" comment; `custos check -c FILE` says what custos will do.\n",
    );
    if !conv.cycle_given {
        let _ = writeln!(
            toml,
            "# No `set daemon`: Monit cycles are counted as {DEFAULT_CYCLE_SECS}s each."
        );
    }
    for h in &conv.header {
        push_line(&mut toml, h);
    }
    if conv.log_syslog {
        toml.push_str("\n[supervisor]\nlog = \"syslog\"\n");
    }
    toml.push_str(&conv.body);
    Ok(Imported {
        toml,
        not_converted: conv.notes,
        services: conv.services,
    })
}

#[cfg(test)]
mod tests {
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
}

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
//! directives), `checks` (tests that become checks), `values` (Monit values read as custos's)
//! and `write` (the TOML written and the not-converted report).

use std::fmt::Write as _;
use std::path::Path;

mod checks;
mod convert;
mod directive;
mod glob;
mod lex;
mod service;
#[cfg(test)]
mod tests;
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

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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::limits::{MAX_ARGV, MAX_ARG_LEN, MAX_CHECKS, MAX_NAME, MAX_SERVICES};

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

// ---------------------------------------------------------------------------------------------
// Tokens.

#[derive(Debug, Clone)]
struct Tok {
    text: String,
    /// A quoted string: never a keyword, never a noise word.
    quoted: bool,
    file: usize,
    line: u32,
}

impl Tok {
    /// This token is the keyword `kw` (case-insensitive, unquoted).
    fn is(&self, kw: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(kw)
    }
    fn kw(&self) -> String {
        if self.quoted {
            String::new()
        } else {
            self.text.to_ascii_lowercase()
        }
    }
}

struct Lexer {
    files: Vec<PathBuf>,
    tokens: Vec<Tok>,
    root: Option<PathBuf>,
    /// Notes about includes (what matched nothing), written at the top of the config.
    notes: Vec<String>,
}

fn at(files: &[PathBuf], file: usize, line: u32) -> String {
    let f = files.get(file).map(|p| p.display().to_string());
    format!("{}:{line}", f.unwrap_or_default())
}

impl Lexer {
    fn read_file(
        &mut self,
        path: &Path,
        depth: usize,
        from: Option<(usize, u32)>,
    ) -> Result<(), String> {
        let here = |lx: &Lexer| match from {
            Some((f, l)) => format!("{}: error: ", at(&lx.files, f, l)),
            None => format!("{}: error: ", path.display()),
        };
        if depth > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "{}include of {} is nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)",
                here(self),
                path.display()
            ));
        }
        if self.files.len() >= MAX_FILES {
            return Err(format!(
                "{}more than {MAX_FILES} files included",
                here(self)
            ));
        }
        let text = read_bounded(path).map_err(|e| format!("{}{e}", here(self)))?;
        self.lex_file(path, &text, depth)
    }

    /// Adds the tokens of `text` (the file `path`), with its includes spliced in.
    fn lex_file(&mut self, path: &Path, text: &str, depth: usize) -> Result<(), String> {
        let file = self.files.len();
        self.files.push(path.to_path_buf());
        let toks = lex(text, file)
            .map_err(|(line, e)| format!("{}: error: {e}", at(&self.files, file, line)))?;
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if t.is("include") {
                let Some(glob) = toks.get(i + 1) else {
                    return Err(format!(
                        "{}: error: `include` needs a file or glob",
                        at(&self.files, file, t.line)
                    ));
                };
                self.include(path, glob, depth)?;
                i += 2;
                continue;
            }
            if self.tokens.len() >= MAX_TOKENS {
                return Err(format!(
                    "{}: error: more than {MAX_TOKENS} tokens in all",
                    at(&self.files, file, t.line)
                ));
            }
            self.tokens.push(t.clone());
            i += 1;
        }
        Ok(())
    }

    fn include(&mut self, from: &Path, glob: &Tok, depth: usize) -> Result<(), String> {
        let pattern = Path::new(&glob.text);
        let full = if pattern.is_absolute() {
            match &self.root {
                Some(r) => r.join(pattern.strip_prefix("/").unwrap_or(pattern)),
                None => pattern.to_path_buf(),
            }
        } else {
            // Relative to the file that includes it.
            from.parent().unwrap_or(Path::new(".")).join(pattern)
        };
        let mut found = Vec::new();
        expand_glob(&full, &mut found, MAX_FILES).map_err(|e| {
            format!(
                "{}: error: include {}: {e}",
                at(&self.files, glob.file, glob.line),
                glob.text
            )
        })?;
        found.sort();
        // Directories are skipped, as Monit does.
        found.retain(|p| !p.is_dir());
        if found.is_empty() {
            self.notes.push(format!(
                "{}: include {} matched no file",
                at(&self.files, glob.file, glob.line),
                glob.text
            ));
        }
        for p in found {
            self.read_file(&p, depth + 1, Some((glob.file, glob.line)))?;
        }
        Ok(())
    }
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = crate::files::open_regular(path, true)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..good].iter().filter(|b| **b == b'\n').count() + 1;
        format!("{}: line {line}: not UTF-8", path.display())
    })
}

/// Splits a control file into tokens. Errors carry the line.
fn lex(text: &str, file: usize) -> Result<Vec<Tok>, (u32, String)> {
    if let Some(at) = text.find('\0') {
        let line = text[..at].bytes().filter(|b| *b == b'\n').count() + 1;
        return Err((
            u32::try_from(line).unwrap_or(u32::MAX),
            "a NUL byte".to_string(),
        ));
    }
    let mut out = Vec::new();
    let mut line: u32 = 1;
    let mut it = text.chars().peekable();
    while let Some(&c) = it.peek() {
        if c == '\n' {
            line += 1;
            it.next();
        } else if c.is_whitespace() {
            it.next();
        } else if c == '#' {
            while let Some(&c) = it.peek() {
                if c == '\n' {
                    break;
                }
                it.next();
            }
        } else if c == '"' || c == '\'' {
            let start = line;
            it.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some(ch) = it.next() {
                if ch == c {
                    closed = true;
                    break;
                }
                if ch == '\\' {
                    if let Some(&n) = it.peek() {
                        if n == c {
                            s.push(n);
                            it.next();
                            continue;
                        }
                    }
                }
                if ch == '\n' {
                    line += 1;
                }
                s.push(ch);
            }
            if !closed {
                return Err((start, format!("unterminated string (opened with {c})")));
            }
            out.push(Tok {
                text: s,
                quoted: true,
                file,
                line: start,
            });
        } else if c == '{' {
            let start = line;
            let mut s = String::new();
            let mut closed = false;
            for ch in it.by_ref() {
                if ch == '\n' {
                    line += 1;
                }
                s.push(ch);
                if ch == '}' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err((start, "unterminated `{` block".to_string()));
            }
            out.push(Tok {
                text: s,
                quoted: false,
                file,
                line: start,
            });
        } else if is_op(c) {
            let mut s = String::new();
            while let Some(&c) = it.peek() {
                if !is_op(c) {
                    break;
                }
                s.push(c);
                it.next();
            }
            out.push(Tok {
                text: s,
                quoted: false,
                file,
                line,
            });
        } else {
            let mut s = String::new();
            while let Some(&c) = it.peek() {
                if c.is_whitespace() || c == '"' || c == '{' || is_op(c) {
                    break;
                }
                s.push(c);
                it.next();
            }
            out.push(Tok {
                text: s,
                quoted: false,
                file,
                line,
            });
        }
    }
    Ok(out)
}

fn is_op(c: char) -> bool {
    matches!(c, '=' | '<' | '>' | '!')
}

// ---------------------------------------------------------------------------------------------
// Globs (include): `*`, `?` and `[…]` in any path component, resolved by listing directories.

fn expand_glob(pattern: &Path, out: &mut Vec<PathBuf>, limit: usize) -> Result<(), String> {
    let mut bases = vec![if pattern.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    let comps: Vec<String> = pattern
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for b in &bases {
            if !comp.contains(['*', '?', '[']) {
                let p = b.join(comp);
                if (last && p.exists()) || (!last && p.is_dir()) {
                    next.push(p);
                }
                continue;
            }
            let dir = if b.as_os_str().is_empty() {
                Path::new(".")
            } else {
                b.as_path()
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || comp.starts_with('.'))
                .filter(|n| fnmatch(comp.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            for n in names {
                next.push(b.join(n));
                if next.len() > limit {
                    return Err(format!("matches more than {limit} paths"));
                }
            }
        }
        bases = next;
    }
    out.extend(bases);
    Ok(())
}

/// Shell-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let c = s[si];
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some(b'?') => {
                pi += 1;
                si += 1;
                continue;
            }
            Some(b'[') => {
                if let Some((ok, len)) = class(&p[pi..], c) {
                    if ok {
                        pi += len;
                        si += 1;
                        continue;
                    }
                } else if c == b'[' {
                    pi += 1;
                    si += 1;
                    continue;
                }
            }
            Some(&pc) if pc == c => {
                pi += 1;
                si += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&b| b == b'*')
}

/// A `[…]` class at the start of `p`: (matches `c`, its length), or None if unterminated.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let neg = matches!(p.get(1), Some(b'!') | Some(b'^'));
    if neg {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while let Some(&b) = p.get(i) {
        if b == b']' && !first {
            return Some((hit != neg, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|e| *e != b']') {
            let e = p[i + 2];
            hit |= b <= c && c <= e;
            i += 3;
        } else {
            hit |= b == c;
            i += 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Statements and directives.

/// One directive: its tokens, and where it starts.
#[derive(Debug)]
struct Directive {
    toks: Vec<Tok>,
    file: usize,
    line: u32,
}

impl Directive {
    /// The directive as written (tokens joined; strings quoted again).
    fn text(&self) -> String {
        let mut s = String::new();
        for (i, t) in self.toks.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            if t.quoted {
                s.push('"');
                s.push_str(&t.text.replace('\n', "\\n"));
                s.push('"');
            } else {
                // `{…}` blocks span lines: one line here.
                let words: Vec<&str> = t.text.split_whitespace().collect();
                s.push_str(&words.join(" "));
            }
        }
        s
    }
    /// The tokens without Monit's noise words.
    fn words(&self) -> Vec<&Tok> {
        self.toks.iter().filter(|t| !is_noise(t)).collect()
    }
}

fn is_noise(t: &Tok) -> bool {
    !t.quoted
        && matches!(
            t.text.to_ascii_lowercase().as_str(),
            "if" | "and"
                | "with"
                | "within"
                | "has"
                | "using"
                | "use"
                | "on"
                | "only"
                | "then"
                | "for"
                | "of"
        )
}

#[derive(Debug)]
struct Check {
    /// The `check` line: `check process NAME with pidfile …` up to the first directive.
    head: Directive,
    body: Vec<Directive>,
}

#[derive(Debug)]
enum Stmt {
    Set(Directive),
    Check(Check),
}

/// Words that begin a directive inside a `check` entry.
fn starts_directive(t: &Tok, prev: Option<&Tok>) -> bool {
    let after_action = prev.is_some_and(|p| p.is("then") || p.is("else") || p.is("repeat"));
    match t.kw().as_str() {
        "if" => !prev.is_some_and(|p| p.is("else")),
        "start" | "stop" | "restart" | "alert" | "every" => !after_action,
        "depends" | "depend" | "group" | "mode" | "noalert" | "onreboot" => true,
        _ => false,
    }
}

fn statements(toks: &[Tok], files: &[PathBuf]) -> Result<Vec<Stmt>, String> {
    let mut out: Vec<Stmt> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let start = i;
        i += 1;
        if t.is("set") {
            while i < toks.len() && !(toks[i].is("set") || toks[i].is("check")) {
                i += 1;
            }
            out.push(Stmt::Set(Directive {
                toks: toks[start..i].to_vec(),
                file: t.file,
                line: t.line,
            }));
        } else if t.is("check") {
            let mut dirs: Vec<Directive> = Vec::new();
            let mut cur = vec![t.clone()];
            while i < toks.len() && !(toks[i].is("set") || toks[i].is("check")) {
                let tk = &toks[i];
                if starts_directive(tk, toks.get(i - 1)) && !cur.is_empty() {
                    let first = &cur[0];
                    dirs.push(Directive {
                        file: first.file,
                        line: first.line,
                        toks: std::mem::take(&mut cur),
                    });
                }
                cur.push(tk.clone());
                i += 1;
            }
            if let Some(first) = cur.first() {
                dirs.push(Directive {
                    file: first.file,
                    line: first.line,
                    toks: cur,
                });
            }
            let mut dirs = dirs.into_iter();
            if let Some(head) = dirs.next() {
                out.push(Stmt::Check(Check {
                    head,
                    body: dirs.collect(),
                }));
            }
        } else {
            return Err(format!(
                "{}: error: `{}`: expected `set`, `check` or `include`",
                at(files, t.file, t.line),
                t.text
            ));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Conversion.

struct Converter<'a> {
    files: &'a [PathBuf],
    cycle: u64,
    cycle_given: bool,
    /// Comments for global settings, at the top of the config.
    header: Vec<String>,
    body: String,
    notes: Vec<String>,
    /// Service names written so far (unique).
    names: Vec<String>,
    services: usize,
    log_syslog: bool,
}

/// A check being built: its TOML lines (after `[[service.check]]`).
struct OutCheck {
    lines: Vec<String>,
}

struct OutService {
    name: String,
    comments: Vec<String>,
    identity: Vec<String>,
    start: Option<Vec<String>>,
    start_line: Vec<String>,
    stop_line: Vec<String>,
    keys: Vec<String>,
    restart: Vec<String>,
    checks: Vec<OutCheck>,
    every: u64,
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `s` with its control characters (a newline inside a quoted string, a CR) written as
/// escapes: a TOML comment, and a summary line, is one line without control characters.
fn one_line(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => o.push('\t'),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// Appends one line of the config; a comment line is made safe with `one_line`.
fn push_line(out: &mut String, l: &str) {
    if l.starts_with('#') {
        out.push_str(&one_line(l));
    } else {
        out.push_str(l);
    }
    out.push('\n');
}

/// A whole-number duration the config accepts: "90s", "2m", "1h".
fn dur(secs: u64) -> String {
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn num(t: Option<&&Tok>) -> Option<u64> {
    t.and_then(|t| t.text.parse().ok())
}

fn float(t: Option<&&Tok>) -> Option<f64> {
    t.and_then(|t| t.text.trim_end_matches('%').parse().ok())
        .filter(|f: &f64| f.is_finite() && *f >= 0.0)
}

/// `http://HOST[:PORT][/PATH]` as (host, port, path). Anything else (https, credentials,
/// a query with spaces) is None.
fn parse_url(u: &str) -> Option<(String, u64, String)> {
    let rest = u.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port, path))
}

/// Splits a Monit program string into argv the way Monit does: on spaces, with single or
/// double quotes grouping.
fn split_argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The literal text of a regex: its longest run of characters that are not regex syntax.
fn regex_literal(re: &str) -> String {
    let mut best = String::new();
    let mut cur = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | ' ' | ':' | '=');
        if c == '\\' {
            // An escaped character is literal text (`\.` is a dot), a class (`\d`) is not.
            match chars.next() {
                Some(n) if !n.is_ascii_alphanumeric() => {
                    cur.push(n);
                    continue;
                }
                _ => {}
            }
        } else if literal {
            // A character followed by `*`, `?` or `{0,` may be absent: not literal.
            if matches!(chars.peek(), Some('*') | Some('?')) {
            } else {
                cur.push(c);
                continue;
            }
        }
        if cur.trim().len() > best.trim().len() {
            best = cur.clone();
        }
        cur.clear();
    }
    if cur.trim().len() > best.trim().len() {
        best = cur;
    }
    best.trim().to_string()
}

impl Converter<'_> {
    fn at(&self, d: &Directive) -> String {
        at(self.files, d.file, d.line)
    }

    fn err(&self, d: &Directive, msg: impl std::fmt::Display) -> String {
        format!("{}: error: {msg}", self.at(d))
    }

    /// Records a directive (or a part of one) not carried over: a summary line and the comment
    /// lines for the config.
    fn not_converted(&mut self, d: &Directive, what: &str, why: &str) -> Vec<String> {
        let where_ = self.at(d);
        self.notes.push(one_line(&format!(
            "{where_}: not converted: {what} ({why})"
        )));
        vec![
            format!("# not converted ({where_}): {what}"),
            format!("#   why: {why}"),
        ]
    }

    fn cycles(&self, n: u64) -> u64 {
        n.saturating_mul(self.cycle)
    }

    fn set_daemon_cycle(&mut self, d: &Directive) {
        let w = d.words();
        if w.get(1).is_some_and(|t| t.is("daemon")) {
            if let Some(n) = num(w.get(2)).filter(|n| *n > 0) {
                self.cycle = n;
                self.cycle_given = true;
            }
        }
    }

    fn set(&mut self, d: &Directive) -> Result<(), String> {
        let w = d.words();
        let what = w.get(1).map(|t| t.kw()).unwrap_or_default();
        match what.as_str() {
            "daemon" => {
                let Some(n) = num(w.get(2)).filter(|n| *n > 0) else {
                    return Err(self.err(d, "`set daemon` needs a number of seconds"));
                };
                // Only `[with] start delay N` may follow.
                let rest: Vec<String> = w[3..].iter().map(|t| t.kw()).collect();
                let delay_ok = rest.is_empty()
                    || (rest.len() == 3
                        && rest[0] == "start"
                        && rest[1] == "delay"
                        && num(w.get(5)).is_some());
                if !delay_ok {
                    let bad = w.get(3).map(|t| t.text.as_str()).unwrap_or_default();
                    let line = w
                        .get(3)
                        .map(|t| (t.file, t.line))
                        .unwrap_or((d.file, d.line));
                    return Err(format!(
                        "{}: error: `{bad}`: expected `start delay N` or a new statement (`set`, `check`, `include`)",
                        at(self.files, line.0, line.1)
                    ));
                }
                self.header.push(format!(
                    "# {} ({}): Monit's cycle. custos sees a death at once and polls every [supervisor] interval (default 1s); cycles below are counted as {}.",
                    d.text(),
                    self.at(d),
                    dur(n)
                ));
                if w.iter().any(|t| t.is("delay")) {
                    let c = self.not_converted(
                        d,
                        "start delay",
                        "custos checks from its start; a check's failures count once it has passed or after its `grace`",
                    );
                    self.header.extend(c);
                }
            }
            "log" | "logfile" if w.get(2).is_some_and(|t| t.is("syslog")) => {
                self.log_syslog = true;
                self.header.push(format!(
                    "# {} ({}): [supervisor] log = \"syslog\"",
                    d.text(),
                    self.at(d)
                ));
                if w.len() > 3 {
                    let c = self.not_converted(
                        d,
                        "syslog facility",
                        "custos logs to the daemon facility",
                    );
                    self.header.extend(c);
                }
            }
            _ => {
                let why = match what.as_str() {
                    "log" | "logfile" => "custos logs to stderr or syslog ([supervisor] log); redirect its stderr in inittab",
                    "idfile" | "statefile" | "pidfile" => {
                        "custos keeps its state in [supervisor] state_dir"
                    }
                    "eventqueue" | "mailserver" | "alert" | "mail-format" | "mmonit" => {
                        "custos sends no alerts: it logs every event with its cause (`custos events`)"
                    }
                    "httpd" => "custos is controlled through its UNIX socket (`custos status`, `custos start NAME`)",
                    "limits" | "ssl" | "fips" | "init" | "onreboot" | "expectbuffer" | "netrc" | "ssl options" => {
                        "no custos equivalent"
                    }
                    _ => "not a setting custos knows",
                };
                let label = format!("set {what}");
                let c = self.not_converted(d, &label, why);
                self.header.extend(c);
            }
        }
        Ok(())
    }

    fn check(&mut self, c: &Check) -> Result<(), String> {
        let hw = c.head.words();
        let kind = hw.get(1).map(|t| t.kw()).unwrap_or_default();
        let Some(name_tok) = hw.get(2) else {
            return Err(self.err(&c.head, "`check` needs a service type and a name"));
        };
        if kind != "process" {
            // Not a process: custos has nothing like it. The whole entry is one comment block.
            let what = format!(
                "check {kind} {} and its {} directive(s)",
                name_tok.text,
                c.body.len()
            );
            let why = match kind.as_str() {
                "file" | "directory" | "fifo" | "filesystem" => {
                    "custos supervises processes; it does not watch files, permissions or checksums"
                }
                "host" | "network" => "custos checks only the services it supervises (a [[service.check]] of kind tcp or http)",
                "system" => "custos watches no system-wide load, memory or swap",
                "program" => "custos runs programs only as a service's check (kind = \"program\")",
                _ => "not a Monit service type custos knows",
            };
            let mut lines = vec![String::new()];
            lines.extend(self.not_converted(&c.head, &what, why));
            for d in &c.body {
                lines.push(format!("#   {}: {}", self.at(d), d.text()));
            }
            self.emit(&lines);
            return Ok(());
        }
        let mut s = OutService {
            name: self.service_name(&name_tok.text),
            comments: Vec::new(),
            identity: Vec::new(),
            start: None,
            start_line: Vec::new(),
            stop_line: Vec::new(),
            keys: Vec::new(),
            restart: Vec::new(),
            checks: Vec::new(),
            every: 1,
        };
        if s.name != name_tok.text {
            s.comments.push(format!(
                "# Monit's name `{}` is not a custos name ([A-Za-z0-9_.-], 1 to {MAX_NAME}, unique)",
                name_tok.text
            ));
        }
        self.identity(&c.head, &hw[3..], &mut s)?;
        // `every` first: it sets the period of every check of the service.
        for d in &c.body {
            let w = d.words();
            if w.first().is_some_and(|t| t.is("every")) {
                match num(w.get(1)) {
                    Some(n) if n > 0 && w.get(2).is_some_and(|t| t.kw().starts_with("cycle")) => {
                        s.every = n;
                        s.comments.push(format!(
                            "# {} ({}): its checks run every {} cycle(s)",
                            d.text(),
                            self.at(d),
                            n
                        ));
                    }
                    _ => {
                        let lines = self.not_converted(
                            d,
                            &d.text(),
                            "custos runs checks at fixed periods (`every`), not on a cron schedule",
                        );
                        s.comments.extend(lines);
                    }
                }
            }
        }
        for d in &c.body {
            self.directive(d, &mut s)?;
        }
        self.write_service(&c.head, s);
        Ok(())
    }

    fn service_name(&mut self, monit: &str) -> String {
        let mut n: String = monit
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_NAME)
            .collect();
        if n.is_empty() {
            n.push_str("service");
        }
        let base = n.clone();
        let mut k = 2;
        while self.names.contains(&n) {
            let suffix = format!("-{k}");
            let keep = base.len().min(MAX_NAME - suffix.len());
            n = format!("{}{suffix}", &base[..keep]);
            k += 1;
        }
        self.names.push(n.clone());
        n
    }

    /// `with pidfile P`, `matching "re"`, `path P` on the check line.
    fn identity(
        &mut self,
        head: &Directive,
        rest: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let first = rest.first().map(|t| t.kw()).unwrap_or_default();
        match first.as_str() {
            "pidfile" => {
                let Some(p) = rest.get(1) else {
                    return Err(self.err(head, "`pidfile` needs a path"));
                };
                if !p.text.starts_with('/') || p.text.len() > MAX_ARG_LEN {
                    return Err(self.err(
                        head,
                        format!("pidfile `{}` is not an absolute path", p.text),
                    ));
                }
                s.identity.push(format!("pidfile = {}", toml_str(&p.text)));
                self.rest_of_head(head, &rest[2..], s);
            }
            "matching" | "match" => {
                let Some(re) = rest.get(1) else {
                    return Err(self.err(head, "`matching` needs a regular expression"));
                };
                let lit = regex_literal(&re.text);
                let (keys, alt) = if lit.starts_with('/') {
                    let mut parts = lit.splitn(2, ' ');
                    let exe = parts.next().unwrap_or_default().to_string();
                    let args = parts.next().map(str::trim).filter(|a| !a.is_empty());
                    let mut k = vec![format!("exe = {}", toml_str(&exe))];
                    if let Some(a) = args {
                        k.push(format!("args = {}", toml_str(a)));
                    }
                    (k, "or the pidfile its start script writes".to_string())
                } else {
                    let stem: String = lit
                        .split(|c: char| {
                            !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                        })
                        .max_by_key(|w| w.len())
                        .filter(|w| !w.is_empty())
                        .unwrap_or(&s.name)
                        .to_string();
                    (
                        vec![format!(
                            "pidfile = {}",
                            toml_str(&format!("/var/run/{stem}.pid"))
                        )],
                        format!("check that the start script writes it; if none, exe = \"/full/path/of/{stem}\""),
                    )
                };
                let why = format!(
                    "custos never identifies a process by a regex: it can match the wrong process or miss the right one; suggested from the regex's literal text: {} ({alt})",
                    keys.join(", ")
                );
                let lines =
                    self.not_converted(head, &format!("matching {}", toml_str(&re.text)), &why);
                s.identity.extend(lines);
                s.identity
                    .push("# SUGGESTED: check this before use".to_string());
                s.identity.extend(keys);
                self.rest_of_head(head, &rest[2..], s);
            }
            _ => {
                return Err(self.err(
                    head,
                    "`check process` needs `with pidfile PATH` or `matching REGEX`",
                ));
            }
        }
        Ok(())
    }

    /// What follows the identity on the check line (nothing, usually).
    fn rest_of_head(&mut self, head: &Directive, rest: &[&Tok], s: &mut OutService) {
        if !rest.is_empty() {
            let what: Vec<&str> = rest.iter().map(|t| t.text.as_str()).collect();
            let lines = self.not_converted(
                head,
                &what.join(" "),
                "not understood on a `check process` line",
            );
            s.comments.extend(lines);
        }
    }

    fn directive(&mut self, d: &Directive, s: &mut OutService) -> Result<(), String> {
        let w = d.words();
        if d.toks.first().is_some_and(|t| t.is("if")) {
            return self.test(d, &w, s);
        }
        let Some(first) = w.first() else {
            return Ok(());
        };
        match first.kw().as_str() {
            "every" => {}
            "start" | "stop" => self.program(d, &w, s)?,
            "restart" => {
                let lines = self.not_converted(
                    d,
                    "restart program",
                    "custos restarts a running process with its stop script (or SIGTERM, SIGKILL) and then its start script",
                );
                s.comments.extend(lines);
            }
            "depends" | "depend" => {
                let lines = self.not_converted(
                    d,
                    &d.text(),
                    "custos has no dependencies between services: it starts each one on its own; order them in the init scripts",
                );
                s.comments.extend(lines);
            }
            "group" => {
                let lines = self.not_converted(d, &d.text(), "custos has no service groups");
                s.comments.extend(lines);
            }
            "mode" => {
                let m = w.get(1).map(|t| t.kw()).unwrap_or_default();
                if m == "active" {
                    s.comments.push(format!(
                        "# {} ({}): custos's only mode",
                        d.text(),
                        self.at(d)
                    ));
                } else {
                    let lines = self.not_converted(
                        d,
                        &d.text(),
                        "custos always starts a service it finds not running and acts on its checks; `custos unmonitor NAME` pauses that",
                    );
                    s.comments.extend(lines);
                }
            }
            "alert" | "noalert" => {
                let lines = self.not_converted(
                    d,
                    &d.text(),
                    "custos sends no mail: it logs every event with its cause (`custos events`)",
                );
                s.comments.extend(lines);
            }
            _ => {
                let lines = self.not_converted(d, &d.text(), "not a directive custos knows");
                s.comments.extend(lines);
            }
        }
        Ok(())
    }

    /// `start|stop [program] [=] "CMD" [as uid U [and gid G]] [with timeout N seconds]`.
    fn program(&mut self, d: &Directive, w: &[&Tok], s: &mut OutService) -> Result<(), String> {
        let which = w.first().map(|t| t.kw()).unwrap_or_default();
        let mut i = 1;
        while w.get(i).is_some_and(|t| t.is("program") || t.is("=")) {
            i += 1;
        }
        let Some(cmd) = w.get(i).filter(|t| t.quoted || t.text.starts_with('/')) else {
            return Err(self.err(d, format!("`{which} program` needs a command")));
        };
        i += 1;
        let argv = split_argv(&cmd.text);
        match argv.first() {
            Some(p) if p.starts_with('/') => {}
            _ => {
                return Err(self.err(
                    d,
                    format!(
                        "{which} program `{}` does not start with an absolute path (custos runs argv without a shell or PATH)",
                        cmd.text
                    ),
                ))
            }
        }
        if argv.len() > MAX_ARGV
            || argv
                .iter()
                .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
        {
            return Err(self.err(
                d,
                format!("{which} program `{}`: more than {MAX_ARGV} words, or a word over {MAX_ARG_LEN} bytes", cmd.text),
            ));
        }
        let mut out = Vec::new();
        let mut timeout = None;
        let mut extra = Vec::new();
        while let Some(t) = w.get(i) {
            if t.is("as") || t.is("uid") || t.is("gid") {
                // as uid U [and gid G]
                let mut part = vec![t.text.clone()];
                i += 1;
                while let Some(n) = w.get(i) {
                    if n.is("timeout") {
                        break;
                    }
                    part.push(n.text.clone());
                    i += 1;
                }
                let lines = self.not_converted(
                    d,
                    &part.join(" "),
                    "custos runs scripts as root: drop privileges in the script (e.g. start-stop-daemon --chuid)",
                );
                out.extend(lines);
            } else if t.is("timeout") {
                let n = num(w.get(i + 1));
                let unit = w.get(i + 2).map(|t| t.kw()).unwrap_or_default();
                match n {
                    Some(n) if n > 0 => {
                        let secs = if unit.starts_with("cycle") {
                            self.cycles(n)
                        } else {
                            n
                        };
                        timeout = Some(secs);
                    }
                    _ => return Err(self.err(d, "`timeout` needs a number of seconds")),
                }
                i += if unit.starts_with("sec") || unit.starts_with("cycle") {
                    3
                } else {
                    2
                };
            } else {
                extra.push(t.text.clone());
                i += 1;
            }
        }
        if !extra.is_empty() {
            let lines = self.not_converted(d, &extra.join(" "), "not understood after the program");
            out.extend(lines);
        }
        let key = if which == "start" { "start" } else { "stop" };
        let list: Vec<String> = argv.iter().map(|a| toml_str(a)).collect();
        out.push(format!("{key} = [{}]", list.join(", ")));
        if let Some(t) = timeout {
            if t <= 600 {
                out.push(format!("{key}_timeout = \"{}\"", dur(t)));
            } else {
                out.push(format!(
                    "{key}_timeout = \"10m\"   # Monit: {}; custos's longest is 10m",
                    dur(t)
                ));
            }
        }
        if which == "start" {
            s.start = Some(argv);
            s.start_line = out;
        } else {
            s.stop_line = out;
        }
        Ok(())
    }

    /// Everything after `if`.
    fn test(&mut self, d: &Directive, w: &[&Tok], s: &mut OutService) -> Result<(), String> {
        let Some(first) = w.first() else {
            return Err(self.err(d, "`if` needs a test"));
        };
        // The action and what follows it (`else if succeeded …`).
        // `timeout` is the old name of `unmonitor` as an action, and an option when a number
        // follows it (`timeout 15 seconds`).
        let act_at = w.iter().enumerate().position(|(i, t)| {
            matches!(
                t.kw().as_str(),
                "restart" | "alert" | "exec" | "stop" | "start" | "unmonitor" | "else"
            ) || (t.is("timeout") && num(w.get(i + 1)).is_none())
        });
        let (cond, action) = match act_at {
            Some(p) => (&w[..p], &w[p..]),
            None => (w, &w[w.len()..]),
        };
        let act = action.first().map(|t| t.kw()).unwrap_or_default();
        if act.is_empty() {
            return Err(self.err(
                d,
                "a test without an action (`then restart`, `then alert`, …)",
            ));
        }
        if let Some(e) = action.iter().position(|t| t.is("else")) {
            let rest: Vec<&str> = action[e..].iter().map(|t| t.text.as_str()).collect();
            let lines = self.not_converted(
                d,
                &rest.join(" "),
                "custos logs a check that passes again after failures (`passed again`); it runs no action for it",
            );
            s.comments.extend(lines);
        }
        // N restarts within M cycles
        if let (Some(n), Some(kw)) = (num(Some(first)), cond.get(1)) {
            if kw.kw().starts_with("restart") {
                return self.restart_limit(d, n, cond, &act, s);
            }
        }
        let k = first.kw();
        match k.as_str() {
            "failed" => self.failed(d, &cond[1..], action, s),
            "totalmem" | "totalmemory" | "mem" | "memory" | "total" | "totalcpu" | "cpu" => {
                self.resource(d, cond, action, s)
            }
            "does" | "not" => {
                // if does not exist then restart: what custos does for every service.
                s.comments.push(format!(
                    "# {} ({}): custos starts a service it finds not running",
                    d.text(),
                    self.at(d)
                ));
                Ok(())
            }
            _ => {
                let why = match k.as_str() {
                    "children" => "custos has no check on the number of children; an `fds` check bounds descriptors",
                    "uptime" | "threads" | "changed" | "status" | "content" | "timestamp" | "size" => {
                        "no custos check of this kind"
                    }
                    _ => "no custos check of this kind",
                };
                let lines = self.not_converted(d, &d.text(), why);
                s.comments.extend(lines);
                Ok(())
            }
        }
    }

    /// `if N restarts within M cycles then unmonitor|timeout|…`.
    fn restart_limit(
        &mut self,
        d: &Directive,
        n: u64,
        cond: &[&Tok],
        act: &str,
        s: &mut OutService,
    ) -> Result<(), String> {
        let m = num(cond.get(2));
        let Some(m) =
            m.filter(|m| *m > 0 && cond.get(3).is_some_and(|t| t.kw().starts_with("cycle")))
        else {
            return Err(self.err(d, "expected `N restarts within M cycles`"));
        };
        if !matches!(act, "unmonitor" | "timeout") {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos's only actions after too many restarts are to give up or to reboot (on_exhausted)",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        let window = self.cycles(m);
        if n == 0 || n > 64 || window > 24 * 3600 {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos takes 1 to 64 restarts within at most 24h",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        if s.restart.iter().any(|l| l.starts_with("max_restarts")) {
            let lines = self.not_converted(
                d,
                &d.text(),
                "custos keeps one restart limit per service: the first one above was taken",
            );
            s.comments.extend(lines);
            return Ok(());
        }
        s.restart.push(format!(
            "# {} ({}): {n} restarts within {m} cycle(s) of {}",
            d.text(),
            self.at(d),
            dur(self.cycle)
        ));
        s.restart.push(format!("max_restarts = {n}"));
        s.restart.push(format!("window = \"{}\"", dur(window)));
        s.restart.push(
            "on_exhausted = \"give-up\"   # until a reload or `custos start NAME`; without a limit custos never gives up".to_string(),
        );
        Ok(())
    }

    /// `for N cycles` / `N times within M cycles` at the end of a condition: failures, and the
    /// tokens before it.
    fn cycles_of<'t>(&self, cond: &'t [&'t Tok]) -> (&'t [&'t Tok], u64, Option<String>) {
        let n = cond.len();
        if n >= 2 && cond[n - 1].kw().starts_with("cycle") {
            if n >= 4 && cond[n - 3].kw() == "times" {
                if let (Some(a), Some(b)) = (num(cond.get(n - 4)), num(cond.get(n - 2))) {
                    return (
                        &cond[..n - 4],
                        a.max(1),
                        Some(format!(
                            "{a} times within {b} cycles: custos counts {a} failures in a row"
                        )),
                    );
                }
            }
            if let Some(a) = num(cond.get(n - 2)) {
                return (&cond[..n - 2], a.max(1), None);
            }
        }
        (cond, 1, None)
    }

    fn check_every(&self, s: &OutService) -> u64 {
        self.cycles(s.every).clamp(1, 24 * 3600)
    }

    /// The action of a convertible test: (TOML action line, comments).
    fn action(&mut self, d: &Directive, action: &[&Tok]) -> (Option<String>, Vec<String>) {
        let act = action.first().map(|t| t.kw()).unwrap_or_default();
        match act.as_str() {
            "restart" => (None, Vec::new()),
            "alert" => (
                Some("action = \"log\"".to_string()),
                self.not_converted(
                    d,
                    "then alert",
                    "custos sends no alerts; the failure is logged (action = \"log\")",
                ),
            ),
            other => {
                let what = if other == "exec" {
                    let prog = action.get(1).map(|t| t.text.as_str()).unwrap_or("");
                    format!("then exec {}", toml_str(prog))
                } else {
                    format!("then {other}")
                };
                (
                    Some("action = \"log\"".to_string()),
                    self.not_converted(
                        d,
                        &what,
                        "a custos check restarts the service or logs; this one logs (action = \"log\")",
                    ),
                )
            }
        }
    }

    /// True (and said, once for the whole directive) when the service has all the checks
    /// custos takes.
    fn checks_full(&mut self, d: &Directive, s: &mut OutService) -> bool {
        if s.checks.len() < MAX_CHECKS {
            return false;
        }
        let c = self.not_converted(d, &d.text(), "custos takes at most 4 checks per service");
        s.comments.extend(c);
        true
    }

    fn push_check(&mut self, d: &Directive, s: &mut OutService, mut lines: Vec<String>) {
        if self.checks_full(d, s) {
            return;
        }
        lines.insert(0, format!("# {} ({})", d.text(), self.at(d)));
        s.checks.push(OutCheck { lines });
    }

    /// `if failed [host H] port N [type T] [protocol P …] [timeout N seconds] [for …] then A`.
    fn failed(
        &mut self,
        d: &Directive,
        cond: &[&Tok],
        action: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let (cond, failures, within) = self.cycles_of(cond);
        let mut host: Option<String> = None;
        let mut port: Option<u64> = None;
        let mut proto: Option<String> = None;
        let mut typ: Option<String> = None;
        let mut request: Option<String> = None;
        let mut content: Option<String> = None;
        let mut status: Option<u64> = None;
        let mut timeout: Option<u64> = None;
        let mut unsupported: Vec<String> = Vec::new();
        let mut unsupported_url: Option<String> = None;
        let mut i = 0;
        while let Some(t) = cond.get(i) {
            let k = t.kw();
            let next = cond.get(i + 1).map(|t| t.text.clone());
            match k.as_str() {
                "host" | "address" => {
                    host = next;
                    i += 2;
                }
                "port" => {
                    port = num(cond.get(i + 1));
                    if port.is_none() {
                        return Err(self.err(d, "`port` needs a number"));
                    }
                    i += 2;
                }
                "type" => {
                    typ = next.map(|t| t.to_ascii_lowercase());
                    i += 2;
                }
                "protocol" | "proto" => {
                    proto = next.map(|t| t.to_ascii_lowercase());
                    i += 2;
                }
                "request" => {
                    request = next;
                    i += 2;
                }
                "content" => {
                    let mut j = i + 1;
                    let mut negated = false;
                    while cond
                        .get(j)
                        .is_some_and(|t| !t.quoted && t.text.chars().all(is_op))
                    {
                        negated |= cond[j].text.contains('!');
                        j += 1;
                    }
                    match cond.get(j) {
                        Some(c) if !negated => content = Some(c.text.clone()),
                        Some(c) => unsupported.push(format!("content != {}", toml_str(&c.text))),
                        None => return Err(self.err(d, "`content` needs a string")),
                    }
                    i = j + 1;
                }
                "status" => {
                    let mut j = i + 1;
                    let mut negated = false;
                    while cond
                        .get(j)
                        .is_some_and(|t| !t.quoted && t.text.chars().all(is_op))
                    {
                        negated |= cond[j].text.contains(['!', '<', '>']);
                        j += 1;
                    }
                    if negated {
                        unsupported.push(format!(
                            "status {}",
                            cond.get(j).map(|t| t.text.as_str()).unwrap_or_default()
                        ));
                    } else {
                        status = num(cond.get(j));
                    }
                    i = j + 1;
                }
                "timeout" => {
                    timeout = num(cond.get(i + 1));
                    let unit = cond.get(i + 2).map(|t| t.kw()).unwrap_or_default();
                    if unit.starts_with("cycle") {
                        timeout = timeout.map(|n| self.cycles(n));
                    }
                    i += if unit.starts_with("sec") || unit.starts_with("cycle") {
                        3
                    } else {
                        2
                    };
                }
                "ipv4" | "ipv6" | "tcp" => i += 1,
                "url" => {
                    // url http://HOST[:PORT]/PATH: an http check; https and credentials are not.
                    let u = next.unwrap_or_default();
                    match parse_url(&u) {
                        Some((h, p, path)) => {
                            host = Some(h);
                            port = Some(p);
                            proto = Some("http".to_string());
                            request = Some(path);
                        }
                        None => unsupported_url = Some(u),
                    }
                    i += 2;
                }
                "retry" => {
                    unsupported.push(format!("retry {}", next.unwrap_or_default()));
                    i += 2;
                }
                _ => {
                    unsupported.push(t.text.clone());
                    i += 1;
                }
            }
        }
        let mut comments = Vec::new();
        if let Some(u) = unsupported_url {
            let c = self.not_converted(
                d,
                &d.text(),
                &format!("url {u}: custos checks plain http:// on an IP address or localhost, without credentials"),
            );
            s.comments.extend(c);
            return Ok(());
        }
        let Some(port) = port.filter(|p| (1..=65535).contains(p)) else {
            let why = if cond.iter().any(|t| t.is("unixsocket") || t.is("unix")) {
                "custos has no UNIX-socket check"
            } else {
                "no custos check of this kind"
            };
            let c = self.not_converted(d, &d.text(), why);
            s.comments.extend(c);
            return Ok(());
        };
        let host_ip = match host.as_deref() {
            None | Some("localhost") => "127.0.0.1".to_string(),
            Some(h) if h.parse::<std::net::IpAddr>().is_ok() => h.to_string(),
            Some(h) => {
                let c = self.not_converted(
                    d,
                    &d.text(),
                    &format!(
                        "host {h}: custos checks IP addresses only (no DNS lookup on its loop)"
                    ),
                );
                s.comments.extend(c);
                return Ok(());
            }
        };
        match typ.as_deref() {
            None | Some("tcp") => {}
            Some(t) => {
                let why = if t == "udp" {
                    "custos has no UDP check"
                } else {
                    "custos has no TLS check"
                };
                let c = self.not_converted(d, &d.text(), &format!("type {t}: {why}"));
                s.comments.extend(c);
                return Ok(());
            }
        }
        if self.checks_full(d, s) {
            return Ok(());
        }
        let mut lines = Vec::new();
        let is_http = proto.as_deref() == Some("http");
        if is_http {
            lines.push("kind = \"http\"".to_string());
        } else {
            lines.push("kind = \"tcp\"".to_string());
            if let Some(p) = &proto {
                if p != "default" && p != "generic" {
                    comments.extend(self.not_converted(
                        d,
                        &format!("protocol {p}"),
                        "custos checks only that the port accepts a connection (kind = \"tcp\")",
                    ));
                }
            }
        }
        lines.push(format!("host = {}", toml_str(&host_ip)));
        lines.push(format!("port = {port}"));
        if is_http {
            if let Some(r) = &request {
                if r.starts_with('/')
                    && !r.bytes().any(|b| b <= b' ' || b == 0x7f)
                    && r.len() <= MAX_ARG_LEN
                {
                    lines.push(format!("path = {}", toml_str(r)));
                } else {
                    comments.extend(self.not_converted(
                        d,
                        &format!("request {}", toml_str(r)),
                        "a custos request path starts with / and has no spaces; the check asks for /",
                    ));
                }
            }
            if let Some(st) = status {
                if (100..=599).contains(&st) {
                    lines.push(format!("status = {st}"));
                }
            }
            if let Some(c) = &content {
                let lit = regex_literal(c);
                let plain = !c.contains(|ch: char| "\\^$.|?*+()[]{}".contains(ch));
                if plain && !c.is_empty() && c.len() <= MAX_ARG_LEN {
                    lines.push(format!("expect = {}", toml_str(c)));
                } else if !lit.is_empty() && lit.len() <= MAX_ARG_LEN {
                    comments.extend(self.not_converted(
                        d,
                        &format!("content = {}", toml_str(c)),
                        &format!("custos's `expect` is plain text, not a regex; suggested from the regex's literal text: expect = {}", toml_str(&lit)),
                    ));
                    lines.push(format!(
                        "expect = {}   # SUGGESTED: check this",
                        toml_str(&lit)
                    ));
                } else {
                    comments.extend(self.not_converted(
                        d,
                        &format!("content = {}", toml_str(c)),
                        "custos's `expect` is plain text, not a regex, and this one has no literal text",
                    ));
                }
            }
        } else if request.is_some() || content.is_some() || status.is_some() {
            unsupported.push("request/content/status without protocol http".to_string());
        }
        if !unsupported.is_empty() {
            comments.extend(self.not_converted(
                d,
                &unsupported.join(" "),
                "no custos check option like it",
            ));
        }
        // Monit's default connection timeout is 5 s, custos's too.
        if let Some(t) = timeout {
            if t > 60 {
                lines.push(format!(
                    "timeout = \"1m\"   # Monit: {}; custos's longest is 1m",
                    dur(t)
                ));
            } else if t > 0 {
                lines.push(format!("timeout = \"{}\"", dur(t)));
            }
        }
        self.finish_check(d, s, lines, comments, failures, within, action);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_check(
        &mut self,
        d: &Directive,
        s: &mut OutService,
        mut lines: Vec<String>,
        comments: Vec<String>,
        failures: u64,
        within: Option<String>,
        action: &[&Tok],
    ) {
        // Without `set daemon` Monit's cycle is unknown: the check keeps custos's period.
        if self.cycle_given || s.every > 1 {
            lines.push(format!(
                "every = \"{}\"   # Monit's cycle{}",
                dur(self.check_every(s)),
                if s.every > 1 { " x every" } else { "" }
            ));
        }
        if failures > 1 {
            let f = failures.min(1000);
            match within {
                Some(w) => lines.push(format!("failures = {f}   # {w}")),
                None => lines.push(format!("failures = {f}")),
            }
        }
        let (act, mut notes) = self.action(d, action);
        if let Some(a) = act {
            lines.push(a);
        }
        notes.extend(comments);
        // What was not carried over goes with the check, before its keys.
        lines.splice(0..0, notes);
        self.push_check(d, s, lines);
    }

    /// `if [total]mem[ory] [usage] > N (B|KB|MB|GB|%)`, `if [total]cpu [usage] > N%`.
    fn resource(
        &mut self,
        d: &Directive,
        cond: &[&Tok],
        action: &[&Tok],
        s: &mut OutService,
    ) -> Result<(), String> {
        let (cond, cycles, _) = self.cycles_of(cond);
        let words: Vec<String> = cond.iter().map(|t| t.kw()).collect();
        let total = words.iter().any(|w| w.starts_with("total"));
        let cpu = words.iter().any(|w| w.ends_with("cpu"));
        let Some(op_at) = cond.iter().position(|t| {
            matches!(
                t.kw().as_str(),
                ">" | "gt"
                    | "greater"
                    | "<"
                    | "lt"
                    | "less"
                    | "="
                    | "=="
                    | "!="
                    | "eq"
                    | "ne"
                    | "equal"
            )
        }) else {
            return Err(self.err(d, "expected a comparison (`>`, `<`)"));
        };
        let op = cond[op_at].kw();
        if !matches!(op.as_str(), ">" | "gt" | "greater") {
            let c = self.not_converted(
                d,
                &d.text(),
                "custos's resource checks have a maximum only (`>`)",
            );
            s.comments.extend(c);
            return Ok(());
        }
        let value = cond.get(op_at + 1);
        let Some(v) = float(value) else {
            return Err(self.err(d, "expected a number after the comparison"));
        };
        let unit = {
            let attached = value
                .map(|t| {
                    t.text
                        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                        .to_string()
                })
                .unwrap_or_default();
            if attached.is_empty() {
                cond.get(op_at + 2).map(|t| t.kw()).unwrap_or_default()
            } else {
                attached.to_ascii_lowercase()
            }
        };
        if self.checks_full(d, s) {
            return Ok(());
        }
        let mut lines = Vec::new();
        let mut comments = Vec::new();
        let mut failures = cycles;
        if cpu {
            if unit != "%" {
                return Err(self.err(d, "a cpu limit is a percentage"));
            }
            lines.push("kind = \"cpu\"".to_string());
            lines.push(format!("max_percent = {:.1}   # Monit's % is of all cores; custos's 100 = one core: multiply by the board's cores", v.max(0.1)));
            let over = self.cycles(cycles).clamp(1, 3600);
            lines.push(format!("over = \"{}\"", dur(over)));
            failures = 1;
            if total {
                comments.push(format!("# {} ({}): Monit's total cpu counts the children too; custos's cpu check reads the process alone", d.text(), self.at(d)));
            }
        } else {
            let mul: f64 = match unit.as_str() {
                "b" | "byte" | "bytes" => 1.0,
                "kb" | "kilobyte" | "kilobytes" | "k" => 1024.0,
                "mb" | "megabyte" | "megabytes" | "m" => 1024.0 * 1024.0,
                "gb" | "gigabyte" | "gigabytes" | "g" => 1024.0 * 1024.0 * 1024.0,
                "%" => {
                    let c = self.not_converted(
                        d,
                        &d.text(),
                        "custos's memory check takes a size (max = \"64MiB\"), not a share of the board's memory",
                    );
                    s.comments.extend(c);
                    return Ok(());
                }
                _ => {
                    return Err(self.err(
                        d,
                        format!("`{unit}` is not a memory unit (B, KB, MB, GB, %)"),
                    ))
                }
            };
            let kib = ((v * mul) / 1024.0).ceil().max(1.0) as u64;
            // More than 1 TiB is a typo, and past what a size in the config can hold.
            if kib > 1 << 30 {
                let c = self.not_converted(d, &d.text(), "a memory limit over 1 TiB");
                s.comments.extend(c);
                return Ok(());
            }
            lines.push("kind = \"memory\"".to_string());
            if kib.is_multiple_of(1024) {
                lines.push(format!("max = \"{}MiB\"", kib / 1024));
            } else {
                lines.push(format!("max = \"{kib}KiB\""));
            }
            if total {
                comments.push(format!("# {} ({}): Monit's total memory counts the children too; custos's memory check reads the process alone", d.text(), self.at(d)));
            }
        }
        self.finish_check(d, s, lines, comments, failures, None, action);
        Ok(())
    }

    fn emit(&mut self, lines: &[String]) {
        for l in lines {
            push_line(&mut self.body, l);
        }
    }

    fn write_service(&mut self, head: &Directive, s: OutService) {
        let mut o: Vec<String> = vec![String::new()];
        o.push(format!("# {} ({})", head.text(), self.at(head)));
        let missing_start = s.start.is_none();
        let over_limit = !missing_start && self.services >= MAX_SERVICES;
        let commented = missing_start || over_limit;
        if missing_start {
            o.extend(self.not_converted(
                head,
                &format!("check process {} without a start program", s.name),
                "custos supervises what it can start: the service below is commented out; give it `start` to use it",
            ));
        } else if over_limit {
            o.extend(self.not_converted(
                head,
                &format!("check process {}", s.name),
                "custos supervises at most 32 services: the service below is commented out",
            ));
        }
        let mut body = Vec::new();
        body.push("[[service]]".to_string());
        body.push(format!("name = {}", toml_str(&s.name)));
        body.extend(s.identity);
        body.extend(s.start_line);
        body.extend(s.stop_line);
        body.extend(s.comments);
        body.extend(s.keys);
        if !s.restart.is_empty() {
            body.push(String::new());
            body.push("[service.restart]".to_string());
            body.extend(s.restart);
        }
        for c in s.checks {
            body.push(String::new());
            body.push("[[service.check]]".to_string());
            body.extend(c.lines);
        }
        for l in body {
            if commented && !l.is_empty() && !l.starts_with('#') {
                o.push(format!("# {l}"));
            } else {
                o.push(l);
            }
        }
        if !commented {
            self.services += 1;
        }
        self.emit(&o);
    }
}

#[cfg(test)]
mod tests {
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
            include_str!("../tests/fixtures/monit/manual.monitrc"),
            include_str!("../tests/fixtures/monit/seed.monitrc"),
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
        let crash = include_bytes!("../tests/fixtures/fuzz/monit-crash-1");
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

//! Reading monitrc into tokens: `#` comments, quoted strings, `{…}` blocks, operators and
//! words, with `include GLOB` spliced in where it is written. Every read is bounded (file size,
//! include depth, files and tokens in all).

use std::path::{Path, PathBuf};

use super::glob::expand_glob;
use super::{MAX_FILES, MAX_FILE_BYTES, MAX_INCLUDE_DEPTH, MAX_TOKENS};

#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) text: String,
    /// A quoted string: never a keyword, never a noise word.
    pub(super) quoted: bool,
    pub(super) file: usize,
    pub(super) line: u32,
}

impl Tok {
    /// This token is the keyword `kw` (case-insensitive, unquoted).
    pub(super) fn is(&self, kw: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(kw)
    }
    pub(super) fn kw(&self) -> String {
        if self.quoted {
            String::new()
        } else {
            self.text.to_ascii_lowercase()
        }
    }
}

pub(super) struct Lexer {
    pub(super) files: Vec<PathBuf>,
    pub(super) tokens: Vec<Tok>,
    pub(super) root: Option<PathBuf>,
    /// Notes about includes (what matched nothing), written at the top of the config.
    pub(super) notes: Vec<String>,
}

pub(super) fn at(files: &[PathBuf], file: usize, line: u32) -> String {
    let f = files.get(file).map(|p| p.display().to_string());
    format!("{}:{line}", f.unwrap_or_default())
}

impl Lexer {
    pub(super) fn read_file(
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
    pub(super) fn lex_file(&mut self, path: &Path, text: &str, depth: usize) -> Result<(), String> {
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

    pub(super) fn include(&mut self, from: &Path, glob: &Tok, depth: usize) -> Result<(), String> {
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

pub(super) fn read_bounded(path: &Path) -> Result<String, String> {
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
pub(super) fn lex(text: &str, file: usize) -> Result<Vec<Tok>, (u32, String)> {
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
        let start = line;
        let (text, quoted) = if c == '\n' {
            line += 1;
            it.next();
            continue;
        } else if c.is_whitespace() {
            it.next();
            continue;
        } else if c == '#' {
            take_while(&mut it, |c| c != '\n');
            continue;
        } else if c == '"' || c == '\'' {
            let s = quoted(&mut it, c, &mut line)
                .ok_or_else(|| (start, format!("unterminated string (opened with {c})")))?;
            (s, true)
        } else if c == '{' {
            let s = block(&mut it, &mut line)
                .ok_or_else(|| (start, "unterminated `{` block".to_string()))?;
            (s, false)
        } else if is_op(c) {
            (take_while(&mut it, is_op), false)
        } else {
            let word = |c: char| !(c.is_whitespace() || c == '"' || c == '{' || is_op(c));
            (take_while(&mut it, word), false)
        };
        out.push(Tok {
            text,
            quoted,
            file,
            line: start,
        });
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// The characters from here while `keep` holds.
fn take_while(it: &mut Chars, keep: impl Fn(char) -> bool) -> String {
    let mut s = String::new();
    while let Some(&c) = it.peek() {
        if !keep(c) {
            break;
        }
        s.push(c);
        it.next();
    }
    s
}

/// A string opened with the quote `q` (next in `it`), up to its closing quote; `\q` is the
/// quote itself. None when it is not closed.
fn quoted(it: &mut Chars, q: char, line: &mut u32) -> Option<String> {
    it.next();
    let mut s = String::new();
    while let Some(ch) = it.next() {
        if ch == q {
            return Some(s);
        }
        if ch == '\\' && it.peek() == Some(&q) {
            s.push(q);
            it.next();
            continue;
        }
        if ch == '\n' {
            *line += 1;
        }
        s.push(ch);
    }
    None
}

/// A `{…}` block (next in `it`) with its braces. None when it is not closed.
fn block(it: &mut Chars, line: &mut u32) -> Option<String> {
    let mut s = String::new();
    for ch in it.by_ref() {
        if ch == '\n' {
            *line += 1;
        }
        s.push(ch);
        if ch == '}' {
            return Some(s);
        }
    }
    None
}

pub(super) fn is_op(c: char) -> bool {
    matches!(c, '=' | '<' | '>' | '!')
}

pub(super) fn num(t: Option<&&Tok>) -> Option<u64> {
    t.and_then(|t| t.text.parse().ok())
}

pub(super) fn float(t: Option<&&Tok>) -> Option<f64> {
    t.and_then(|t| t.text.trim_end_matches('%').parse().ok())
        .filter(|f: &f64| f.is_finite() && *f >= 0.0)
}

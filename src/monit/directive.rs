//! The directive model: tokens grouped into statements (`set …`, `check …` with its body of
//! directives), Monit's noise words set aside.

use std::path::PathBuf;

use super::lex::{at, Tok};

/// One directive: its tokens, and where it starts.
#[derive(Debug)]
pub(super) struct Directive {
    pub(super) toks: Vec<Tok>,
    pub(super) file: usize,
    pub(super) line: u32,
}

impl Directive {
    /// The directive as written (tokens joined; strings quoted again).
    pub(super) fn text(&self) -> String {
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
    pub(super) fn words(&self) -> Vec<&Tok> {
        self.toks.iter().filter(|t| !is_noise(t)).collect()
    }
}

pub(super) fn is_noise(t: &Tok) -> bool {
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
pub(super) struct Check {
    /// The `check` line: `check process NAME with pidfile …` up to the first directive.
    pub(super) head: Directive,
    pub(super) body: Vec<Directive>,
}

#[derive(Debug)]
pub(super) enum Stmt {
    Set(Directive),
    Check(Check),
}

/// Words that begin a directive inside a `check` entry.
pub(super) fn starts_directive(t: &Tok, prev: Option<&Tok>) -> bool {
    let after_action = prev.is_some_and(|p| p.is("then") || p.is("else") || p.is("repeat"));
    match t.kw().as_str() {
        "if" => !prev.is_some_and(|p| p.is("else")),
        "start" | "stop" | "restart" | "alert" | "every" => !after_action,
        "depends" | "depend" | "group" | "mode" | "noalert" | "onreboot" => true,
        _ => false,
    }
}

pub(super) fn statements(toks: &[Tok], files: &[PathBuf]) -> Result<Vec<Stmt>, String> {
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

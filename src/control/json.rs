//! The tiny, strict JSON reader and writer both sides of the control socket use: flat objects
//! of strings and booleans only.

use crate::text::json_str;

/// A JSON value in a flat object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
}

/// Parses one flat JSON object of string and boolean values.
pub fn parse_flat_object(text: &str) -> Result<Vec<(String, Value)>, &'static str> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let k = p.string()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            let v = match p.peek() {
                Some(b'"') => Value::Str(p.string()?),
                Some(b't') => p.word("true").map(|_| Value::Bool(true))?,
                Some(b'f') => p.word("false").map(|_| Value::Bool(false))?,
                _ => return Err("expected a string or a boolean"),
            };
            if out.len() >= 16 {
                return Err("too many keys");
            }
            out.push((k, v));
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                _ => return Err("expected , or }"),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err("trailing bytes after the object");
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), &'static str> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err("malformed JSON")
        }
    }
    fn word(&mut self, w: &str) -> Result<(), &'static str> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(())
        } else {
            Err("malformed JSON")
        }
    }
    fn string(&mut self) -> Result<String, &'static str> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
                            let n = u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?;
                            self.i += 4;
                            out.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err("bad escape"),
                    }
                }
                c if c < 0x20 => return Err("control character in string"),
                _ => {
                    // Copy the whole UTF-8 sequence (the input is valid UTF-8).
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                        end += 1;
                    }
                    self.i = end;
                    out.push_str(
                        std::str::from_utf8(&self.s[start..end]).map_err(|_| "bad UTF-8")?,
                    );
                }
            }
        }
    }
}

/// `{"ok":true,"text":"…"}` / `{"ok":false,"error":"…"}` plus a newline.
pub fn reply_text(ok: bool, text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 32);
    s.push_str(if ok {
        "{\"ok\":true,\"text\":"
    } else {
        "{\"ok\":false,\"error\":"
    });
    json_str(&mut s, text);
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_the_writer_and_reader() {
        let tricky = "a \"quoted\" \\ back\nslash\ttab \u{1} é ✓";
        let line = reply_text(true, tricky);
        let fields = parse_flat_object(line.trim_end()).expect("parse");
        assert_eq!(fields[0], ("ok".to_string(), Value::Bool(true)));
        assert_eq!(
            fields[1],
            ("text".to_string(), Value::Str(tricky.to_string()))
        );
    }
}

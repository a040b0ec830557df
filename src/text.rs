//! Text output in fixed or bounded buffers: JSON string literals and the writers that render
//! status, events, metrics and hook lines; `fit`, `Cut` and `cut` for a text that must fit a
//! fixed buffer (cut at a char boundary, never an error).

use std::fmt::{self, Write as _};

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The longest start of `s` that fits in `room` bytes and ends at a char boundary.
pub fn fit(s: &str, room: usize) -> &str {
    let mut end = s.len().min(room);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A `fmt::Write` into a fixed-capacity string that keeps what fits, cut at a char boundary,
/// and drops the rest. Never an error: a cut text is still a text.
pub struct Cut<'a, const N: usize>(pub &'a mut heapless::String<N>);

impl<const N: usize> fmt::Write for Cut<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let part = fit(s, N - self.0.len());
        // Fits by construction.
        let _ = self.0.push_str(part);
        Ok(())
    }
}

/// `s` cut to `N` bytes at a char boundary.
pub fn cut<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    let _ = Cut(&mut out).write_str(s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_ends_at_a_char_boundary() {
        assert_eq!(fit("abc", 2), "ab");
        assert_eq!(fit("abc", 9), "abc");
        // 'é' is two bytes: a cut through it keeps neither.
        assert_eq!(fit("aé", 2), "a");
        assert_eq!(cut::<4>("xé€").as_str(), "xé");
        let mut s = heapless::String::<5>::new();
        let (ab, euros) = ("ab", "€€");
        let _ = write!(Cut(&mut s), "{ab}-{euros}");
        assert_eq!(s.as_str(), "ab-");
        let _ = Cut(&mut s).write_str("zz");
        assert_eq!(s.as_str(), "ab-zz");
    }
}

//! A strict, bounded reading of an HTTP/1.x reply (pure).

use super::Failure;

/// Bytes of HTTP headers custos reads; a reply whose headers do not end within them fails.
pub const MAX_HTTP_HEADERS: usize = 2048;

/// Bytes of HTTP body searched for `expect`; the rest of a longer body is not read.
pub const MAX_HTTP_BODY: usize = 4096;

pub(super) const HTTP_BUF: usize = MAX_HTTP_HEADERS + MAX_HTTP_BODY;

/// Progress of an HTTP reply read so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Http {
    NeedMore,
    Pass,
    Fail(Failure),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads an HTTP/1.x reply strictly: status line `HTTP/1.x NNN ...`, headers ending in an empty
/// CRLF line within MAX_HTTP_HEADERS, then up to MAX_HTTP_BODY bytes of body searched for
/// `expect`. `eof` says the peer closed. Decides as early as it can.
pub fn evaluate_http(buf: &[u8], eof: bool, want: u16, expect: Option<&[u8]>) -> Http {
    const PREFIX: &[u8] = b"HTTP/1.";
    let head = &buf[..buf.len().min(PREFIX.len())];
    if head != &PREFIX[..head.len()] {
        return Http::Fail(Failure::NotHttp);
    }
    let Some(end) = find(&buf[..buf.len().min(MAX_HTTP_HEADERS)], b"\r\n\r\n") else {
        if buf.len() >= MAX_HTTP_HEADERS {
            return Http::Fail(Failure::HeadersTooLong);
        }
        return if eof {
            Http::Fail(Failure::ClosedEarly { got: buf.len() })
        } else {
            Http::NeedMore
        };
    };
    // "HTTP/1.x NNN": version digit, space, three digits, then space or CRLF.
    let line = &buf[..end];
    let ok_line = line.len() >= 12
        && line[7].is_ascii_digit()
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
        && (line.len() == 12 || line[12] == b' ' || line[12] == b'\r');
    if !ok_line {
        return Http::Fail(Failure::NotHttp);
    }
    let got = line[9..12]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if got != want {
        return Http::Fail(Failure::Status { got, want });
    }
    let Some(expect) = expect else {
        return Http::Pass;
    };
    let body = &buf[end + 4..];
    let body = &body[..body.len().min(MAX_HTTP_BODY)];
    if find(body, expect).is_some() {
        return Http::Pass;
    }
    if eof || body.len() >= MAX_HTTP_BODY {
        return Http::Fail(Failure::ContentMismatch {
            searched: body.len(),
        });
    }
    Http::NeedMore
}

//! The record file, version 1: its header (entries, bytes, CRC-32 of the body), one escaped,
//! tab-separated line per entry, repeats merged; parsing it back and what can be wrong with it.

use std::fmt::{self, Write as _};
use std::io;
use std::path::Path;

use heapless::{Deque, String as HString, Vec as HVec};

use super::entry::{parse_utc, Entry, Kind, Utc};
use super::{
    BootId, BOOT_ID_LEN, MAX_FILE_BYTES, MAX_HEADER_BYTES, MAX_RECORDS, MAX_TEXT, MERGE_GAP,
    VERSION,
};
use crate::limits::MAX_NAME;

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zlib and `cksum -a crc32b` compute.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// What is wrong with a record file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Larger than `MAX_FILE_BYTES`.
    TooLarge,
    /// No valid header line.
    BadHeader,
    /// A version this custos does not read.
    Version(u32),
    /// Fewer (or more) body bytes than the header says: a cut write.
    Length {
        expected: usize,
        found: usize,
    },
    BadCrc {
        expected: u32,
        found: u32,
    },
    /// A line (counted from 1, the header is line 1) that does not parse.
    BadLine(usize),
    /// A different number of lines than the header says.
    Count {
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::TooLarge => write!(f, "larger than {MAX_FILE_BYTES} bytes"),
            Corruption::BadHeader => f.write_str("no valid header line"),
            Corruption::Version(v) => write!(f, "unknown version {v}"),
            Corruption::Length { expected, found } => write!(
                f,
                "truncated or extended: header says {expected} bytes, file has {found}"
            ),
            Corruption::BadCrc { expected, found } => {
                write!(
                    f,
                    "CRC mismatch: header says {expected:08x}, body has {found:08x}"
                )
            }
            Corruption::BadLine(n) => write!(f, "line {n} does not parse"),
            Corruption::Count { expected, found } => {
                write!(f, "header says {expected} entries, file has {found}")
            }
        }
    }
}

/// Reads and parses a record file. `Err`: it could not be read; `Ok(Err)`: it is corrupt.
pub(super) fn read_file(path: &Path) -> io::Result<Result<Deque<Entry, MAX_RECORDS>, Corruption>> {
    let data = crate::files::read_regular(path, MAX_FILE_BYTES)?;
    if data.len() > MAX_FILE_BYTES {
        return Ok(Err(Corruption::TooLarge));
    }
    Ok(parse(&data))
}

/// Parses the bytes of a record file (header, then one line per entry).
pub fn parse(data: &[u8]) -> Result<Deque<Entry, MAX_RECORDS>, Corruption> {
    let nl = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Corruption::BadHeader)?;
    let header = std::str::from_utf8(&data[..nl]).map_err(|_| Corruption::BadHeader)?;
    let body = &data[nl + 1..];
    let h = parse_header(header)?;
    if h.version != VERSION {
        return Err(Corruption::Version(h.version));
    }
    if body.len() != h.bytes {
        return Err(Corruption::Length {
            expected: h.bytes,
            found: body.len(),
        });
    }
    let found = crc32(body);
    if found != h.crc {
        return Err(Corruption::BadCrc {
            expected: h.crc,
            found,
        });
    }
    let body = std::str::from_utf8(body).map_err(|_| Corruption::BadLine(2))?;
    let mut entries = Deque::new();
    let mut count = 0;
    if !body.is_empty() {
        let Some(lines) = body.strip_suffix('\n') else {
            return Err(Corruption::BadLine(2 + body.matches('\n').count()));
        };
        for (i, line) in lines.split('\n').enumerate() {
            let e = parse_line(line).ok_or(Corruption::BadLine(i + 2))?;
            if entries.is_full() {
                entries.pop_front();
            }
            let _ = entries.push_back(e);
            count += 1;
        }
    }
    if count != h.entries {
        return Err(Corruption::Count {
            expected: h.entries,
            found: count,
        });
    }
    Ok(entries)
}

struct Header {
    version: u32,
    entries: usize,
    bytes: usize,
    crc: u32,
}

fn parse_header(line: &str) -> Result<Header, Corruption> {
    let mut w = line.split(' ');
    if w.next() != Some("custos-record") {
        return Err(Corruption::BadHeader);
    }
    let version = w
        .next()
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|v| v.parse().ok())
        .ok_or(Corruption::BadHeader)?;
    if version != VERSION {
        return Err(Corruption::Version(version));
    }
    let mut field = |name: &str| w.next().and_then(|f| f.strip_prefix(name));
    let entries = field("entries=").and_then(|v| v.parse().ok());
    let bytes = field("bytes=").and_then(|v| v.parse().ok());
    let crc = field("crc32=").and_then(|v| u32::from_str_radix(v, 16).ok());
    match (entries, bytes, crc, w.next()) {
        (Some(entries), Some(bytes), Some(crc), None) => Ok(Header {
            version,
            entries,
            bytes,
            crc,
        }),
        _ => Err(Corruption::BadHeader),
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut f = line.split('\t');
    let time = parse_utc(f.next()?)?;
    let boot_s = f.next()?;
    if boot_s.len() > BOOT_ID_LEN {
        return None;
    }
    let service = unescape::<MAX_NAME>(f.next()?)?;
    let kind = Kind::parse(f.next()?)?;
    let text = unescape::<MAX_TEXT>(f.next()?)?;
    if f.next().is_some() {
        return None;
    }
    let mut boot = BootId::new();
    boot.push_str(boot_s).ok()?;
    Some(Entry {
        time,
        boot,
        service,
        kind,
        text,
    })
}

fn escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(Bytes(out), "\\x{:02x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

pub(super) fn unescape<const N: usize>(s: &str) -> Option<HString<N>> {
    let mut out = HString::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let c = if c != '\\' {
            c
        } else {
            match chars.next()? {
                '\\' => '\\',
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'x' => {
                    let hex = [chars.next()?, chars.next()?];
                    let hi = hex[0].to_digit(16)?;
                    let lo = hex[1].to_digit(16)?;
                    char::from_u32(hi * 16 + lo)?
                }
                _ => return None,
            }
        };
        out.push(c).ok()?;
    }
    Some(out)
}

/// `fmt::Write` onto a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn format_line(out: &mut Vec<u8>, e: &Entry) {
    let _ = write!(Bytes(out), "{}\t{}\t", Utc(e.time), e.boot);
    escape(out, &e.service);
    let _ = write!(Bytes(out), "\t{}\t", e.kind);
    escape(out, &e.text);
    out.push(b'\n');
}

/// A death's text up to the "(pid N, up T)" that follows its cause.
fn cause(text: &str) -> Option<&str> {
    text.split('(').next()
}

/// The whole file: header and body. At most `MAX_FILE_BYTES`; allocated per write, not kept.
///
/// Repeats are merged: an entry is left out when the next entry of its service, met before
/// any entry of another service, has the same kind (for a death, the same cause too) and is
/// stamped at most `MERGE_GAP` later;
/// that one is written with "N more since <time of the first>: " before its text. A crash
/// loop (died, started, died, ...) or a reload loop is then two lines or one, not 64. The
/// stamps compared are the entries' own (wall clock): a clock step at worst merges or splits
/// lines; the newest entry of every run is always written. The ring in memory keeps every
/// entry until custos exits.
pub(super) fn serialize(entries: &Deque<Entry, MAX_RECORDS>) -> Vec<u8> {
    let v: HVec<&Entry, MAX_RECORDS> = entries.iter().collect();
    // Per entry: merged into a later one; how many it stands for besides itself; the first stamp.
    let mut merged = [false; MAX_RECORDS];
    let mut more = [0usize; MAX_RECORDS];
    let mut since = [0u64; MAX_RECORDS];
    for (i, e) in v.iter().enumerate() {
        since[i] = e.time;
    }
    for (i, e) in v.iter().enumerate() {
        let next = v[i + 1..]
            .iter()
            .position(|n| n.service != e.service || n.kind == e.kind)
            .map(|k| i + 1 + k);
        if let Some(j) = next {
            let n = v[j];
            // Deaths only with the same cause: a death's cause is never merged away.
            let same = e.kind != Kind::Died || cause(&e.text) == cause(&n.text);
            if n.service == e.service && n.time.abs_diff(e.time) <= MERGE_GAP && same {
                merged[i] = true;
                more[j] += more[i] + 1;
                since[j] = since[i];
            }
        }
    }
    let mut body = Vec::with_capacity(entries.len() * 128);
    let mut lines = 0;
    for (i, e) in v.iter().enumerate() {
        if merged[i] {
            continue;
        }
        lines += 1;
        if more[i] == 0 {
            format_line(&mut body, e);
        } else {
            let text = format_args!("{} more since {}: {}", more[i], Utc(since[i]), e.text);
            let m = Entry::new(e.time, &e.boot, &e.service, e.kind, text);
            format_line(&mut body, &m);
        }
    }
    let mut file = Vec::with_capacity(body.len() + MAX_HEADER_BYTES);
    let _ = writeln!(
        Bytes(&mut file),
        "custos-record v{VERSION} entries={} bytes={} crc32={:08x}",
        lines,
        body.len(),
        crc32(&body)
    );
    file.extend_from_slice(&body);
    file
}

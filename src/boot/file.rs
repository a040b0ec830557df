//! The boots file: parsing it (header, CRC, one line per boot) and writing it whole.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use heapless::{Deque, String as HString};

use super::{Boot, End, GateVerdict, FILE_NAME, MAX_FILE_BYTES, MAX_LINE, VERSION};
use crate::limits::MAX_BOOTS;
use crate::record::{crc32, parse_utc, BootId, Utc};

/// The boots in `state_dir`, oldest first (for the client); `None` if unreadable or corrupt.
pub fn load(state_dir: &Path) -> Option<Vec<Boot>> {
    match read_file(&state_dir.join(FILE_NAME)) {
        Ok(Ok(ring)) => Some(ring.into_iter().collect()),
        _ => None,
    }
}

pub(super) fn read_file(path: &Path) -> io::Result<Result<Deque<Boot, MAX_BOOTS>, String>> {
    let data = crate::files::read_regular(path, MAX_FILE_BYTES)?;
    if data.len() > MAX_FILE_BYTES {
        return Ok(Err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(parse(&data))
}

/// Parses the bytes of a boots file (header, then one line per boot).
pub fn parse(data: &[u8]) -> Result<Deque<Boot, MAX_BOOTS>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
    let (header, body) = text
        .split_once('\n')
        .ok_or_else(|| "no header line".to_string())?;
    let mut h = header.split(' ');
    let bad_header = || "no valid header line".to_string();
    if h.next() != Some("custos-boots") {
        return Err(bad_header());
    }
    if h.next() != Some("v1") {
        return Err(format!("unknown version ({header})"));
    }
    let mut field = |name: &str| h.next().and_then(|f| f.strip_prefix(name));
    let entries: usize = field("entries=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad_header)?;
    let bytes: usize = field("bytes=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad_header)?;
    let crc = field("crc32=")
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .ok_or_else(bad_header)?;
    if body.len() != bytes {
        return Err(format!(
            "truncated or extended: header says {bytes} bytes, file has {}",
            body.len()
        ));
    }
    if crc32(body.as_bytes()) != crc {
        return Err("CRC mismatch".to_string());
    }
    let mut ring = Deque::new();
    let mut count = 0;
    for (i, line) in body.lines().enumerate() {
        let b = parse_line(line).ok_or_else(|| format!("line {} does not parse", i + 2))?;
        if ring.is_full() {
            ring.pop_front();
        }
        let _ = ring.push_back(b);
        count += 1;
    }
    if count != entries {
        return Err(format!("header says {entries} entries, file has {count}"));
    }
    Ok(ring)
}

fn parse_line(line: &str) -> Option<Boot> {
    let mut f = line.split('\t');
    let time = parse_utc(f.next()?)?;
    let id_s = f.next()?;
    let end = End::parse(f.next()?)?;
    let flags = f.next()?;
    if f.next().is_some() {
        return None;
    }
    let mut id = BootId::new();
    id.push_str(id_s).ok()?;
    let (mut good, mut degraded, mut gate) = (false, false, None);
    if flags != "-" {
        for fl in flags.split(',') {
            match fl {
                "good" => good = true,
                "degraded" => degraded = true,
                "healthy" => gate = Some(GateVerdict::Healthy),
                "unhealthy" => gate = Some(GateVerdict::Unhealthy),
                _ => return None,
            }
        }
    }
    Some(Boot {
        time,
        id,
        end,
        good,
        degraded,
        gate,
    })
}

pub(super) fn serialize(ring: &Deque<Boot, MAX_BOOTS>) -> Vec<u8> {
    let mut body = String::with_capacity(ring.len() * MAX_LINE);
    for b in ring {
        let mut flags: HString<32> = HString::new();
        let set = [
            (b.good, "good"),
            (b.degraded, "degraded"),
            (b.gate == Some(GateVerdict::Healthy), "healthy"),
            (b.gate == Some(GateVerdict::Unhealthy), "unhealthy"),
        ];
        for (on, word) in set {
            if on {
                if !flags.is_empty() {
                    let _ = flags.push(',');
                }
                let _ = flags.push_str(word);
            }
        }
        if flags.is_empty() {
            let _ = flags.push('-');
        }
        let _ = writeln!(
            body,
            "{}\t{}\t{}\t{flags}",
            Utc(b.time),
            b.id,
            b.end.as_str()
        );
    }
    let mut file = format!(
        "custos-boots v{VERSION} entries={} bytes={} crc32={:08x}\n",
        ring.len(),
        body.len(),
        crc32(body.as_bytes())
    );
    file.push_str(&body);
    file.into_bytes()
}

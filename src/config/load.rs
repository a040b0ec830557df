//! Loading a config: reading the file (a regular file, bounded), checking it is UTF-8 and TOML,
//! then reading and validating it.

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::validate::Validator;
use super::{Config, ConfigError, ConfigErrors};
use crate::limits::MAX_CONFIG_BYTES;

/// Reads and checks a config file. Every problem is reported, each with its line and key.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            line: None,
            key: String::new(),
            message,
        }],
    };
    // A regular file only (followed through symlinks: /etc/custos.toml may point at a writable
    // partition), checked before it is opened: a FIFO would block the reload (and the loop
    // with it) until a writer appears, and a device must not be opened at all.
    let mut f =
        crate::files::open_regular(path, true).map_err(|e| fail(format!("cannot read: {e}")))?;
    let len = f
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    let too_big = |len: u64| {
        fail(format!(
            "file is {len} bytes, more than the {MAX_CONFIG_BYTES} custos reads"
        ))
    };
    if len > MAX_CONFIG_BYTES {
        return Err(too_big(len));
    }
    // Bounded even if the file grows while it is read.
    let mut buf = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut f, MAX_CONFIG_BYTES + 1),
        &mut buf,
    )
    .map_err(|e| fail(format!("cannot read: {e}")))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(buf.len() as u64));
    }
    parse_bytes(&buf).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parses config bytes as `parse` does; bytes that are not UTF-8 are an error naming the line
/// and column (in bytes) of the first bad byte.
pub fn parse_bytes(bytes: &[u8]) -> Result<Config, Vec<ConfigError>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        vec![ConfigError {
            line: Some(line_of(bytes, at)),
            key: String::new(),
            message: format!(
                "not UTF-8: byte 0x{:02x} at column {}",
                bytes.get(at).copied().unwrap_or(0),
                at - line_start + 1
            ),
        }]
    })?;
    parse(text)
}

/// What PID 1 (init) runs on this machine: its /proc/1/exe and its arguments joined by spaces,
/// as an `exe` identity would see them. `None` when /proc/1 cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitIdentity {
    pub exe: PathBuf,
    pub args: String,
}

impl InitIdentity {
    /// Reads /proc/1.
    pub fn read() -> Option<InitIdentity> {
        let exe = std::fs::read_link("/proc/1/exe").ok()?;
        let exe = match exe
            .as_os_str()
            .as_encoded_bytes()
            .strip_suffix(b" (deleted)")
        {
            Some(b) => PathBuf::from(String::from_utf8_lossy(b).into_owned()),
            None => exe,
        };
        let cmdline = std::fs::read("/proc/1/cmdline").ok()?;
        Some(InitIdentity {
            exe,
            args: args_of(&cmdline),
        })
    }

    /// Whether the identity `exe` (+ `args`) could match this init: the same program (as
    /// written, or once symlinks are resolved) and, when `args` is given, the same arguments.
    pub fn could_match(&self, exe: &Path, args: Option<&str>) -> bool {
        let same_exe = exe == self.exe
            || std::fs::canonicalize(exe).is_ok_and(|c| c == self.exe)
            || std::fs::canonicalize(&self.exe).is_ok_and(|c| c == exe);
        same_exe && args.is_none_or(|a| a == self.args)
    }
}

/// The arguments in a /proc/PID/cmdline as an `exe` identity reads them
/// ([`crate::procs::args_text`]). busybox init pads its rewritten argv with NULs
/// ("init\0\0\0..."), which reads as no arguments.
pub(super) fn args_of(cmdline: &[u8]) -> String {
    crate::procs::args_text(&String::from_utf8_lossy(cmdline))
}

/// Parses and validates config text. A TOML syntax error is reported alone; unknown keys and
/// values of the wrong type are all reported (in line order) before any value is checked.
/// An `exe` identity that could match this machine's PID 1 is refused.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    parse_with_init(text, InitIdentity::read().as_ref())
}

/// [`parse`], with init's identity given (None: not checked).
pub fn parse_with_init(
    text: &str,
    init: Option<&InitIdentity>,
) -> Result<Config, Vec<ConfigError>> {
    let doc = DeTable::parse(text).map_err(|e| {
        vec![ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            key: String::new(),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut v = Validator {
        text,
        errors: Vec::new(),
        init,
    };
    let raw = v.read_config(doc.get_ref());
    if !v.errors.is_empty() {
        v.errors.sort_by_key(|e| e.line);
        return Err(v.errors);
    }
    let config = v.config(&raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

pub(super) fn line_of(text: &(impl AsRef<[u8]> + ?Sized), offset: usize) -> usize {
    text.as_ref()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

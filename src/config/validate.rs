//! The checks every section's validation shares: durations, counts, paths and argvs within
//! their bounds, each problem an error naming its line and key.

use std::ffi::CString;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::load::{line_of, InitIdentity};
use super::read::{Fields, Label};
use super::schema::{Type, Unset};
use super::{parse_duration, Argv, ConfigError};
use crate::clock::Dur;
use crate::limits::{MAX_ARGV, MAX_ARG_LEN};

/// Collects every problem of one config text.
pub(super) struct Validator<'a> {
    pub text: &'a str,
    pub errors: Vec<ConfigError>,
    pub init: Option<&'a InitIdentity>,
}

impl Validator<'_> {
    pub fn err(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            line: span.map(|s| line_of(self.text, s.start)),
            key: key.to_string(),
            message: message.into(),
        });
    }

    pub fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let Some(v) = v else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if d < min => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is shorter than the minimum {}", Dur(d), Dur(min)),
                );
                default
            }
            Ok(d) if d > max => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is longer than the maximum {}", Dur(d), Dur(max)),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(Some(v.span()), key, e);
                default
            }
        }
    }

    pub fn path(&mut self, v: &Spanned<String>, key: &str) -> PathBuf {
        let s = v.get_ref();
        if !s.starts_with('/') {
            self.err(
                Some(v.span()),
                key,
                format!("`{s}` is not an absolute path"),
            );
        } else if s.len() > MAX_ARG_LEN {
            self.err(
                Some(v.span()),
                key,
                format!("path is {} bytes, over the limit of {MAX_ARG_LEN}", s.len()),
            );
        } else if s.contains('\0') {
            self.err(Some(v.span()), key, "path contains a NUL byte");
        }
        PathBuf::from(s)
    }

    pub fn argv(&mut self, v: &Spanned<Vec<String>>, key: &str) -> Argv {
        let list = v.get_ref();
        let span = Some(v.span());
        let mut args = Vec::new();
        if list.is_empty() {
            self.err(
                span,
                key,
                "argv is empty: give the program and its arguments",
            );
            return Argv {
                args: vec![CString::default()],
            };
        }
        if list.len() > MAX_ARGV {
            self.err(
                span.clone(),
                key,
                format!("{} entries, over the limit of {MAX_ARGV}", list.len()),
            );
        }
        if !list[0].starts_with('/') {
            self.err(
                span.clone(),
                key,
                format!(
                    "`{}` is not an absolute path (scripts run without a shell and without PATH lookup)",
                    list[0]
                ),
            );
        }
        for a in list {
            if a.len() > MAX_ARG_LEN {
                self.err(
                    span.clone(),
                    key,
                    format!(
                        "an entry is {} bytes, over the limit of {MAX_ARG_LEN}",
                        a.len()
                    ),
                );
            }
            match CString::new(a.as_bytes()) {
                Ok(c) => args.push(c),
                Err(_) => {
                    self.err(span.clone(), key, "an entry contains a NUL byte");
                    args.push(CString::default());
                }
            }
        }
        Argv { args }
    }

    /// A count within `min..=max`, else an error and the default.
    pub fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        min: u32,
        max: u32,
        default: u32,
    ) -> u32 {
        let Some(v) = v else { return default };
        match u32::try_from(*v.get_ref()) {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.err(
                    Some(v.span()),
                    key,
                    format!("{} is not within {min}..={max}", v.get_ref()),
                );
                default
            }
        }
    }

    /// The duration `name` of `f`, within its schema bounds; unset (or wrong), its default.
    pub fn dur(&mut self, f: &Fields, l: &Label, name: &str) -> Duration {
        let default = match f.key(name).map(|k| k.unset) {
            Some(Unset::Dur(d)) => d,
            _ => {
                debug_assert!(false, "`{name}` has no default duration");
                Duration::ZERO
            }
        };
        self.dur_or(f, l, name, default)
    }

    /// The duration `name` of `f`, within its schema bounds; unset (or wrong), `default`.
    pub fn dur_or(&mut self, f: &Fields, l: &Label, name: &str, default: Duration) -> Duration {
        let bounds = match f.key(name).map(|k| k.ty) {
            Some(Type::Dur(min, max)) => (min, max),
            _ => {
                debug_assert!(false, "`{name}` is not a duration");
                (Duration::ZERO, Duration::MAX)
            }
        };
        self.duration(&f.str(name), &l.key(name), default, bounds)
    }

    /// The count `name` of `f`, within its schema bounds; unset (or wrong), `default`.
    pub fn count_of(&mut self, f: &Fields, l: &Label, name: &str, default: u32) -> u32 {
        let (min, max) = match f.key(name).map(|k| k.ty) {
            Some(Type::Count(min, max)) => (min, max),
            _ => {
                debug_assert!(false, "`{name}` is not a count");
                (0, 0)
            }
        };
        let clamp = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        self.count(&f.int(name), &l.key(name), clamp(min), clamp(max), default)
    }
}

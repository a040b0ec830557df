//! Include globs: `*`, `?` and `[…]` in any path component, resolved by listing directories.

use std::path::{Path, PathBuf};

pub(super) fn expand_glob(
    pattern: &Path,
    out: &mut Vec<PathBuf>,
    limit: usize,
) -> Result<(), String> {
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
pub(super) fn fnmatch(p: &[u8], s: &[u8]) -> bool {
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
pub(super) fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
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

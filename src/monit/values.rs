//! Monit's values read as custos's: an http URL, a program string split into argv, the
//! literal text of a regex.

/// `http://HOST[:PORT][/PATH]` as (host, port, path). Anything else (https, credentials,
/// a query with spaces) is None.
pub(super) fn parse_url(u: &str) -> Option<(String, u64, String)> {
    let rest = u.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port, path))
}

/// Splits a Monit program string into argv the way Monit does: on spaces, with single or
/// double quotes grouping.
pub(super) fn split_argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The literal text of a regex: its longest run of characters that are not regex syntax.
pub(super) fn regex_literal(re: &str) -> String {
    let mut best = String::new();
    let mut cur = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | ' ' | ':' | '=');
        if c == '\\' {
            // An escaped character is literal text (`\.` is a dot), a class (`\d`) is not.
            match chars.next() {
                Some(n) if !n.is_ascii_alphanumeric() => {
                    cur.push(n);
                    continue;
                }
                _ => {}
            }
        } else if literal {
            // A character followed by `*`, `?` or `{0,` may be absent: not literal.
            if matches!(chars.peek(), Some('*') | Some('?')) {
            } else {
                cur.push(c);
                continue;
            }
        }
        if cur.trim().len() > best.trim().len() {
            best = cur.clone();
        }
        cur.clear();
    }
    if cur.trim().len() > best.trim().len() {
        best = cur;
    }
    best.trim().to_string()
}

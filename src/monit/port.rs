//! `if failed … port` tests read: the options of the condition (host, port, type, protocol,
//! request, content, status, timeout, url), and the address custos's check would connect to.

use super::convert::Converter;
use super::directive::Directive;
use super::lex::{is_op, num, Tok};
use super::values::parse_url;
use super::write::toml_str;

impl Converter<'_> {
    /// The options of a port test's condition, read in order.
    pub(super) fn port_test(&self, d: &Directive, cond: &[&Tok]) -> Result<PortTest, String> {
        let mut t = PortTest::default();
        let mut i = 0;
        while i < cond.len() {
            i = self.port_option(d, cond, i, &mut t)?;
        }
        Ok(t)
    }

    /// Reads the option at `cond[i]` into `t`: the index of the next option.
    pub(super) fn port_option(
        &self,
        d: &Directive,
        cond: &[&Tok],
        i: usize,
        t: &mut PortTest,
    ) -> Result<usize, String> {
        let next = cond.get(i + 1).map(|t| t.text.clone());
        let after = match cond[i].kw().as_str() {
            "host" | "address" => {
                t.host = next;
                i + 2
            }
            "port" => {
                t.port = num(cond.get(i + 1));
                if t.port.is_none() {
                    return Err(self.err(d, "`port` needs a number"));
                }
                i + 2
            }
            "type" => {
                t.typ = next.map(|t| t.to_ascii_lowercase());
                i + 2
            }
            "protocol" | "proto" => {
                t.proto = next.map(|t| t.to_ascii_lowercase());
                i + 2
            }
            "request" => {
                t.request = next;
                i + 2
            }
            "content" => self.content(d, cond, i, t)?,
            "status" => status(cond, i, t),
            "timeout" => {
                t.timeout = num(cond.get(i + 1));
                let unit = cond.get(i + 2).map(|t| t.kw()).unwrap_or_default();
                if unit.starts_with("cycle") {
                    t.timeout = t.timeout.map(|n| self.cycles(n));
                }
                i + if unit.starts_with("sec") || unit.starts_with("cycle") {
                    3
                } else {
                    2
                }
            }
            "ipv4" | "ipv6" | "tcp" => i + 1,
            "url" => url(next.unwrap_or_default(), t) + i,
            "retry" => {
                t.unsupported
                    .push(format!("retry {}", next.unwrap_or_default()));
                i + 2
            }
            _ => {
                t.unsupported.push(cond[i].text.clone());
                i + 1
            }
        };
        Ok(after)
    }

    /// `content [=|!=] "TEXT"` at `cond[i]`: the index after it.
    pub(super) fn content(
        &self,
        d: &Directive,
        cond: &[&Tok],
        i: usize,
        t: &mut PortTest,
    ) -> Result<usize, String> {
        let (j, ops) = operators(cond, i + 1);
        match cond.get(j) {
            Some(c) if !ops.contains('!') => t.content = Some(c.text.clone()),
            Some(c) => t
                .unsupported
                .push(format!("content != {}", toml_str(&c.text))),
            None => return Err(self.err(d, "`content` needs a string")),
        }
        Ok(j + 1)
    }
}

/// The options of an `if failed … port` test, as written.
#[derive(Default)]
pub(super) struct PortTest {
    pub(super) host: Option<String>,
    pub(super) port: Option<u64>,
    pub(super) proto: Option<String>,
    pub(super) typ: Option<String>,
    pub(super) request: Option<String>,
    pub(super) content: Option<String>,
    pub(super) status: Option<u64>,
    pub(super) timeout: Option<u64>,
    /// Options custos has no check option like, as written.
    pub(super) unsupported: Vec<String>,
    /// A `url` that is not plain http to an address.
    pub(super) unsupported_url: Option<String>,
}

/// The operator tokens (`=`, `!=`, `<`, …) from `cond[j]` on: the index after them, and their
/// text.
pub(super) fn operators(cond: &[&Tok], mut j: usize) -> (usize, String) {
    let mut ops = String::new();
    while cond
        .get(j)
        .is_some_and(|t| !t.quoted && t.text.chars().all(is_op))
    {
        ops.push_str(&cond[j].text);
        j += 1;
    }
    (j, ops)
}

/// `status [=|!=|<|>] N` at `cond[i]`: the index after it. Only an equal status is a check
/// option.
pub(super) fn status(cond: &[&Tok], i: usize, t: &mut PortTest) -> usize {
    let (j, ops) = operators(cond, i + 1);
    if ops.contains(['!', '<', '>']) {
        t.unsupported.push(format!(
            "status {}",
            cond.get(j).map(|t| t.text.as_str()).unwrap_or_default()
        ));
    } else {
        t.status = num(cond.get(j));
    }
    j + 1
}

/// `url http://HOST[:PORT]/PATH`: an http check; https and credentials are not. The number of
/// tokens read.
pub(super) fn url(u: String, t: &mut PortTest) -> usize {
    match parse_url(&u) {
        Some((h, p, path)) => {
            t.host = Some(h);
            t.port = Some(p);
            t.proto = Some("http".to_string());
            t.request = Some(path);
        }
        None => t.unsupported_url = Some(u),
    }
    2
}

/// The address a port test connects to, or why custos has no check like it.
pub(super) fn port_target(cond: &[&Tok], t: &PortTest) -> Result<(String, u64), String> {
    if let Some(u) = &t.unsupported_url {
        return Err(format!("url {u}: custos checks plain http:// on an IP address or localhost, without credentials"));
    }
    let Some(port) = t.port.filter(|p| (1..=65535).contains(p)) else {
        let why = if cond.iter().any(|t| t.is("unixsocket") || t.is("unix")) {
            "custos has no UNIX-socket check"
        } else {
            "no custos check of this kind"
        };
        return Err(why.to_string());
    };
    let host = match t.host.as_deref() {
        None | Some("localhost") => "127.0.0.1".to_string(),
        Some(h) if h.parse::<std::net::IpAddr>().is_ok() => h.to_string(),
        Some(h) => {
            return Err(format!(
                "host {h}: custos checks IP addresses only (no DNS lookup on its loop)"
            ))
        }
    };
    match t.typ.as_deref() {
        None | Some("tcp") => Ok((host, port)),
        Some(ty) => {
            let why = if ty == "udp" {
                "custos has no UDP check"
            } else {
                "custos has no TLS check"
            };
            Err(format!("type {ty}: {why}"))
        }
    }
}

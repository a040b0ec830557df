//! The Prometheus text file (`[metrics] textfile`), for node_exporter's textfile collector.
//!
//! The loop builds the text (memory only, `Supervisor::prometheus`) at most once per `every` and
//! hands it, when it differs from the last one handed over, to a writer thread of its own
//! (`custos-metrics`, the record's writer: a one-slot mailbox that the loop only try-locks). The
//! thread writes a temporary file in the same directory (`.custos.prom.tmp` beside
//! `custos.prom`: node_exporter reads only `*.prom`) and renames it over the file, so a scrape
//! sees the old file or the new one, never a part. No fsync: the file is worth nothing after a
//! power cut (custos writes a new one within `every` of starting), and it usually lives on a
//! tmpfs (/run) or a directory that node_exporter only reads; on flash a write costs the bytes of
//! the file, at most once per `every`. A FIFO, a symlink or a hung disk at that path delays or
//! fails the file, never the loop: the temporary is opened `O_NOFOLLOW | O_NONBLOCK` and must be
//! a regular file.

use std::ffi::CStr;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::clock::Mono;
use crate::config::MetricsConfig;
use crate::record::{Names, Writer};

/// The loop's side of the metrics file.
pub struct Textfile {
    writer: Writer,
    every: Duration,
    /// When the text is next looked at.
    pub next: Mono,
    /// The text last handed over (unchanged text is not written again).
    last: Vec<u8>,
    /// A write failed and that was said: said again only after one succeeded.
    failing: bool,
    pub path: std::path::PathBuf,
}

impl Textfile {
    /// Starts the writer thread (after the signal mask is set, like the record's).
    pub fn start(cfg: &MetricsConfig, now: Mono) -> io::Result<Textfile> {
        let dir = cfg.textfile.parent().unwrap_or(Path::new("/"));
        let name = cfg
            .textfile
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io::Error::other("the file name is not UTF-8"))?;
        // Once per start of custos: the writer names its files for as long as the process lives.
        let file: &'static str = Box::leak(name.into());
        let temp: &'static str = Box::leak(format!(".{name}.tmp").into());
        let thread: &'static CStr = c"custos-metrics";
        let writer = Writer::start(
            dir,
            Names {
                file,
                temp,
                thread,
                volatile: true,
            },
        )?;
        Ok(Textfile {
            writer,
            every: cfg.every,
            next: now,
            last: Vec::new(),
            failing: false,
            path: cfg.textfile.clone(),
        })
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// Hands `text` to the writer if it changed; never waits. Returns the outcome of an earlier
    /// write worth a log line: `Some(Err)` on the first failure, `Some(Ok)` when writing works
    /// again after one.
    pub fn post(&mut self, text: String, now: Mono) -> Option<io::Result<()>> {
        let said = match self.writer.take_outcome(false) {
            Some((_, Some(Err(e)))) if !self.failing => {
                self.failing = true;
                // Written again at the next look, changed or not.
                self.last.clear();
                Some(Err(e))
            }
            Some((_, Some(Err(_)))) => {
                self.last.clear();
                None
            }
            Some((_, Some(Ok(())))) if self.failing => {
                self.failing = false;
                Some(Ok(()))
            }
            _ => None,
        };
        if text.as_bytes() != self.last.as_slice() {
            let data = text.into_bytes();
            if self.writer.post(data.clone(), false) {
                self.last = data;
            }
        }
        self.next = now + self.every;
        said
    }
}

/// A metric's HELP and TYPE lines.
pub fn head(t: &mut String, name: &str, kind: &str, help: &str) {
    for (what, text) in [("HELP", help), ("TYPE", kind)] {
        t.push_str("# ");
        t.push_str(what);
        t.push_str(" custos_");
        t.push_str(name);
        t.push(' ');
        t.push_str(text);
        t.push('\n');
    }
}

/// One sample line; label values with backslash, double quote and newline escaped.
pub fn sample(t: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    t.push_str("custos_");
    t.push_str(name);
    for (n, (key, val)) in labels.iter().enumerate() {
        t.push(if n == 0 { '{' } else { ',' });
        t.push_str(key);
        t.push_str("=\"");
        for c in val.chars() {
            match c {
                '\\' => t.push_str("\\\\"),
                '"' => t.push_str("\\\""),
                '\n' => t.push_str("\\n"),
                c => t.push(c),
            }
        }
        t.push('"');
    }
    if !labels.is_empty() {
        t.push('}');
    }
    t.push(' ');
    t.push_str(&value.to_string());
    t.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_by_the_text_format_rules() {
        let mut t = String::new();
        head(&mut t, "x_total", "counter", "Things.");
        sample(
            &mut t,
            "x_total",
            &[("service", "web"), ("check", "a \"q\" \\ b\nc")],
            7,
        );
        sample(&mut t, "y", &[], 0);
        assert_eq!(
            t,
            "# HELP custos_x_total Things.\n# TYPE custos_x_total counter\n\
             custos_x_total{service=\"web\",check=\"a \\\"q\\\" \\\\ b\\nc\"} 7\n\
             custos_y 0\n"
        );
    }
}

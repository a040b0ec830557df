//! The command line's side of the control socket: one request sent, then its replies read a
//! line at a time (bounded by a timeout, except while following events).

use std::io::{self, BufRead, BufReader, Lines, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::json::{parse_flat_object, Value};

/// How long the client waits to send its request, and for each reply unless it follows.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One request sent, its replies to read.
pub struct Conversation {
    lines: Lines<BufReader<UnixStream>>,
    /// Whether the request was written. A refused peer may find the connection closed before
    /// its request is written: the reply (`permission denied`) is still there to read.
    pub sent: io::Result<()>,
}

/// One reply line: as it came, and its `error` or `text` when it has one.
pub struct Reply {
    pub line: String,
    pub error: Option<String>,
    pub text: Option<String>,
}

/// Connects to the custos listening at `socket` and sends `line` (a request line); `follow`
/// leaves reading without a timeout.
pub fn send(socket: &Path, line: &str, follow: bool) -> io::Result<Conversation> {
    let mut stream = UnixStream::connect(socket)?;
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    if !follow {
        let _ = stream.set_read_timeout(Some(TIMEOUT));
    }
    let sent = stream.write_all(line.as_bytes());
    Ok(Conversation {
        lines: BufReader::new(stream).lines(),
        sent,
    })
}

impl Iterator for Conversation {
    type Item = Reply;

    /// The next reply line; none once the server closes, a read fails or times out.
    fn next(&mut self) -> Option<Reply> {
        let line = self.lines.next()?.ok()?;
        let fields = parse_flat_object(&line).unwrap_or_default();
        let get = |k: &str| {
            fields.iter().find_map(|(key, v)| match v {
                Value::Str(s) if key == k => Some(s.clone()),
                _ => None,
            })
        };
        let (error, text) = (get("error"), get("text"));
        Some(Reply { line, error, text })
    }
}

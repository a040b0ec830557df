//! The control server: the listening socket, its clients (each bounded in bytes and time), and
//! who may talk to custos (SO_PEERCRED, SO_PEERGROUPS).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::warn;

use super::{
    parse_request, reply_text, Request, CLIENT_TIMEOUT, MAX_ACCEPTS_PER_PASS, MAX_CLIENTS,
    MAX_PENDING, MAX_REQUEST, REFUSAL_LOG_EVERY,
};
use crate::clock::Mono;
use crate::sys;

struct Client {
    stream: UnixStream,
    buf: heapless::Vec<u8, MAX_REQUEST>,
    deadline: Mono,
    out: Vec<u8>,
    sent: usize,
    /// `events --follow`: stays open and gets each new event (as JSON when true).
    follow: Option<bool>,
    /// Close once `out` is sent.
    close_after: bool,
}

/// Who may talk to custos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Members of this group (primary or supplementary) may, besides root.
    pub gid: Option<u32>,
}

pub struct ControlServer {
    listener: UnixListener,
    pub path: PathBuf,
    access: Access,
    clients: heapless::Vec<Client, MAX_CLIENTS>,
    /// Not polling the listener until then (after an accept failure).
    paused_until: Mono,
    /// Refusals not logged one by one since the last refusal line, and when the next line may
    /// be written.
    refused_unlogged: u32,
    refusal_log_at: Mono,
    /// The socket file custos bound (device, inode): on exit custos removes the file at `path`
    /// only if it is still this one, never what someone put there since.
    bound: Option<(u64, u64)>,
}

/// What the loop must do for a client.
pub enum Ready {
    Request(usize, Request),
    Nothing,
}

fn peer(stream: &UnixStream) -> io::Result<libc::ucred> {
    sys::unix::peer_cred(stream.as_fd())
}

/// Supplementary groups of a peer read through SO_PEERGROUPS; a peer in more is judged by
/// /proc/PID/status instead.
const MAX_PEER_GROUPS: usize = 256;

/// Whether a peer is root or a member of the control group, primary or supplementary, as the
/// peer was when it connected: SO_PEERCRED and SO_PEERGROUPS are the credentials the kernel
/// recorded at connect(2), which stay true after the peer exits or changes its groups, and
/// whatever its PID names by then. Without SO_PEERGROUPS (ENOPROTOOPT: kernels before 4.13,
/// or an emulator that does not pass it on), or for a peer in more than MAX_PEER_GROUPS
/// groups, the supplementary groups are read from /proc/PID/status, which is the process as
/// it is now.
fn allowed(stream: &UnixStream, cred: &libc::ucred, access: Access) -> bool {
    if cred.uid == 0 {
        return true;
    }
    let Some(gid) = access.gid else { return false };
    if cred.gid == gid {
        return true;
    }
    let mut groups = [0 as libc::gid_t; MAX_PEER_GROUPS];
    match sys::unix::peer_groups(stream.as_fd(), &mut groups) {
        Ok(n) => groups[..n].contains(&gid),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOPROTOOPT) | Some(libc::ERANGE)
            ) =>
        {
            crate::procs::status_field(cred.pid, "Groups")
                .is_some_and(|groups| groups.split_whitespace().any(|g| g.parse() == Ok(gid)))
        }
        _ => false,
    }
}

impl ControlServer {
    /// Binds the socket: a stale socket file from a previous run is replaced, anything else in
    /// the way is an error. Mode 0600, or 0660 with the group set to `access.gid`.
    pub fn bind(path: &Path, access: Access) -> io::Result<ControlServer> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            if listening(path)? {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening there",
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let mode = match access.gid {
            Some(gid) => {
                // chown(2) with uid -1: the owner stays.
                std::os::unix::fs::chown(path, None, Some(gid))?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let bound = std::fs::symlink_metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            access,
            clients: heapless::Vec::new(),
            paused_until: Duration::ZERO,
            refused_unlogged: 0,
            refusal_log_at: Duration::ZERO,
            bound,
        })
    }

    /// The fds to poll: the listener, then each client (reading its request or writing).
    pub fn poll_set(&self, now: Mono, mut add: impl FnMut(i32, i16, Option<usize>)) {
        if now >= self.paused_until {
            add(self.listener.as_raw_fd(), libc::POLLIN, None);
        }
        for (k, c) in self.clients.iter().enumerate() {
            let mut ev = 0;
            if c.sent < c.out.len() {
                ev |= libc::POLLOUT;
            }
            if c.follow.is_none() && !c.close_after {
                ev |= libc::POLLIN;
            }
            // Always ask for POLLIN too on followers: it reports hang-ups.
            if c.follow.is_some() {
                ev |= libc::POLLIN;
            }
            add(c.stream.as_raw_fd(), ev, Some(k));
        }
    }

    /// The earliest client deadline.
    pub fn deadline(&self) -> Option<Mono> {
        let pause = (self.paused_until > Duration::ZERO).then_some(self.paused_until);
        self.clients
            .iter()
            .filter(|c| c.follow.is_none() || c.sent < c.out.len())
            .map(|c| c.deadline)
            .chain(pause)
            .chain((self.refused_unlogged > 0).then_some(self.refusal_log_at))
            .min()
    }

    /// Accepts waiting connections, at most MAX_ACCEPTS_PER_PASS; refuses peers that are not
    /// allowed (logged rate-limited).
    pub fn accept(&mut self, now: Mono) {
        for _ in 0..MAX_ACCEPTS_PER_PASS {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and the like: the connection stays queued and the listener stays
                    // readable; pause it so that the loop does not spin.
                    warn!("control: accept failed: {e}; not accepting for 1s");
                    self.paused_until = now + Duration::from_secs(1);
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let cred = match peer(&stream) {
                Ok(c) => c,
                Err(e) => {
                    self.refused(now, || {
                        format!("control: cannot read the peer's credentials ({e}): refused")
                    });
                    continue;
                }
            };
            if !allowed(&stream, &cred, self.access) {
                let group = self.access.gid.is_some();
                self.refused(now, || {
                    format!(
                        "control: refused a request from pid {} (uid {}, gid {}): only root{} may control custos",
                        cred.pid,
                        cred.uid,
                        cred.gid,
                        if group { " and the control_group" } else { "" }
                    )
                });
                let mut s = stream;
                let _ = s.write(reply_text(false, "permission denied").as_bytes());
                continue;
            }
            let client = Client {
                stream,
                buf: heapless::Vec::new(),
                deadline: now + CLIENT_TIMEOUT,
                out: Vec::new(),
                sent: 0,
                follow: None,
                close_after: false,
            };
            if let Err(c) = self.clients.push(client) {
                let mut s = c.stream;
                let _ = s.write(reply_text(false, "busy: too many control clients").as_bytes());
            }
        }
    }

    /// Reads from or writes to client `k`. A complete request is returned for the caller to
    /// answer with `reply`; a bad one is answered here.
    pub fn ready(&mut self, k: usize, now: Mono) -> Ready {
        let Some(c) = self.clients.get_mut(k) else {
            return Ready::Nothing;
        };
        if c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    // The peer is gone: nothing more to send, drop it at the sweep.
                    c.close_after = true;
                    c.out.clear();
                    c.sent = 0;
                    return Ready::Nothing;
                }
            }
            if c.sent == c.out.len() {
                c.out.clear();
                c.sent = 0;
                c.deadline = now + CLIENT_TIMEOUT;
            }
        }
        if c.follow.is_some() {
            // A follower sends nothing more; readable means it hung up (or sent junk).
            let mut b = [0u8; 64];
            match c.stream.read(&mut b) {
                Ok(0) => c.close_after = true,
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => c.close_after = true,
                _ => {}
            }
            return Ready::Nothing;
        }
        if c.close_after {
            return Ready::Nothing;
        }
        let mut b = [0u8; 256];
        loop {
            match c.stream.read(&mut b) {
                Ok(0) => {
                    c.close_after = true;
                    return Ready::Nothing;
                }
                Ok(n) => {
                    for &byte in &b[..n] {
                        if byte == b'\n' {
                            let line = std::mem::take(&mut c.buf);
                            return match parse_request(&line) {
                                Ok(r) => Ready::Request(k, r),
                                Err(e) => {
                                    self.reply(k, reply_text(false, &e.to_string()), true);
                                    Ready::Nothing
                                }
                            };
                        }
                        if c.buf.push(byte).is_err() {
                            let msg = format!("bad request: longer than {MAX_REQUEST} bytes");
                            self.reply(k, reply_text(false, &msg), true);
                            return Ready::Nothing;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ready::Nothing,
                Err(_) => {
                    c.close_after = true;
                    return Ready::Nothing;
                }
            }
        }
    }

    /// Queues a reply for client `k`; `close` ends the conversation once it is sent.
    pub fn reply(&mut self, k: usize, line: String, close: bool) {
        if let Some(c) = self.clients.get_mut(k) {
            if c.out.len() + line.len() > MAX_PENDING {
                c.close_after = true;
                c.out.clear();
                c.sent = 0;
                return;
            }
            c.out.extend_from_slice(line.as_bytes());
            c.close_after |= close;
            // Try now: most replies fit in the socket buffer at once.
            if let Ok(n) = c.stream.write(&c.out[c.sent..]) {
                c.sent += n;
            }
            if c.sent == c.out.len() {
                c.out.clear();
                c.sent = 0;
            }
        }
    }

    /// Makes client `k` a follower of new events.
    pub fn follow(&mut self, k: usize, json: bool) {
        if let Some(c) = self.clients.get_mut(k) {
            c.follow = Some(json);
        }
    }

    /// Whether anyone follows events (so that the caller builds them only then).
    pub fn has_followers(&self) -> bool {
        self.clients.iter().any(|c| c.follow.is_some())
    }

    /// Sends one event to every follower (text or JSON as each asked).
    pub fn broadcast(&mut self, text: &str, json: &str) {
        for k in 0..self.clients.len() {
            if let Some(j) = self.clients[k].follow {
                let line = if j {
                    format!("{json}\n")
                } else {
                    reply_text(true, text)
                };
                self.reply(k, line, false);
            }
        }
    }

    /// A refused connection: the first one is logged at once, later ones at most once per
    /// REFUSAL_LOG_EVERY, the rest counted (and the count said at the sweep).
    fn refused(&mut self, now: Mono, line: impl FnOnce() -> String) {
        if now >= self.refusal_log_at && self.refused_unlogged == 0 {
            warn!("{}", line());
            self.refusal_log_at = now + REFUSAL_LOG_EVERY;
        } else {
            self.refused_unlogged = self.refused_unlogged.saturating_add(1);
        }
    }

    /// Drops clients that are done, hung up, or past their deadline.
    pub fn sweep(&mut self, now: Mono) {
        if now >= self.paused_until {
            self.paused_until = Duration::ZERO;
        }
        if self.refused_unlogged > 0 && now >= self.refusal_log_at {
            warn!(
                "control: refused {} more connection(s) within {} (not logged one by one)",
                self.refused_unlogged,
                crate::clock::Dur(REFUSAL_LOG_EVERY)
            );
            self.refused_unlogged = 0;
            self.refusal_log_at = now + REFUSAL_LOG_EVERY;
        }
        let mut k = 0;
        while k < self.clients.len() {
            let c = &self.clients[k];
            let idle_follower = c.follow.is_some() && c.sent == c.out.len();
            let expired = !idle_follower && now >= c.deadline;
            let done = c.close_after && c.sent == c.out.len();
            if expired || done {
                self.clients.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }
}

/// Whether something listens on the UNIX socket at `path`, found by a non-blocking connect: a
/// blocking one would wait as long as the listener's backlog stays full.
fn listening(path: &Path) -> io::Result<bool> {
    match sys::unix::connect_nowait(path) {
        Ok(()) => Ok(true),
        Err(e) => match e.raw_os_error() {
            // A listener whose backlog is full.
            Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => Ok(true),
            // A socket file nobody listens on (left by an earlier run), or gone meanwhile.
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => Ok(false),
            _ => Err(e),
        },
    }
}

impl AsFd for ControlServer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        // Only custos's own socket: a file that replaced it belongs to someone else.
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && Some((m.dev(), m.ino())) == self.bound);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_told_from_a_live_one_without_blocking() {
        let dir = std::env::temp_dir().join(format!("custos-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.sock");
        assert!(!listening(&path).expect("missing"));
        let l = UnixListener::bind(&path).expect("bind");
        assert!(listening(&path).expect("live"));
        drop(l); // the socket file stays: stale
        assert!(path.exists());
        assert!(!listening(&path).expect("stale"));
        let server = ControlServer::bind(&path, Access { gid: None }).expect("replaces it");
        assert!(listening(&path).expect("ours"));
        assert_eq!(
            ControlServer::bind(&path, Access { gid: None })
                .err()
                .map(|e| e.to_string()),
            Some("another process is listening there".to_string())
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

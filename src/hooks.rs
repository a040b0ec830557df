//! Event hooks (`[[hook]]`): programs run when something happens to a service or the board,
//! to tell the fleet (an MQTT publish, a webhook). They run like the init.d scripts (argv, no
//! shell, clean child state, their own process group, output into a pipe drained into the log
//! and held by the output keeper) and never block the loop: the event goes to the program as
//! environment variables and as one JSON line on stdin, written before the program starts into
//! an empty pipe. The line is bounded to MAX_HOOK_JSON (4 KiB), which is PIPE_BUF on Linux, so
//! one non-blocking write takes all of it or nothing.
//!
//! Capacities are fixed at load: at most MAX_HOOKS hooks, MAX_HOOK_RUNS programs running at
//! once, HOOK_QUEUE events waiting; an event that finds the queue full is dropped and counted,
//! and the count is logged once when the queue has room again. A hook that fails (non-zero
//! status, killed after its timeout, cannot be started) is logged and never retried.
//!
//! Flap suppression (`flap_count`, `flap_within`): more than `flap_count` events of one service
//! within `flap_within` (counted from the first of them) become one `flapping` event; the
//! service's further events to that hook are suppressed until it has been quiet for
//! `flap_within`. Every time here is the boot clock.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use log::{info, warn};

use crate::config::{event_bit, HookConfig};
use crate::core::Cause;
use crate::limits::{
    HOOK_QUEUE, MAX_HOOK_JSON, MAX_HOOK_RUNS, MAX_HOOK_TEXT, MAX_NAME, MAX_SERVICES,
};
use crate::scripts::{self, OutputPipe};

/// One service's flap state towards one hook.
#[derive(Clone, Copy, Default)]
struct Flap {
    window_start: Duration,
    count: u32,
    /// Since the flapping event: the last event seen (quiet is counted from it).
    flapping: Option<Duration>,
    suppressed: u32,
}

type Name = heapless::String<{ MAX_NAME + 1 }>;
type Text = heapless::String<MAX_HOOK_TEXT>;

struct Pending {
    hook: u8,
    event: &'static str,
    service: Name,
    text: Text,
    cause: heapless::String<64>,
    at: Duration,
}

struct Run {
    pid: i32,
    hook: u8,
    event: &'static str,
    service: Name,
    kill_at: Duration,
    timed_out: bool,
}

/// The hooks of this run of custos.
pub struct Hooks {
    cfg: Vec<HookConfig>,
    /// Per hook with flap suppression: one entry per service index.
    flaps: Vec<Vec<Flap>>,
    queue: heapless::Deque<Pending, HOOK_QUEUE>,
    runs: heapless::Vec<Run, MAX_HOOK_RUNS>,
    dropped: u32,
    out: Option<OutputPipe>,
    boot: String,
}

impl Hooks {
    pub fn new(cfg: Vec<HookConfig>, boot: &str) -> Hooks {
        let flaps = cfg
            .iter()
            .map(|h| {
                if h.flap.is_some() {
                    vec![Flap::default(); MAX_SERVICES]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let out = if cfg.is_empty() {
            None
        } else {
            OutputPipe::new()
                .map_err(|e| warn!("hooks: cannot make their output pipe: {e}; hooks will not run"))
                .ok()
        };
        Hooks {
            cfg,
            flaps,
            queue: heapless::Deque::new(),
            runs: heapless::Vec::new(),
            dropped: 0,
            out,
            boot: boot.to_string(),
        }
    }

    /// The hooks as custos started with them.
    pub fn config(&self) -> &[HookConfig] {
        &self.cfg
    }

    /// The services were reloaded: their indexes may now name other services, so every flap
    /// count starts again.
    pub fn services_changed(&mut self) {
        for f in self.flaps.iter_mut().flat_map(|v| v.iter_mut()) {
            *f = Flap::default();
        }
    }

    /// The output pipe, for the output keeper to hold.
    pub fn out(&self) -> Option<&OutputPipe> {
        self.out.as_ref()
    }

    /// Event `event` happened (to service `svc`: its index and name). Queued for every hook
    /// that wants it; memory only, never waits.
    pub fn raise(
        &mut self,
        event: &'static str,
        svc: Option<(usize, &str)>,
        text: &str,
        cause: Option<&str>,
        now: Duration,
    ) {
        let Some(bit) = event_bit(event) else { return };
        for h in 0..self.cfg.len() {
            let c = &self.cfg[h];
            if c.on & bit == 0 {
                continue;
            }
            if !c.services.is_empty()
                && !svc.is_some_and(|(_, n)| c.services.iter().any(|s| s == n))
            {
                continue;
            }
            let mut ev = event;
            let mut txt = text.to_string();
            if let (Some((within_n, within)), Some((i, name))) = (c.flap, svc) {
                let Some(f) = self.flaps[h].get_mut(i) else {
                    continue;
                };
                if f.flapping.is_some() {
                    f.flapping = Some(now);
                    f.suppressed += 1;
                    continue;
                }
                if f.count == 0 || now.saturating_sub(f.window_start) > within {
                    f.window_start = now;
                    f.count = 0;
                }
                f.count += 1;
                if f.count > within_n {
                    f.flapping = Some(now);
                    f.suppressed = 0;
                    warn!(
                        "hook {}: {name}: {} events within {}: flapping; its further events to this hook are suppressed until it is quiet for {}",
                        h + 1,
                        f.count,
                        crate::clock::Dur(within),
                        crate::clock::Dur(within)
                    );
                    if c.on & event_bit("flapping").unwrap_or(0) == 0 {
                        continue;
                    }
                    ev = "flapping";
                    txt = format!(
                        "{} events within {} (the last: {event}: {text})",
                        f.count,
                        crate::clock::Dur(within)
                    );
                }
            }
            let p = Pending {
                hook: h as u8,
                event: ev,
                service: crate::text::cut(svc.map_or("", |(_, n)| n)),
                text: crate::text::cut(&txt),
                cause: crate::text::cut(cause.unwrap_or("")),
                at: now,
            };
            if self.queue.push_back(p).is_err() {
                self.dropped += 1;
            }
        }
    }

    /// When the hooks next need the loop (a timeout, a quiet time's end, an event to start).
    pub fn due(&self) -> Option<Duration> {
        let kills = self.runs.iter().filter(|r| !r.timed_out).map(|r| r.kill_at);
        let quiet = self
            .cfg
            .iter()
            .zip(&self.flaps)
            .filter_map(|(c, f)| c.flap.map(|(_, w)| (w, f)))
            .flat_map(|(w, f)| f.iter().filter_map(move |x| x.flapping.map(|t| t + w)));
        // An event raised after this pass's hooks.pass waits for a free slot: at once if there
        // is one (a pass always empties the queue into the free slots, so this cannot spin).
        let waiting = (!self.queue.is_empty() && !self.runs.is_full()).then_some(Duration::ZERO);
        kills.chain(quiet).chain(waiting).min()
    }

    /// One pass: drain output, kill what ran past its timeout, end quiet flapping, start what
    /// waits while there is a free slot. Never waits.
    pub fn pass(&mut self, now: Duration) {
        if let Some(o) = &mut self.out {
            o.drain(now, |line| info!("hook: | {line}"));
        }
        for r in self.runs.iter_mut() {
            if !r.timed_out && now >= r.kill_at {
                r.timed_out = true;
                warn!(
                    "hook {} ({} {}): pid {} still runs after its timeout {}: killing its process group",
                    r.hook + 1,
                    r.event,
                    r.service,
                    r.pid,
                    crate::clock::Dur(self.cfg[r.hook as usize].timeout)
                );
                if let Err(e) = scripts::kill_group(r.pid) {
                    warn!("hook: cannot kill process group {}: {e}", r.pid);
                }
            }
        }
        for (h, c) in self.cfg.iter().enumerate() {
            let Some((_, within)) = c.flap else { continue };
            for f in self.flaps[h].iter_mut() {
                if let Some(t) = f.flapping {
                    if now.saturating_sub(t) >= within {
                        info!(
                            "hook {}: a service quiet for {} is no longer flapping ({} event(s) suppressed)",
                            h + 1,
                            crate::clock::Dur(within),
                            f.suppressed
                        );
                        *f = Flap::default();
                    }
                }
            }
        }
        while !self.runs.is_full() {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            self.start(p, now);
        }
        if self.dropped > 0 && !self.queue.is_full() {
            warn!(
                "hooks: {} event(s) dropped: the queue of {HOOK_QUEUE} was full",
                self.dropped
            );
            self.dropped = 0;
        }
    }

    fn json(&self, p: &Pending, now: Duration) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("{\"event\":");
        crate::text::json_str(&mut s, p.event);
        s.push_str(",\"service\":");
        crate::text::json_str(&mut s, &p.service);
        s.push_str(",\"text\":");
        crate::text::json_str(&mut s, &p.text);
        if !p.cause.is_empty() {
            s.push_str(",\"cause\":");
            crate::text::json_str(&mut s, &p.cause);
        }
        s.push_str(",\"boot_id\":");
        crate::text::json_str(&mut s, &self.boot);
        let _ = write!(
            s,
            ",\"uptime_ms\":{},\"age_ms\":{},\"time\":{}}}",
            p.at.as_millis(),
            now.saturating_sub(p.at).as_millis(),
            crate::clock::wall_now()
        );
        s.push('\n');
        s
    }

    fn start(&mut self, p: Pending, now: Duration) {
        let h = p.hook as usize;
        let Some(out) = &self.out else { return };
        let cfg = &self.cfg[h];
        let mut line = self.json(&p, now);
        if line.len() > MAX_HOOK_JSON {
            // Cannot happen with the bounded fields; kept to the promise anyway.
            line = String::from("{\"event\":\"truncated\"}\n");
        }
        let uptime = p.at.as_millis().to_string();
        let mut env: heapless::Vec<(&str, &str), 8> = heapless::Vec::new();
        let _ = env.push(("CUSTOS_EVENT", p.event));
        let _ = env.push(("CUSTOS_SERVICE", &p.service));
        let _ = env.push(("CUSTOS_TEXT", &p.text));
        if !p.cause.is_empty() {
            let _ = env.push(("CUSTOS_CAUSE", &p.cause));
        }
        let _ = env.push(("CUSTOS_BOOT_ID", &self.boot));
        let _ = env.push(("CUSTOS_UPTIME_MS", &uptime));
        let started = stdin_with(line.as_bytes())
            .and_then(|stdin| scripts::spawn_with(&cfg.run, &env, Some(stdin), out));
        match started {
            Ok(pid) => {
                info!(
                    "hook {} ({} {}): running `{}` (pid {pid})",
                    h + 1,
                    p.event,
                    p.service,
                    cfg.run
                );
                let _ = self.runs.push(Run {
                    pid,
                    hook: p.hook,
                    event: p.event,
                    service: p.service.clone(),
                    kill_at: now + cfg.timeout,
                    timed_out: false,
                });
            }
            Err(e) => warn!(
                "hook {} ({} {}): `{}` cannot be started: {e}; not retried",
                h + 1,
                p.event,
                p.service,
                cfg.run
            ),
        }
    }

    /// Whether `pid` is a hook program (then its exit is logged here).
    pub fn reaped(&mut self, pid: i32, cause: Cause, now: Duration) -> bool {
        let Some(k) = self.runs.iter().position(|r| r.pid == pid) else {
            return false;
        };
        let r = self.runs.swap_remove(k);
        if let Some(o) = &mut self.out {
            o.drain(now, |line| info!("hook: | {line}"));
        }
        let what = format!("hook {} ({} {}): pid {pid}", r.hook + 1, r.event, r.service);
        if r.timed_out {
            warn!("{what} was killed after its timeout: {cause}; not retried");
        } else if cause == Cause::Exited(0) {
            info!("{what} {cause}");
        } else {
            warn!("{what} failed: {cause}; not retried");
        }
        true
    }
}

/// A pipe holding `line` for a program's stdin: written whole (it is at most PIPE_BUF into an
/// empty pipe, so the non-blocking write takes all of it) and closed on custos's side.
fn stdin_with(line: &[u8]) -> io::Result<OwnedFd> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    nix::fcntl::fcntl(
        write.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    let n = nix::unistd::write(&write, line).map_err(io::Error::from)?;
    if n != line.len() {
        return Err(io::Error::other("the event did not fit the pipe"));
    }
    Ok(read)
}

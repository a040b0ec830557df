//! Answers to control requests (`custos status`, `start`, `events`, ...).

use super::status::{crash_loop_words, crash_looping, entry_json, phase_word, EVENTS_SCHEMA};
use super::Supervisor;
use crate::boot::End;
use crate::clock::Mono;
use std::fmt::Write as _;

use crate::control::{self, Command, Request};
use crate::core::Event;
use crate::core::Op;
use crate::record;

impl Supervisor {
    /// Answers one control request.
    pub(super) fn request(&mut self, k: usize, req: Request, now: Mono) {
        let name = req.name.as_str();
        let reply = match req.cmd {
            Command::Service(op) => self.operate(req.cmd.name(), op, name, now),
            Command::Status => {
                if req.prometheus {
                    control::reply_text(true, self.prometheus(now).trim_end())
                } else if req.json {
                    self.status_json(now)
                } else {
                    control::reply_text(true, &self.status_text(now))
                }
            }
            Command::Shutdown => self.shutdown(now),
            Command::Reload => match self.reload(now) {
                Ok(msg) => control::reply_text(true, &msg),
                Err(msg) => control::reply_text(false, &msg),
            },
            Command::Events => self.events_reply(None, req.json),
            Command::Why => self.events_reply(Some(name), req.json),
        };
        let follow = req.cmd == Command::Events && req.follow;
        if let Some(c) = &mut self.control {
            c.reply(k, reply, !follow);
            if follow {
                c.follow(k, req.json);
            }
        }
    }

    /// An operator command on service `name`: the core decides what it does in its state.
    fn operate(&mut self, cmd: &str, op: Op, name: &str, now: Mono) -> String {
        match self.svcs.iter().position(|s| s.cfg.name == name) {
            None => control::reply_text(false, &format!("no service named `{name}`")),
            Some(i) => {
                info!("control: {cmd} {name}: asked by the operator");
                self.feed(i, Event::Operator(op), now);
                let st = &self.svcs[i].st;
                control::reply_text(
                    true,
                    &format!("{name}: {cmd}: now {}", phase_word(&st.phase)),
                )
            }
        }
    }

    /// `custos shutdown`: this boot ends in order.
    fn shutdown(&mut self, now: Mono) -> String {
        // Init runs the shutdown sequence before its SIGTERM reaches custos, and that
        // sequence may unmount state_dir: the end is written now. The sequence also
        // stops the services (rcK): from now on custos logs their deaths but starts
        // and restarts nothing; it goes on petting until it is stopped.
        info!("control: shutdown: this boot is ending in order; custos starts and restarts nothing from now on");
        self.ending = true;
        for s in &mut self.svcs {
            s.st.ending = true;
        }
        self.boots.end(End::Orderly);
        self.good_at = None;
        self.flush_boots(now);
        control::reply_text(
            true,
            "boot: this boot is recorded as ending in order; custos starts and restarts nothing from now on, and goes on petting the watchdog until it is stopped",
        )
    }

    /// `custos events` (`one`: None) or `custos why NAME`: the record, oldest first for
    /// events, newest first for one service.
    fn events_reply(&self, one: Option<&str>, json: bool) -> String {
        if let Some(name) = one {
            if !self.svcs.iter().any(|s| s.cfg.name == name)
                && self.record.for_service(name).next().is_none()
            {
                return control::reply_text(
                    false,
                    &format!("no service named `{name}` and no record of one"),
                );
            }
        }
        let entries: Vec<&record::Entry> = match one {
            Some(name) => {
                let mut v: Vec<_> = self.record.for_service(name).collect();
                v.reverse();
                v
            }
            None => self.record.iter().collect(),
        };
        let looping = one.and_then(|name| {
            self.svcs
                .iter()
                .find(|s| s.cfg.name == name && crash_looping(s))
        });
        if json {
            return events_json(&entries, looping.map(crash_loop_words));
        }
        let mut t = String::new();
        if let (Some(v), Some(name)) = (looping, one) {
            let _ = writeln!(t, "{name}: now crash-looping: {}", crash_loop_words(v));
        }
        let boot = self.record.boot_id().to_string();
        for e in &entries {
            let before = if !boot.is_empty() && e.boot.as_str() != boot {
                " (earlier boot)"
            } else {
                ""
            };
            let _ = writeln!(t, "{e}{before}");
        }
        if entries.is_empty() {
            t.push_str("no events recorded\n");
        }
        if one.is_some() && self.degraded {
            t.push_str(&self.guard_text());
        }
        control::reply_text(true, t.trim_end())
    }
}

/// The JSON reply of `events --json` / `why --json`.
fn events_json(entries: &[&record::Entry], crash_loop: Option<String>) -> String {
    let mut s = String::from("{\"ok\":true,");
    if let Some(words) = crash_loop {
        s.push_str("\"now\":");
        crate::text::json_str(&mut s, &format!("crash-looping: {words}"));
        s.push(',');
    }
    s.push_str("\"events\":[");
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        s.push_str(&entry_json(e));
    }
    s.push_str("],\"schema\":\"");
    s.push_str(EVENTS_SCHEMA);
    s.push_str("\"}\n");
    s
}

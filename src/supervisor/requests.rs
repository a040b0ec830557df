//! Answers to control requests (`custos status`, `start`, `events`, ...).

use super::status::{crash_loop_words, crash_looping, entry_json, phase_word, EVENTS_SCHEMA};
use super::Supervisor;
use crate::boot::End;
use crate::clock::Mono;
use crate::control::{self, Request};
use crate::core::Event;
use crate::core::Op;
use crate::record;

impl Supervisor {
    /// Answers one control request.
    pub(super) fn request(&mut self, k: usize, req: Request, now: Mono) {
        let cmd = req.cmd.as_str();
        let name = req.name.as_str();
        let op = match cmd {
            "start" => Some(Op::Start),
            "stop" => Some(Op::Stop),
            "restart" => Some(Op::Restart),
            "monitor" => Some(Op::Monitor),
            "unmonitor" => Some(Op::Unmonitor),
            "adopt" => Some(Op::Adopt),
            _ => None,
        };
        let reply = match (cmd, op) {
            (_, Some(op)) => match self.svcs.iter().position(|s| s.cfg.name == name) {
                None => control::reply_text(false, &format!("no service named `{name}`")),
                Some(i) => {
                    info!("control: {cmd} {name}: asked by the operator");
                    self.feed(i, Event::Operator(op), now);
                    let st = &self.svcs[i].st;
                    control::reply_text(true, &format!("{name}: {cmd}: now {}", phase_word(&st.phase)))
                }
            },
            ("status", None) => {
                if req.prometheus {
                    control::reply_text(true, self.prometheus(now).trim_end())
                } else if req.json {
                    self.status_json(now)
                } else {
                    control::reply_text(true, &self.status_text(now))
                }
            }
            ("shutdown", None) => {
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
            ("reload", None) => match self.reload(now) {
                Ok(msg) => control::reply_text(true, &msg),
                Err(msg) => control::reply_text(false, &msg),
            },
            ("events", None) | ("why", None) => {
                let for_one = cmd == "why";
                if for_one && !self.svcs.iter().any(|s| s.cfg.name == name) && self.record.for_service(name).next().is_none() {
                    control::reply_text(false, &format!("no service named `{name}` and no record of one"))
                } else {
                    let entries: Vec<&record::Entry> = if for_one {
                        let mut v: Vec<_> = self.record.for_service(name).collect();
                        v.reverse();
                        v
                    } else {
                        self.record.iter().collect()
                    };
                    let looping = self
                        .svcs
                        .iter()
                        .find(|s| for_one && s.cfg.name == name && crash_looping(s));
                    if req.json {
                        let mut s = String::from("{\"ok\":true,");
                        if let Some(v) = looping {
                            s.push_str("\"now\":");
                            crate::text::json_str(&mut s, &format!("crash-looping: {}", crash_loop_words(v)));
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
                    } else {
                        let mut t = String::new();
                        if let Some(v) = looping {
                            use std::fmt::Write as _;
                            let _ = writeln!(t, "{name}: now crash-looping: {}", crash_loop_words(v));
                        }
                        let boot = self.record.boot_id().to_string();
                        for e in &entries {
                            use std::fmt::Write as _;
                            let before = if !boot.is_empty() && e.boot.as_str() != boot { " (earlier boot)" } else { "" };
                            let _ = writeln!(t, "{e}{before}");
                        }
                        if entries.is_empty() {
                            t.push_str("no events recorded\n");
                        }
                        if for_one && self.degraded {
                            t.push_str(&self.guard_text());
                        }
                        control::reply_text(true, t.trim_end())
                    }
                }
            }
            _ => control::reply_text(
                false,
                &format!("unknown command `{cmd}`: status, start, stop, restart, monitor, unmonitor, adopt, reload, events, why, shutdown"),
            ),
        };
        let follow = cmd == "events" && req.follow;
        if let Some(c) = &mut self.control {
            c.reply(k, reply, !follow);
            if follow {
                c.follow(k, req.json);
            }
        }
    }
}

//! Reading /proc and pidfiles: everything custos knows about a process's identity comes from
//! here. A process that vanishes mid-read is normal and reported as gone, never as an error that
//! stops supervision.
//!
//! /proc is read with std and a few `*at` calls, not through the `procfs` crate: its stat parser
//! panicked on malformed text (found by fuzzing), and the six files custos reads did not justify
//! its size on the 512 KiB board binary (see the README's crate notes).
//!
//! `stat`: one process's /proc files; `pidfile`: reading pidfiles; `identity`: judging which
//! process is a service's; `leftovers`: what a dead instance left behind.

mod identity;
mod leftovers;
mod pidfile;
mod stat;

pub use identity::*;
pub use leftovers::*;
pub use pidfile::*;
pub use stat::*;

#[cfg(test)]
mod tests {
    use super::identity::*;
    use super::pidfile::*;
    use super::stat::*;
    use super::*;

    use std::path::Path;
    use std::time::Duration;

    use crate::core::{Absent, Doubt, Observation, Refusal};

    use std::io::Write;

    #[test]
    fn cmdline_arguments_read_as_an_exe_identity_compares_them() {
        assert_eq!(
            args_text("/usr/sbin/d\0-f\0/etc/d.conf\0"),
            "-f /etc/d.conf"
        );
        assert_eq!(args_text("init\0\0\0\0"), "");
        assert_eq!(args_text("a\0\0b\0"), "b");
        assert_eq!(args_text(""), "");
    }

    #[test]
    fn a_proc_dir_reads_its_own_process_and_no_other() {
        let me = own_pid();
        let d = ProcDir::open(me).expect("own /proc dir");
        assert_eq!(d.pid(), me);
        let stat = parse_stat(&d.read("stat", 4096).expect("stat")).expect("parse");
        assert_eq!(
            stat.ppid,
            stat_fields(me).expect("read").expect("alive").ppid
        );
        assert_eq!(d.read("stat", 3).expect("stat").len(), 3);
        // Another process's exe (custos's own is faked by qemu-user when tests run emulated).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let cd = ProcDir::open(pid).expect("child dir");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(
            cd.read_link("exe").expect("exe"),
            exe.as_os_str().as_encoded_bytes()
        );
        // A process that exits and is reaped: its directory handle reads nothing more.
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(cd.read("stat", 4096).is_err());
        assert!(cd.read_link("exe").is_err());
        assert!(ProcDir::open(-1).is_err());
        assert!(all_pids().expect("list").any(|p| p == me));
        assert!(ticks_per_second() >= 1 && page_size() >= 4096);
    }

    #[test]
    fn pidfiles_are_parsed_strictly() {
        assert_eq!(parse_pid(b"1234\n"), Some(1234));
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for bad in [
            &b""[..],
            b"\n",
            b"0\n",
            b"-5\n",
            b" 12\n",
            b"12 \n",
            b"12\n\n",
            b"12\r\n",
            b"0x10\n",
            b"99999999\n",
            b"4194305\n",
            b"12abc\n",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn our_own_process_is_alive_and_pinned_by_start_time() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        let pin = pin(me, s.start_ticks);
        assert_eq!(check_pin(pin), PinState::Alive);
        let reused = super::pin(me, s.start_ticks + 1);
        assert_eq!(
            check_pin(reused),
            PinState::Gone,
            "same PID, other start time"
        );
    }

    fn probe(path: &Path, trusted_since: Duration) -> Observation {
        let ctx = Context {
            subreaper: false,
            trusted_since,
            ambiguous_before: Duration::ZERO,
            taken: &[],
        };
        probe_pidfile(path, &Known::default(), &ctx, crate::clock::boottime()).0
    }

    fn set_mtime(path: &Path, wall_secs: i64) {
        #[allow(clippy::useless_conversion)]
        let t = libc::timespec {
            tv_sec: wall_secs.try_into().unwrap_or(0),
            tv_nsec: 0,
        };
        let times = [t, t];
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: valid NUL-terminated path and a two-element timespec array.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn a_pidfile_met_for_the_first_time_is_judged_by_its_mtime_or_held() {
        let dir = std::env::temp_dir().join(format!("custos-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("x.pid");
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "{pid}").expect("write");
        drop(f);
        // Written now, after this process started: fresh.
        let now = crate::clock::boottime();
        assert!(matches!(probe(&path, now), Observation::Alive(p) if p.pid == pid));
        let wall = crate::clock::read(libc::CLOCK_REALTIME).as_secs() as i64;
        // Written 5 s before the process started: stale when custos watched the clock since
        // (no step can lie between), held when it did not.
        set_mtime(&path, wall - 5);
        assert_eq!(
            probe(&path, Duration::ZERO),
            Observation::Absent(Absent::StalePidfile(pid))
        );
        assert!(matches!(
            probe(&path, now),
            Observation::Unverified(p, Doubt::Older) if p.pid == pid
        ));
        // Before this boot, or in the future: held.
        set_mtime(&path, 1_000_000);
        assert!(matches!(
            probe(&path, Duration::ZERO),
            Observation::Unverified(_, Doubt::Older)
        ));
        set_mtime(&path, wall + 3600);
        assert!(matches!(
            probe(&path, Duration::ZERO),
            Observation::Unverified(_, Doubt::Future)
        ));
        // custos never pins itself.
        let me = std::process::id();
        std::fs::write(&path, format!("{me}\n")).expect("write");
        assert_eq!(
            probe(&path, now),
            Observation::Absent(Absent::NeverPinned(me as i32, Refusal::Custos))
        );
        std::fs::write(&path, "garbage\n").expect("write");
        assert_eq!(probe(&path, now), Observation::Absent(Absent::BadPidfile));
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(probe(&path, now), Observation::Absent(Absent::NoPidfile));
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stat_read_into_the_fixed_buffer_is_the_whole_line() {
        // A child named with parentheses, spaces and the longest comm the kernel keeps, and
        // init: what the three-syscall read parses is what a whole-file read parses.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exec -a x sleep 30"])
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let name = b"a) (b c) (d)xyz";
        let _ = std::fs::write(format!("/proc/{pid}/comm"), name);
        for p in [std::process::id() as i32, 1, pid] {
            let whole = std::fs::read(format!("/proc/{p}/stat")).expect("read");
            let fast = stat_fields(p).expect("stat_fields").expect("alive");
            assert_eq!(Some(fast), parse_stat(&whole), "pid {p}");
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(stat_fields(pid).expect("gone is not an error"), None);
    }

    #[test]
    fn stat_text_is_parsed_strictly_and_never_panics() {
        // This process's own stat, as the kernel writes it.
        let me = std::fs::read("/proc/self/stat").expect("read");
        let f = parse_stat(&me).expect("own stat");
        // qemu-user fakes its guest's own /proc/self/stat (state '0', most fields 0): only the
        // parse is checked there.
        let emulated = std::env::var_os("CUSTOS_TEST_EMULATED").is_some_and(|v| !v.is_empty());
        assert!(
            emulated || (f.start_ticks > 0 && "RSD".contains(f.state)),
            "{f:?}"
        );
        // A comm holding spaces and parentheses: the last ')' ends it.
        let s = b"42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 7 9 0 0 20 0 1 0 12345 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 256\n";
        let f = parse_stat(s).expect("comm with parens");
        assert_eq!(
            f,
            StatFields {
                state: 'S',
                ppid: 1,
                pgrp: 42,
                session: 42,
                flags: 4194560,
                utime: 7,
                stime: 9,
                start_ticks: 12345,
                exit_code: Some(256),
            }
        );
        // Found by fuzzing, and cut-down variants: no panic, just "unreadable".
        let crash = include_bytes!("../../tests/fixtures/fuzz/proc-stat-crash-1");
        for bad in [
            &crash[..],
            b"(",
            b")",
            b"(x)",
            b"1 (x)",
            b"1 (x) ",
            b") (",
            b"1 ) x (",
            b"1 (x) S",
            b"1 (\xff) S 1 2",
            b"",
        ] {
            assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn identity_is_judged_without_the_wall_clock_where_custos_knows_more() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let stamp = |pid: i32, ino: u64| PidfileStamp {
            pid,
            dev: 1,
            ino,
            size: 4,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        // A process started at boot second 100, named by a pidfile written (by the wall
        // clock now) at 100.5: the plain case.
        let named = |written: Option<Duration>| Named {
            pin: pin(500, 100 * ticks_per_second()),
            stamp: stamp(500, 7),
            written,
            descendant: false,
        };
        let ctx = |trusted_since| Context {
            subreaper: true,
            trusted_since,
            ambiguous_before: Duration::ZERO,
            taken: &[],
        };
        let now = s(200);
        let none = Known::default();
        let fresh = named(Some(s(100) + ms(500)));
        assert_eq!(
            judge(&fresh, &none, &ctx(s(0)), now),
            Observation::Alive(fresh.pin)
        );
        // Coarse timestamps (whole seconds, two on FAT) truncate: tolerated.
        for w in [s(99), s(98) + ms(100)] {
            let n = named(Some(w));
            assert_eq!(
                judge(&n, &none, &ctx(now), now),
                Observation::Alive(n.pin),
                "{w:?}"
            );
        }
        // custos saw the clock stepped back (by 50 s at boot second 150): an mtime that reads
        // before 200 may be older than it reads.
        let stepped = Context {
            ambiguous_before: s(200),
            ..ctx(s(150))
        };
        assert_eq!(
            judge(&fresh, &none, &stepped, now),
            Observation::Unverified(fresh.pin, Doubt::SteppedBack)
        );
        // Written well before the process started.
        let old = named(Some(s(90)));
        assert_eq!(
            judge(&old, &none, &ctx(s(50)), now),
            Observation::Absent(Absent::StalePidfile(500)),
            "custos watched the clock since: stale"
        );
        assert_eq!(
            judge(&old, &none, &ctx(s(95)), now),
            Observation::Unverified(old.pin, Doubt::Older),
            "a step custos did not see may lie between: held"
        );
        assert_eq!(
            judge(&named(None), &none, &ctx(s(0)), now),
            Observation::Unverified(old.pin, Doubt::Older),
            "before this boot by the wall clock now: held"
        );
        assert_eq!(
            judge(&named(Some(s(300))), &none, &ctx(s(0)), now),
            Observation::Unverified(old.pin, Doubt::Future)
        );
        // The process custos pinned last (this run or an earlier one in this boot): adopted
        // again whatever the mtime says.
        let last = LastPin {
            pid: 500,
            start_ticks: 100 * ticks_per_second(),
            stamp: Some(stamp(500, 7)),
        };
        let k = Known {
            last: Some(last),
            ..Known::default()
        };
        for w in [None, Some(s(300)), Some(s(1))] {
            let n = named(w);
            assert_eq!(judge(&n, &k, &ctx(now), now), Observation::Alive(n.pin));
        }
        // A process older than the last pinned one: never adopted, whatever the mtime.
        let k = Known {
            last: Some(LastPin {
                pid: 400,
                start_ticks: 150 * ticks_per_second(),
                stamp: None,
            }),
            ..Known::default()
        };
        assert_eq!(
            judge(&fresh, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::OlderThanPin {
                pid: 500,
                pinned: 400
            })
        );
        // The pidfile unchanged since it named the last pin, which is gone: PID reused.
        let reused = Named {
            pin: pin(500, 160 * ticks_per_second()),
            ..fresh
        };
        let k = Known {
            last: Some(LastPin {
                pid: 500,
                start_ticks: 150 * ticks_per_second(),
                stamp: Some(stamp(500, 7)),
            }),
            ..Known::default()
        };
        assert_eq!(
            judge(&reused, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::Reused(500))
        );
        // Unchanged since an earlier boot.
        let k = Known {
            earlier_boot: Some(stamp(500, 7)),
            ..Known::default()
        };
        assert_eq!(
            judge(&fresh, &k, &ctx(s(0)), now),
            Observation::Absent(Absent::EarlierBoot(500))
        );
        // Another service's process, a script, a check.
        let taken = Context {
            taken: &[500],
            ..ctx(s(0))
        };
        assert_eq!(
            judge(&fresh, &none, &taken, now),
            Observation::Absent(Absent::Taken(500))
        );
        // After a start: a descendant that started after the spawn, named by a pidfile that
        // changed since, is the service, whatever the mtime says.
        let spawned = |before| Known {
            spawned: Some(Spawned { at: s(99), before }),
            ..Known::default()
        };
        let ours = Named {
            descendant: true,
            ..named(None)
        };
        assert_eq!(
            judge(&ours, &spawned(None), &ctx(now), now),
            Observation::Alive(ours.pin)
        );
        assert_eq!(
            judge(&ours, &spawned(Some(stamp(321, 6))), &ctx(now), now),
            Observation::Alive(ours.pin)
        );
        // Not so when the pidfile did not change, the process started before the spawn, or
        // (with a subreaper) it is not custos's descendant: then the mtime decides.
        let unchanged = spawned(Some(stamp(500, 7)));
        assert!(matches!(
            judge(&ours, &unchanged, &ctx(now), now),
            Observation::Unverified(..)
        ));
        let early = Known {
            spawned: Some(Spawned {
                at: s(101),
                before: None,
            }),
            ..Known::default()
        };
        assert!(matches!(
            judge(&ours, &early, &ctx(now), now),
            Observation::Unverified(..)
        ));
        let stranger = Named {
            descendant: false,
            ..ours
        };
        assert!(matches!(
            judge(&stranger, &spawned(None), &ctx(now), now),
            Observation::Unverified(..)
        ));
        let no_subreaper = Context {
            subreaper: false,
            ..ctx(now)
        };
        assert_eq!(
            judge(&stranger, &spawned(None), &no_subreaper, now),
            Observation::Alive(stranger.pin)
        );
    }
}

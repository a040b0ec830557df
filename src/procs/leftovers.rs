//! Leftovers: the processes a dead instance left in its process group, looked for only where
//! that group was the instance's alone.

use std::time::Duration;

use super::identity::{is_keeper, PF_KTHREAD};
use super::stat::{all_pids, own_pid, pin, stat, stat_fields, ticks_to_boot};
use crate::core::Pin;
use crate::sys;

/// A service's instance as custos saw it while its main process lived: the main process and
/// the process group and session it was in. Recorded when the process is pinned, because once
/// it is dead /proc has nothing more to say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub pin: Pin,
    pub pgrp: i32,
    pub session: i32,
}

/// The instance of the live pinned process `pin` (its start time checked in the same read).
pub fn instance_of(pin: Pin) -> Option<Instance> {
    let s = stat_fields(pin.pid).ok()??;
    (s.start_ticks == pin.start_ticks && s.state != 'Z' && s.state != 'X').then_some(Instance {
        pin,
        pgrp: s.pgrp,
        session: s.session,
    })
}

/// custos's own process group.
pub fn own_pgrp() -> i32 {
    sys::proc::getpgrp()
}

/// Why a dead instance's leftovers are not looked for at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSweep {
    /// The instance ran in custos's own process group (or in init's): that group is not the
    /// instance's alone.
    SharedGroup(i32),
    /// A live instance of another service is in the same process group.
    OtherService(i32),
}

impl std::fmt::Display for NoSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            NoSweep::SharedGroup(g) => write!(
                f,
                "its process group {g} is custos's own (or init's), not the instance's alone"
            ),
            NoSweep::OtherService(g) => write!(
                f,
                "another service's running process is in its process group {g}"
            ),
        }
    }
}

/// Finds the leftovers of the dead instance `inst`, positively, never by name. A leftover is
/// a live process that
/// - is custos's descendant (an orphan custos inherited as subreaper has custos as parent),
///   and no descendant of a process in `guarded` (other services' pinned processes);
/// - started no earlier than the dead main process and no later than `died_by`, when custos
///   saw it dead (start times on the boot clock): what starts after the death is not the
///   dead instance's, whatever group number it has (a group's number is a PID, reused once
///   the group is empty);
/// - is in the dead main process's process group and session, as recorded while it lived:
///   a process that made a group or a session of its own left the instance on purpose;
/// - is not custos, init, a kernel thread, custos's output keeper, the dead main's PID, or
///   in `taken` (scripts, checks, other services' pins).
///
/// Puts up to `out`'s capacity of them, as (PID, start time), into `out`; returns how many
/// were found in all.
pub fn find_leftovers<const N: usize>(
    inst: &Instance,
    died_by: Duration,
    taken: &[i32],
    guarded: &[Instance],
    out: &mut heapless::Vec<Pin, N>,
) -> Result<usize, NoSweep> {
    out.clear();
    let me = own_pid();
    if inst.pgrp <= 1 || inst.pgrp == own_pgrp() {
        return Err(NoSweep::SharedGroup(inst.pgrp));
    }
    if guarded.iter().any(|g| g.pgrp == inst.pgrp) {
        return Err(NoSweep::OtherService(inst.pgrp));
    }
    let Ok(all) = all_pids() else {
        return Ok(0);
    };
    let mut found = 0usize;
    for pid in all {
        if pid <= 1 || pid == me || pid == inst.pin.pid || taken.contains(&pid) {
            continue;
        }
        // One read of stat: its fields all belong to the one process that had the PID then.
        let Ok(Some(s)) = stat_fields(pid) else {
            continue;
        };
        if s.state == 'Z'
            || s.state == 'X'
            || s.flags & PF_KTHREAD != 0
            || s.pgrp != inst.pgrp
            || s.session != inst.session
            || s.start_ticks < inst.pin.start_ticks
            || ticks_to_boot(s.start_ticks) > died_by
        {
            continue;
        }
        if !ours_alone(s.ppid, me, guarded) || is_keeper(pid) {
            continue;
        }
        found += 1;
        let _ = out.push(pin(pid, s.start_ticks));
    }
    Ok(found)
}

/// Whether a process whose parent is `ppid` descends from custos (`me`) through no process of
/// `guarded` (bounded walk up the parents).
fn ours_alone(mut ppid: i32, me: i32, guarded: &[Instance]) -> bool {
    for _ in 0..64 {
        if ppid == me {
            return true;
        }
        if ppid <= 1 || guarded.iter().any(|g| g.pin.pid == ppid) {
            return false;
        }
        match stat(ppid) {
            Some(s) => ppid = s.ppid,
            None => return false,
        }
    }
    false
}

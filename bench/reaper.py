#!/usr/bin/env python3
"""A prompt reaper, as init is for a supervisor on a real board.

    reaper.py PIDFILE -- PROGRAM ARGS...

Becomes a child subreaper (PR_SET_CHILD_SUBREAPER), runs PROGRAM as its child (stdio inherited)
and reaps every orphan that is reparented to it at once (a blocking wait4(-1)), so that a
daemon killed under a supervisor never lingers as a zombie that still "exists". PIDFILE gets the
supervisor's PID. SIGTERM/SIGINT are passed on to the supervisor; once the supervisor has exited
(or 5 s later, SIGKILL), every process left in the reaper's care (the adopted daemons and their
children) is killed and reaped, and the reaper exits with the supervisor's status. If the
driver that started it dies, the kernel sends it SIGTERM (PR_SET_PDEATHSIG), so nothing leaks.
"""
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)


def children_of(me):
    """PIDs whose parent is `me` (a bounded /proc scan)."""
    out = []
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            out = [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: reaper.py PIDFILE -- PROGRAM ARGS...", file=sys.stderr)
        return 2
    pidfile, argv = sys.argv[1], sys.argv[3:]
    parent = os.getppid()
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("reaper: cannot become a child subreaper", file=sys.stderr)
        return 3
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the driver died before the prctl took effect
        return 1
    stop = {"at": None}

    def on_signal(sig, _frame):
        if stop["at"] is None:
            stop["at"] = time.monotonic()
        try:
            os.kill(child, signal.SIGTERM)
        except (ProcessLookupError, NameError):
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{child}\n")
    os.replace(pidfile + ".tmp", pidfile)

    status = None
    while status is None:
        if stop["at"] is not None:
            # Bounded: the supervisor gets 5 s to exit on SIGTERM, then SIGKILL.
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == child:
                status = st
            elif pid == 0:
                if time.monotonic() - stop["at"] > 5:
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.01)
            continue
        try:
            pid, st = os.waitpid(-1, 0)  # blocks until any child exits: prompt reaping
        except ChildProcessError:
            break
        if pid == child:
            status = st

    # Everything left is ours: adopted daemons (and their children once those are orphaned).
    me = os.getpid()
    for _ in range(200):
        kids = children_of(me)
        if not kids:
            break
        for k in kids:
            try:
                os.kill(k, signal.SIGCONT)
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.005)
    if status is None:
        return 1
    return os.waitstatus_to_exitcode(status) & 0xFF


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Board tests: custos on the emulated armv7 and aarch64 boards, as init starts it.

    python3 board/tests/board_test.py [--board-dir DIR] [-k NAME]... [-v] [armv7] [aarch64]

(run through `scripts/board test [armv7|aarch64|all]`, which builds the images first).
Each test boots its own QEMU (one at a time), drives the root shell on the serial console,
and asserts on console lines and QMP events (never on QEMU's exit code). Console logs:
target/board/logs/<arch>-<test>.log. Ends with the line "N passed, N failed".
"""

import argparse
import os
import re
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boardlib import DEFAULT_BOARD_DIR, Board, BoardError, echo_to, printable, watchdog_settings  # noqa: E402

TIMEOUT, PET = watchdog_settings()  # [watchdog] in board/rootfs/etc/custos.toml: 5 s, 1 s
BOOT = 90  # bound on a boot to custos's first keepalive (armv7 takes ~5 s; slack for load)

STARTING = re.compile(r"INFO +\[custos\] custos \S+ starting with /etc/custos.toml")
FIRST_PET = "watchdog: first keepalive"
RESET_REASON = "guest-reset"

TESTS = []


def test(archs=("armv7", "aarch64"), boot=None):
    """Registers a test. Tests with the same `boot` name share one boot of the board, in the
    order they are defined, as long as each passes (a failed one leaves the board as it is, so
    the next test of the group boots afresh); VARIANTS[boot] is the group's variant."""

    def deco(f):
        TESTS.append((f.__name__, archs, f, boot))
        return f

    return deco


def check(cond, msg, board=None):
    if not cond:
        raise BoardError(msg + (f"\nconsole tail:\n{board.tail()}" if board else ""))


def booted(b):
    """Waits for custos's start from inittab and its first keepalive; returns their times."""
    b.wait_console("board: rcS: done", BOOT)
    t_exec, _, _ = b.wait_console(STARTING, BOOT, "custos start-up line")
    t_pet, _, _ = b.wait_console(FIRST_PET, 15)
    return t_exec, t_pet


# The shell's words for custos's PID: the process whose name (/proc/PID/comm) is "custos".
# Not `pidof custos`: that also lists any helper process custos forks (same executable and
# command line, another comm), which a test signalling custos must leave alone.
CUSTOS_PIDS = "$(grep -lx custos /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3)"


def custos_pid(b):
    _, _, out = b.run(f"echo custos-pid={CUSTOS_PIDS}")
    m = re.search(r"^custos-pid=(\d*)", out, re.M)
    return m.group(1) if m else ""


def signal_custos(b, sig):
    """Sends `sig` to custos from the console shell. Returns (host time the shell reported
    the kill done, guest uptime right after the kill)."""
    _, done, out = b.run(f"kill -{sig} {CUSTOS_PIDS}; echo board-killed-at $(cut -d' ' -f1 /proc/uptime)")
    m = re.search(r"^board-killed-at ([0-9.]+)", out, re.M)
    check(m, f"no uptime after kill -{sig}:\n{out}", b)
    return done, float(m.group(1))


def assert_watchdog_reset(b, sig, what):
    """Signals custos and asserts the watchdog resets the board (-no-reboot: QMP SHUTDOWN with
    reason guest-reset) within timeout + 1 s, measured two ways: on the host, from the shell's
    report that the kill was done to the QMP event; in the guest, from the uptime printed right
    after the kill to the kernel's timestamp of softdog's "Initiating system reboot"."""
    done, killed_at = signal_custos(b, sig)
    t, ev = b.wait_event(("SHUTDOWN", "RESET"), TIMEOUT + 5)
    reason = ev.get("data", {}).get("reason")
    check(ev["event"] == "SHUTDOWN" and reason == RESET_REASON,
          f"expected SHUTDOWN with reason {RESET_REASON}, got {ev}", b)
    host = t - done
    b.pump(0.2)
    b.cursor = (0, 0)
    _, line, m = b.wait_console(re.compile(r"\[ *([0-9.]+)\] softdog: Initiating system reboot"), 1)
    guest = float(m.group(1)) - killed_at
    for lat, where in ((host, "on the host"), (guest, "in the guest")):
        check(lat <= TIMEOUT + 1,
              f"{what}: reset {lat:.2f} s after ({where}), more than timeout + 1 s", b)
        # The last keepalive came at most pet_every before the signal.
        check(lat >= TIMEOUT - PET - 0.5,
              f"{what}: reset only {lat:.2f} s after ({where}): too early to be the watchdog", b)
    return {"reset_after_s": round(host, 2), "guest_reset_after_s": round(guest, 2)}


# ---------------------------------------------------------------------------------------------


@test()
def t1_starts_from_inittab_and_pets_within_1s(b):
    t_exec, t_pet = booted(b)
    b.cursor = (0, 0)
    _, line, _ = b.wait_console("watchdog: /dev/watchdog:", 1)
    check(f"timeout {TIMEOUT}s" in line and f"petting every {PET}s" in line,
          f"unexpected watchdog line: {line}", b)
    b.wait_console("watchdog: boot status: no watchdog reset reported", 1)
    b.shell()
    pid = custos_pid(b)
    check(pid != "", "no process named custos", b)
    _, _, out = b.run(f"grep PPid /proc/{pid}/status; tr '\\0' ' ' </proc/{pid}/cmdline; echo")
    check(re.search(r"PPid:\s+1\b", out), f"custos's parent is not init:\n{out}", b)
    check("/usr/sbin/custos run" in out, f"custos's command line:\n{out}", b)
    gap = t_pet - t_exec
    check(gap < 1.0, f"first keepalive {gap:.3f} s after the start-up line (limit 1 s)", b)
    return {"boot_to_first_keepalive_s": round(t_pet - b.t0, 2), "exec_to_first_keepalive_s": round(gap, 3)}


@test()
def t2_service_sigkill_restarted_with_cause(b):
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(re.compile(r"web_server: (found )?running as pid \d+"), 10)
    b.shell()
    # rcS started this web_server, so custos is not its parent: the honest cause is unknown.
    b.run("kill -9 $(cat /var/run/web_server.pid)")
    b.wait_console("web_server: died: cause unknown (not our child)", 10)
    _, _, m = b.wait_console(re.compile(r"web_server: running as pid (\d+)"), 15)
    first = m.group(1)
    # custos started this one (it is custos's child through the subreaper): the exact cause.
    sent, _, _ = b.run("kill -9 $(cat /var/run/web_server.pid)")
    t_died, line, _ = b.wait_console(
        re.compile(r"web_server: died: killed by SIGKILL \(pid (\d+), up "), 10)
    check(f"pid {first}," in line, f"died line names another pid than {first}: {line}", b)
    b.wait_console(re.compile(
        r"web_server: starting \(attempt \d+, after [0-9.]+m?s backoff\): died: killed by SIGKILL"), 10)
    t_up, _, m = b.wait_console(
        re.compile(r"web_server: running as pid (\d+) \(pidfile /var/run/web_server.pid\)"), 15)
    check(m.group(1) != first, "the restarted web_server has the old pid", b)
    _, _, out = b.run("wget -q -O - http://127.0.0.1/watchdog_page.html")
    check("woof woof still alive" in out, f"web_server does not serve its page:\n{out}", b)
    b.expect_no_event(("SHUTDOWN", "RESET"), 0.1)
    return {"death_seen_after_s": round(t_died - sent, 2), "running_again_after_s": round(t_up - sent, 2)}


@test()
def t3a_custos_sigkill_respawned_no_reset(b):
    booted(b)
    b.shell()
    old = custos_pid(b)
    sent, _ = signal_custos(b, "9")
    t_exec, _, _ = b.wait_console(STARTING, 10, "custos started again by init")
    b.wait_console("web_server: found running as pid", 5)
    t_pet, _, _ = b.wait_console(FIRST_PET, 5)
    b.expect_no_event(("SHUTDOWN", "RESET"), TIMEOUT + 2 - (time.monotonic() - sent))
    new = custos_pid(b)
    check(new and new != old, f"custos pid before {old}, after {new}", b)
    return {"respawn_first_keepalive_after_s": round(t_pet - sent, 2), "no_reset_for_s": TIMEOUT + 2}


@test()
def t3b_custos_sigkill_once_resets(b):
    booted(b)
    b.shell()
    r = assert_watchdog_reset(b, "9", "SIGKILL of custos with ::once:")
    check(len(b.events_named("SHUTDOWN")) == 1, "more than one SHUTDOWN", b)
    starts = [line for _, line in b.lines if STARTING.search(line)]
    check(len(starts) == 1, f"custos started {len(starts)} times with ::once:", b)
    return r


@test()
def t4_custos_sigstop_resets(b):
    booted(b)
    b.shell()
    return assert_watchdog_reset(b, "STOP", "SIGSTOP of custos")


@test()
def t5a_magic_close_sigterm_no_reset(b):
    booted(b)
    b.shell()
    sent, _ = signal_custos(b, "TERM")
    b.wait_console("watchdog: magic close: disarmed", 5)
    b.expect_no_event(("SHUTDOWN", "RESET"), TIMEOUT + 2 - (time.monotonic() - sent))
    _, _, out = b.run(f"[ -z \"{CUSTOS_PIDS}\" ] && echo custos-gone; kill -0 $(cat /var/run/web_server.pid) && echo web-alive")
    check("custos-gone" in out, f"custos still running after SIGTERM:\n{out}", b)
    check("web-alive" in out, f"web_server did not survive custos's exit:\n{out}", b)
    return {"no_reset_for_s": TIMEOUT + 2}


@test()
def t5b_no_magic_close_sigterm_resets(b):
    booted(b)
    b.shell()
    r = assert_watchdog_reset(b, "TERM", "SIGTERM with magic_close = false")
    b.cursor = (0, 0)
    b.wait_console(f"watchdog: left armed: the board resets in {TIMEOUT}s", 1)
    return r


@test(archs=("aarch64",))
def t6_i6300esb_reset_reported_at_next_boot(b):
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(re.compile(r'watchdog: /dev/watchdog: "i6300ESB'), 1, "the i6300esb device")
    b.wait_console("watchdog: boot status: no watchdog reset reported", 1)
    b.shell()
    done, _ = signal_custos(b, "9")
    t_wd, ev = b.wait_event("WATCHDOG", TIMEOUT + 5)
    check(ev["data"].get("action") == "reset", f"WATCHDOG event: {ev}", b)
    lat = t_wd - done
    check(TIMEOUT - PET - 0.5 <= lat <= TIMEOUT + 1,
          f"the i6300esb fired {lat:.2f} s after SIGKILL, not within timeout + 1 s", b)
    # QEMU then resets the machine (without -no-reboot: a RESET event, and the board reboots).
    t_reset, ev = b.wait_event(("RESET", "SHUTDOWN"), 5)
    check(ev["event"] == "RESET" and ev["data"].get("reason") == RESET_REASON,
          f"expected RESET with reason {RESET_REASON}, got {ev}", b)
    t_boot, _, _ = b.wait_console(
        "watchdog: boot status: previous reset was caused by the watchdog (CARDRESET)", BOOT)
    b.wait_console(FIRST_PET, 15)
    return {"watchdog_fired_after_s": round(lat, 2), "reset_event_after_s": round(t_reset - done, 2),
            "reset_to_boot_status_s": round(t_boot - t_reset, 2)}


@test()
def t7_subreaper_and_pidfd(b):
    b.wait_console("board: rcS: done", BOOT)
    _, line, _ = b.wait_console(re.compile(r"supervising \d+ service\(s\), polling every"), BOOT)
    check("child subreaper: yes; pidfd: yes" in line, f"start-up line: {line}", b)
    return {}


STATE_MOUNTED = "board: state: /dev/vda (ext4) mounted at /var/lib/custos"
CARDRESET = "watchdog: boot status: previous reset was caused by the watchdog (CARDRESET)"


def wait_record(b, service, kind, timeout=15):
    """Polls /var/lib/custos/record on the board (custos writes it at most every 5 s) until it
    holds an entry of `kind` for `service` ("" for custos-wide); returns the seconds it took."""
    _, _, out = b.run(
        f"t=$(printf '\\t{service}\\t{kind}\\t'); i=0; "
        f"while ! grep -q \"$t\" /var/lib/custos/record 2>/dev/null && [ $i -lt {timeout * 10} ]; do "
        "sleep 0.1; i=$((i + 1)); done; grep -q \"$t\" /var/lib/custos/record && echo record-has-it-after $i",
        timeout=timeout + 10)
    m = re.search(r"^record-has-it-after (\d+)", out, re.M)
    check(m, f"no {kind} entry for '{service}' in /var/lib/custos/record within {timeout} s:\n{out}", b)
    return int(m.group(1)) / 10


def reset_by_i6300esb(b):
    """kill -9 of custos (::once:): the i6300esb fires (QMP WATCHDOG, action reset) within
    timeout + 1 s and the board reboots (RESET, reason guest-reset; no -no-reboot). Moves the
    console cursor to the new boot and returns that mark."""
    done, _ = signal_custos(b, "9")
    t_wd, ev = b.wait_event("WATCHDOG", TIMEOUT + 5)
    check(ev["data"].get("action") == "reset", f"WATCHDOG event: {ev}", b)
    check(t_wd - done <= TIMEOUT + 1, f"the i6300esb fired {t_wd - done:.2f} s after SIGKILL", b)
    _, ev = b.wait_event(("RESET", "SHUTDOWN"), 5)
    check(ev["event"] == "RESET" and ev["data"].get("reason") == RESET_REASON,
          f"expected RESET with reason {RESET_REASON}, got {ev}", b)
    b.cursor = b.mark()
    return b.cursor


def shell_after(b, mark):
    """The console's root shell of the boot that started at `mark` (after a reset)."""
    saved = b.cursor
    b.cursor = mark
    b.wait_console("Please press Enter to activate this console.", BOOT, partial=True)
    b.cursor = saved
    b.send("\n")
    return b.run("stty cols 1000 rows 50", timeout=15)


@test(archs=("aarch64",))
def t8_record_survives_a_reset(b):
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(STATE_MOUNTED, 1, "the state disk mounted by rcS")
    b.wait_console(re.compile(r"web_server: (found )?running as pid \d+"), 10)
    b.shell()
    b.run("kill -9 $(cat /var/run/web_server.pid)")
    b.wait_console("web_server: died: cause unknown (not our child)", 10)
    # The record is written at most every 5 s: wait until the death is on the disk, then
    # reset the board (a SIGTERM of custos would flush it at once; a reset does not).
    written = wait_record(b, "web_server", "died")
    t_kill = time.monotonic()
    mark = reset_by_i6300esb(b)
    b.wait_console(STATE_MOUNTED, BOOT, "the state disk mounted after the reset")
    b.cursor = mark
    t_boot, _, _ = b.wait_console(CARDRESET, BOOT)
    b.wait_console(FIRST_PET, 15)
    shell_after(b, mark)
    _, _, out = b.run("custos why web_server")
    died = [ln for ln in out.splitlines() if re.search(r"web_server died: .*cause unknown \(not our child\)", ln)]
    check(died, f"`custos why web_server` after the reset does not show the death:\n{out}", b)
    check(all(ln.rstrip().endswith("(earlier boot)") for ln in died),
          f"the death before the reset is not marked (earlier boot):\n{out}", b)
    _, _, out = b.run("custos events")
    resets = [ln for ln in out.splitlines() if re.search(r"\bwatchdog-reset: ", ln)]
    check(len(resets) == 1 and not resets[0].rstrip().endswith("(earlier boot)"),
          f"`custos events` does not show one watchdog-reset of this boot:\n{out}", b)
    check("CARDRESET" in resets[0], f"watchdog-reset entry: {resets[0]}", b)
    return {"death_on_disk_after_s": written, "kill_to_boot_status_s": round(t_boot - t_kill, 2)}


@test(archs=("aarch64",))
def t9_boot_loop_guard(b):
    # board.config=boot-loop: [boot] max_resets = 1, so the boot after two boots that ended in
    # a watchdog reset starts degraded (the guard counts boots, not time).
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(STATE_MOUNTED, 1, "the state disk mounted by rcS")
    b.shell()
    marks = []
    for n in (1, 2):
        mark = reset_by_i6300esb(b)
        marks.append(time.monotonic())
        b.wait_console(CARDRESET, BOOT, f"CARDRESET after reset {n}")
        b.wait_console(FIRST_PET, 15)
        if n == 2:
            break
        shell_after(b, mark)
        # This boot's watchdog-reset must be on the disk before the next reset.
        wait_record(b, "", "watchdog-reset")
        text = b.console_since(mark)
        check("boot-loop guard: clear: 1 recent boot(s) ended badly" in text and "DEGRADED" not in text,
              "degraded after a single watchdog reset (max_resets = 1)", b)
    b.cursor = mark
    t_guard, line, _ = b.wait_console(re.compile(
        r"boot-loop guard: 2 recent boot\(s\) ended badly .*more than max_resets = 1: DEGRADED MODE"),
        BOOT, "the boot-loop guard's line")
    shell_after(b, mark)
    _, _, out = b.run("custos status")
    check("DEGRADED" in out, f"`custos status` does not say DEGRADED:\n{out}", b)
    _, _, out = b.run("custos events")
    resets = [ln.rstrip() for ln in out.splitlines() if re.search(r"\bwatchdog-reset: ", ln)]
    check(len(resets) == 2 and resets[0].endswith("(earlier boot)") and not resets[1].endswith("(earlier boot)"),
          f"`custos events`: expected a watchdog-reset of the earlier boot and one of this one:\n{out}", b)
    # Boots 4 and 5 follow an orderly reboot (init's SIGTERM reaches custos): one good boot
    # does not clear the guard (clear_after = 2), two in a row do.
    for n in (4, 5):
        mark = reboot_in_order(b)
        b.wait_console(re.compile(r"the previous boot \([0-9a-f-]+\) ended in order"), BOOT,
                       f"boot {n}: the previous boot's orderly end")
        shell_after(b, mark)
        _, _, out = b.run("custos status")
        if n == 4:
            check("DEGRADED: the boot-loop guard is on: 2 recent boot(s) ended badly" in out,
                  f"boot 4: one good boot cleared the guard:\n{out}", b)
        else:
            check("boot-loop guard: clear: 0 recent boot(s) ended badly" in out and "DEGRADED" not in out,
                  f"boot 5: two good boots in a row did not clear the guard:\n{out}", b)
    _, _, out = b.run("cat /var/lib/custos/boots")
    ends = [ln.split("\t")[2] for ln in out.splitlines() if ln.count("\t") == 3]
    check(ends == ["watchdog-reset", "watchdog-reset", "orderly", "orderly", "running"],
          f"/var/lib/custos/boots after 5 boots:\n{out}", b)
    return {"second_reset_to_guard_line_s": round(t_guard - marks[1], 2)}


def gate_marks(b, want, timeout=20):
    """Polls /var/lib/custos/gate-healthy (one boot id per run of on_healthy) until it has
    `want` lines; returns its lines."""
    _, _, out = b.run(
        f"i=0; while [ \"$(wc -l < /var/lib/custos/gate-healthy 2>/dev/null || echo 0)\" -lt {want} ] "
        f"&& [ $i -lt {timeout * 10} ]; do sleep 0.1; i=$((i + 1)); done; "
        "echo gate-marks-begin; cat /var/lib/custos/gate-healthy; echo gate-marks-end",
        timeout=timeout + 10)
    m = re.search(r"^gate-marks-begin\r?\n(.*?)^gate-marks-end", out, re.M | re.S)
    check(m, f"no gate marks in:\n{out}", b)
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]


@test(archs=("aarch64",))
def t22_boot_health_gate_runs_once_per_boot(b):
    # board.config=gate: web_server is vital; healthy_after = "5s"; on_healthy appends the boot
    # id to a file on the state disk. Boot 1: it runs once; custos killed and respawned by init
    # in the same boot: the verdict stands and nothing runs again; boot 2 (orderly reboot): once.
    t_exec, _ = booted(b)
    b.cursor = (0, 0)
    b.wait_console(STATE_MOUNTED, 1, "the state disk mounted by rcS")
    t_healthy, _, _ = b.wait_console("boot health: healthy: every vital service", 60,
                                     "the gate's verdict in boot 1")
    b.shell()
    marks = gate_marks(b, 1)
    check(len(marks) == 1, f"boot 1: on_healthy ran {len(marks)} times: {marks}", b)
    mark = b.mark()
    signal_custos(b, "9")
    b.cursor = mark
    b.wait_console(STARTING, 30, "custos respawned by init")
    b.wait_console("boot health: healthy already in this boot", 30, "the respawned custos's gate")
    time.sleep(8)  # longer than healthy_after: a second run would have happened by now
    marks = gate_marks(b, 1)
    check(len(marks) == 1, f"boot 1 after a respawn of custos: on_healthy ran {len(marks)} times", b)
    mark = reboot_in_order(b)
    b.wait_console(STATE_MOUNTED, BOOT, "the state disk mounted in boot 2")
    b.wait_console("boot health: healthy: every vital service", 60, "the gate's verdict in boot 2")
    shell_after(b, mark)
    marks = gate_marks(b, 2)
    check(len(marks) == 2 and marks[0] != marks[1],
          f"after 2 boots: on_healthy should have run once in each:\n{marks}", b)
    _, _, out = b.run("custos status")
    check("boot health: healthy: on_healthy (pid" in out, f"`custos status`:\n{out}", b)
    _, _, out = b.run("cat /var/lib/custos/boots")
    flags = [ln.split("\t")[3] for ln in out.splitlines() if ln.count("\t") == 3]
    check(len(flags) == 2 and all("healthy" in f.split(",") for f in flags),
          f"/var/lib/custos/boots should mark both boots healthy:\n{out}", b)
    return {"custos_start_to_verdict_s": round(t_healthy - t_exec, 2)}


@test(archs=("armv7", "aarch64"))
def t14_boot_loop_guard_softdog(b):
    # softdog reports no reset (WDIOC_GETBOOTSTATUS is 0): the boots it resets end
    # "unexplained", which the guard counts all the same. [boot] max_resets = 1: the third boot
    # is degraded.
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(STATE_MOUNTED, 1, "the state disk mounted by rcS")
    b.shell()
    for n in (2, 3):
        _, _, out = b.run("for i in $(seq 50); do grep -q $(cat /proc/sys/kernel/random/boot_id) "
                          "/var/lib/custos/boots && break; sleep 0.1; done; echo boots-has-this-boot=$i")
        check("boots-has-this-boot=" in out and "boots-has-this-boot=50" not in out,
              f"boot {n - 1} is not in /var/lib/custos/boots:\n{out}", b)
        signal_custos(b, "9")
        _, ev = b.wait_event(("RESET", "SHUTDOWN"), TIMEOUT + 5)
        check(ev["event"] == "RESET" and ev["data"].get("reason") == RESET_REASON,
              f"expected RESET with reason {RESET_REASON}, got {ev}", b)
        mark = b.mark()
        b.cursor = mark
        b.wait_console(re.compile(r"the previous boot \([0-9a-f-]+\) ended unexplained"), BOOT,
                       f"boot {n}: the softdog reset read as unexplained")
        shell_after(b, mark)
        _, _, out = b.run("custos status")
        if n == 2:
            check("boot-loop guard: clear: 1 recent boot(s) ended badly" in out and "DEGRADED" not in out,
                  f"boot 2:\n{out}", b)
        else:
            check("DEGRADED: the boot-loop guard is on: 2 recent boot(s) ended badly" in out,
                  f"boot 3: the guard did not trip:\n{out}", b)
    text = b.console_since(mark)
    check("previous reset was caused by the watchdog" not in text,
          "softdog reported a reset: this test means a driver that does not", b)
    return {}


def reboot_in_order(b):
    """`reboot` at the shell: busybox init sends SIGTERM to custos, then reboots the board (QMP
    RESET). Moves the console cursor to the new boot and returns that mark."""
    b.send("reboot\n")
    _, ev = b.wait_event(("RESET", "SHUTDOWN"), 60)
    check(ev["event"] == "RESET", f"expected RESET after `reboot`, got {ev}", b)
    b.cursor = b.mark()
    return b.cursor


# ------------------------------------------------------------------------- what custos starts
# t10-t12 share one boot per arch (board.config=children, /etc/board/custos-children.toml: no
# [watchdog], the services sigstate and termtrap; t12 adds chatty). A failed test leaves the
# board to the next one, which then boots afresh.
CHILDREN = "children"


def children_booted(b):
    """The first test of the children boot waits for custos and gets the shell; the next ones
    find them there."""
    if getattr(b, "children_ready", False):
        return
    b.wait_console("board: rcS: done", BOOT)
    b.wait_console(STARTING, BOOT, "custos start-up line")
    b.shell()
    b.children_ready = True


def service_pid(b, name, timeout=15):
    """Waits (in the board's shell) until /var/run/NAME.pid names a live process; its PID."""
    _, _, out = b.run(
        f"f=/var/run/{name}.pid; i=0; "
        f"while ! {{ [ -s $f ] && kill -0 $(cat $f) 2>/dev/null; }} && [ $i -lt {timeout * 10} ]; do "
        "sleep 0.1; i=$((i + 1)); done; echo pidfile-pid=$(cat $f 2>/dev/null); "
        "kill -0 $(cat $f 2>/dev/null) 2>/dev/null && echo pidfile-alive", timeout=timeout + 10)
    m = re.search(r"^pidfile-pid=(\d+)$", out, re.M)
    check(m and re.search(r"^pidfile-alive$", out, re.M), f"{name}: no live process in /var/run/{name}.pid:\n{out}", b)
    return m.group(1)


def alive(b, pid):
    _, _, out = b.run(f"kill -0 {pid} 2>/dev/null && echo pid-is-alive || echo pid-is-gone")
    return re.search(r"^pid-is-alive$", out, re.M) is not None


def lines_since(b, mark, rx):
    """The complete console lines from `mark` on that match `rx`."""
    return [line for line in b.console_since(mark).splitlines() if rx.search(line)]


SIGNAMES = {1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
            9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
            16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN",
            22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF",
            28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS"}


def signames(mask):
    return ",".join(SIGNAMES.get(n, str(n)) for n in range(1, 65) if mask >> (n - 1) & 1) or "none"


@test(boot=CHILDREN)
def t10_children_start_with_a_clean_signal_state(b):
    children_booted(b)
    # /etc/init.d/sigstate, its two daemons and its program check each record, in
    # /tmp/sigstate/ROLE, the SigBlk and SigIgn they were given (what a program they run starts
    # with: busybox ash passes on what it inherited but ignores SIGQUIT for itself) and their own
    # (shell.*). The check runs once the daemon is pinned.
    roles = ("script", "daemon-ssd", "daemon-bg", "check")
    _, _, out = b.run(
        "i=0; while [ $(ls /tmp/sigstate 2>/dev/null | wc -l) -lt 4 ] && [ $i -lt 200 ]; do "
        "sleep 0.1; i=$((i + 1)); done; cat " + " ".join(f"/tmp/sigstate/{r}" for r in roles),
        timeout=40)
    got = {m.group(1): (m.group(2), *(int(x, 16) for x in m.group(3, 4, 5, 6))) for m in re.finditer(
        r"^(\S+) pid=(\d+) SigBlk=([0-9a-f]{16}) SigIgn=([0-9a-f]{16}) "
        r"shell.SigBlk=([0-9a-f]{16}) shell.SigIgn=([0-9a-f]{16})$", out, re.M)}
    check(set(got) == set(roles), f"/tmp/sigstate has {sorted(got)}, expected {roles}:\n{out}", b)
    # ( cmd & ) in a shell without job control ignores SIGINT and SIGQUIT (POSIX), whoever
    # started the shell: that much of daemon-bg's SigIgn is the shell's, not custos's.
    shell_ign = 1 << 1 | 1 << 2
    want = {"script": 0, "daemon-ssd": 0, "daemon-bg": shell_ign, "check": 0}
    bad = []
    for r in roles:
        pid, blk, ign, own_blk, own_ign = got[r]
        if blk != 0 or ign != want[r] or own_blk != 0:
            bad.append(f"{r} (pid {pid}): SigBlk {blk:016x} ({signames(blk)}), SigIgn {ign:016x} "
                       f"({signames(ign)}), its own SigBlk {own_blk:016x}, SigIgn {own_ign:016x}; "
                       f"want SigBlk 0, SigIgn {want[r]:016x} ({signames(want[r])})")
    check(not bad, "children of custos do not start with a clean signal state:\n  " + "\n  ".join(bad), b)
    return {r: f"{got[r][1]:x}/{got[r][2]:x}" for r in roles}


@test(boot=CHILDREN)
def t11_restart_stops_a_term_trapping_daemon_with_sigterm(b):
    children_booted(b)
    pid = service_pid(b, "termtrap")
    b.run("rm -f /tmp/termtrap.log")
    mark = b.mark()
    sent, _, _ = b.run("custos restart termtrap", timeout=30)
    # custos: SIGTERM to the pinned daemon, SIGKILL only if it still lives after stop_timeout
    # (3s); the daemon's trap writes "got TERM" and exits 0; then the start.
    b.cursor = mark
    b.wait_console("termtrap: restarting: asked by the operator", 10)
    t_up, _, m = b.wait_console(re.compile(r"termtrap: running as pid (\d+)"), 30, "termtrap running again")
    check(m.group(1) != pid, f"termtrap still has pid {pid} after the restart", b)
    logged = lines_since(b, mark, re.compile(r"termtrap: "))
    _, _, trap = b.run("cat /tmp/termtrap.log 2>/dev/null; echo termtrap-log-end")
    problems = []
    if any("sending SIGKILL" in ln for ln in logged):
        problems.append("custos sent SIGKILL")
    if f"got TERM (pid {pid})" not in trap:
        problems.append(f"the TERM trap of pid {pid} did not run (/tmp/termtrap.log: "
                        f"{re.findall(r'^got TERM.*$', trap, re.M) or 'nothing'})")
    # Ended by custos's SIGTERM with status 0: a requested stop, not a death to warn about.
    if not any(re.search(rf"termtrap: stopped: exited with status 0 \(pid {pid},.*as custos's SIGTERM asked", ln)
               for ln in logged):
        problems.append(f"no `termtrap: stopped: exited with status 0 (pid {pid}, ...), as custos's SIGTERM asked` in the log")
    check(not problems, "`custos restart termtrap` did not stop it with SIGTERM: " + "; ".join(problems)
          + ". custos logged:\n  " + "\n  ".join(printable(ln) for ln in logged), b)
    return {"restart_to_running_s": round(t_up - sent, 2)}


def chatty_running(b):
    """Adds the chatty service (/etc/board/chatty.toml) to /etc/custos.toml and reloads, if it
    is not there yet; returns the PID of its daemon."""
    children_booted(b)
    _, _, out = b.run("grep -q '^name = \"chatty\"' /etc/custos.toml && echo chatty-configured")
    if not re.search(r"^chatty-configured$", out, re.M):
        mark = b.mark()
        b.run("cat /etc/board/chatty.toml >>/etc/custos.toml && custos reload", timeout=20)
        b.cursor = mark
        b.wait_console(re.compile(r"chatty: running as pid \d+"), 20, "chatty started")
    return service_pid(b, "chatty")


ADOPTED_OR_STARTED = re.compile(r"chatty: (found running as pid (\d+)|starting \(.*)")
ANY_START = re.compile(r"\S+: starting \(attempt")


def assert_chatty_adopted(b, pid, mark, what):
    """After `what`, the daemon `pid` must live and custos (from console mark `mark`) must have
    adopted it, `chatty: found running as pid PID`, and started nothing within 2 s after."""
    b.cursor = mark
    t, line, m = b.wait_console(ADOPTED_OR_STARTED, 20, "custos finding chatty")
    b.expect_no_event(("SHUTDOWN", "RESET"), 2)
    starts = lines_since(b, mark, ANY_START)
    lived = alive(b, pid)
    problems = []
    if not lived:
        problems.append(f"chatty's daemon (pid {pid}) is gone")
    if m.group(2) != pid:
        problems.append(f"custos did not adopt pid {pid}: `{printable(line).strip()}`")
    if starts:
        problems.append("custos started: " + "; ".join(printable(s).strip() for s in starts))
    check(not problems, f"after {what}: " + "; ".join(problems), b)
    return t


@test(boot=CHILDREN)
def t12a_stdout_daemon_survives_custos_sigkill(b):
    pid = chatty_running(b)
    old = custos_pid(b)
    mark = b.mark()
    sent, _ = signal_custos(b, "9")
    b.cursor = mark
    b.wait_console(STARTING, 15, "custos started again by init")
    t = assert_chatty_adopted(b, pid, mark, f"kill -9 of custos (pid {old}; ::respawn:)")
    new = custos_pid(b)
    check(new and new != old, f"custos pid before {old}, after {new}", b)
    return {"adopted_after_s": round(t - sent, 2)}


@test(boot=CHILDREN)
def t12b_stdout_daemon_survives_custos_sigterm(b):
    pid = chatty_running(b)
    old = custos_pid(b)
    mark = b.mark()
    sent, _ = signal_custos(b, "TERM")
    b.cursor = mark
    b.wait_console(STARTING, 15, "custos started again by init")
    t = assert_chatty_adopted(b, pid, mark, f"SIGTERM of custos (pid {old}; ::respawn:)")
    new = custos_pid(b)
    check(new and new != old, f"custos pid before {old}, after {new}", b)
    return {"adopted_after_s": round(t - sent, 2)}


@test(boot=CHILDREN)
def t12c_stdout_daemon_survives_a_reload_that_drops_it(b):
    pid = chatty_running(b)
    mark = b.mark()
    b.run("cp /etc/board/custos-children.toml /etc/custos.toml && custos reload", timeout=20)
    b.cursor = mark
    b.wait_console("chatty: removed from the config: no longer supervised; left running", 10)
    # The daemon writes every 100 ms: 1.5 s is 15 writes after its service was dropped.
    b.expect_no_event(("SHUTDOWN", "RESET"), 1.5)
    lived = alive(b, pid)
    # The service back in the config: custos must find the same daemon running.
    mark = b.mark()
    b.run("cat /etc/board/chatty.toml >>/etc/custos.toml && custos reload", timeout=20)
    if not lived:
        b.cursor = mark
        b.wait_console(ADOPTED_OR_STARTED, 20, "custos finding chatty")
        raise BoardError(f"{b.arch}: chatty's daemon (pid {pid}) died within 1.5 s of the reload that "
                         "dropped its service; when the service came back custos logged:\n  "
                         + "\n  ".join(printable(ln) for ln in lines_since(b, mark, re.compile(r"chatty: ")))
                         + f"\nconsole tail:\n{b.tail()}")
    assert_chatty_adopted(b, pid, mark, "a reload that dropped chatty and one that brought it back")
    return {}


# ------------------------------------------------------------------------- leftovers
PREFORK_RUNNING = re.compile(r"prefork: running as pid (\d+)")


@test(boot=CHILDREN)
def t19_leftovers_of_a_killed_master_are_stopped(b):
    """kill -9 of a pre-forking daemon's master (/etc/init.d/prefork: busybox sh, nc and sleep):
    its two workers, custos's children now, are stopped (logged, with the count) before the
    next start, and a new instance serves within 2 s."""
    children_booted(b)
    _, _, out = b.run("grep -q '^name = \"prefork\"' /etc/custos.toml && echo prefork-configured")
    if not re.search(r"^prefork-configured$", out, re.M):
        mark = b.mark()
        b.run("cat /etc/board/prefork.toml >>/etc/custos.toml && custos reload", timeout=20)
        b.cursor = mark
        b.wait_console(PREFORK_RUNNING, 20, "prefork started")
    master = service_pid(b, "prefork")
    _, _, out = b.run("echo workers=$(cat /var/run/prefork.workers)")
    m = re.search(r"^workers=(\d+) (\d+)$", out, re.M)
    check(m, f"no /var/run/prefork.workers:\n{out}", b)
    workers = [m.group(1), m.group(2)]
    _, _, out = b.run("nc 127.0.0.1 8081 </dev/null")
    check("prefork-worker" in out, f"prefork does not serve on 8081: {out!r}", b)
    b.run("sleep 1.2")  # past stable_after: the death is answered by a start at once
    mark = b.mark()
    sent, _, _ = b.run(f"kill -9 {master}")
    b.cursor = mark
    t_up, _, m = b.wait_console(PREFORK_RUNNING, 20, "prefork running again")
    new = m.group(1)
    logged = lines_since(b, mark, re.compile(r"prefork: "))
    _, _, served = b.run("nc 127.0.0.1 8081 </dev/null")
    problems = []
    if new == master:
        problems.append(f"still pid {master}")
    sweep = [ln for ln in logged if f"stopping 2 leftover process(es) of pid {master} " in ln]
    if not sweep:
        problems.append("no `stopping 2 leftover process(es) of pid ...` line")
    elif not all(w in sweep[0] for w in workers):
        problems.append(f"the leftover line does not name workers {workers}: {printable(sweep[0]).strip()}")
    for w in workers:
        if alive(b, w):
            problems.append(f"worker {w} still alive")
    if "prefork-worker" not in served:
        problems.append(f"the new instance does not serve: {served!r}")
    if t_up - sent > 2.0:
        problems.append(f"the new instance ran {t_up - sent:.2f} s after the kill (over 2 s)")
    check(not problems, f"kill -9 of prefork's master (pid {master}): " + "; ".join(problems)
          + ". custos logged:\n  " + "\n  ".join(printable(ln) for ln in logged), b)
    return {"new_instance_after_s": round(t_up - sent, 2)}


# ------------------------------------------------------------------------- the console stall
# The serial console stops taking output: XOFF (Ctrl-S) typed at it, as on a real board. The
# console tty has IXON (the default, which ash's line editing keeps), so the kernel stops
# sending; once the UART's transmit buffer (a page) is full, a blocking write(2) to
# /dev/console (custos's stderr) waits until XON (Ctrl-Q). Kernel messages (printk) still get
# out. Pausing the host's reads of QEMU's -serial pipe instead would stall the whole guest:
# QEMU's PL011 writes each byte with qemu_chr_fe_write_all, which blocks the vCPU thread.
XOFF, XON = "\x13", "\x11"
CUSTOS_LOG = re.compile(r"(TRACE|DEBUG|INFO|WARN|ERROR) +\[custos")
# The line custos writes once its log drains: the number of lines it could not write. Matched
# loosely: a console line with the word "dropped" and a number, other than the per-service note
# of script output over 20 lines/s ("NAME: | (N more lines dropped: over 20/s)") and kernel
# messages ("[ seconds.micros] ...").
DROPPED = re.compile(r"\bdropped\b")
SCRIPT_DROPPED = re.compile(r"more lines dropped: over \d+/s")
KERNEL = re.compile(r"^\[ *\d+\.\d+\] ")


@test()
def t13_console_stall_no_reset(b):
    booted(b)
    b.shell()
    pid = custos_pid(b)
    b.cursor = (0, 0)
    b.wait_console(re.compile(r"crashy\d: died: exited with status 3"), 20, "the crash loop")
    b.run("stty ixon -ixany")  # as the console has them by default (stty -a): said, not assumed
    stall = 3 * TIMEOUT
    n_stall = len(b.lines)
    t_xoff = time.monotonic()
    b.send(XOFF)
    try:
        b.expect_no_event(("SHUTDOWN", "RESET"), stall)
    except BoardError:
        t_reset = b.events[-1][0]
        raise BoardError(
            f"{b.arch}: the board reset {t_reset - t_xoff:.1f} s into a {stall} s console stall "
            f"(XOFF; QMP {b.events[-1][1]['event']} {b.events[-1][1].get('data')}): custos stopped "
            f"petting the watchdog while the console took no output; console tail:\n{b.tail(12)}")
    n_xon = len(b.lines)
    t_xon = time.monotonic()
    b.send(XON)
    # The stall was real: nothing from custos reached the console after the first second.
    leaked = [ln for t, ln in b.lines[n_stall:n_xon] if t > t_xoff + 1 and CUSTOS_LOG.search(ln)]
    check(not leaked, f"XOFF did not stop the console: {len(leaked)} custos lines during the stall, "
          f"e.g. {leaked[0] if leaked else ''}", b)
    # custos's log resumes, with a note of what it could not write.
    end = time.monotonic() + 15
    found, first = None, None
    i = n_xon
    while time.monotonic() < end and not found:
        b.pump(0.2)
        for t, ln in b.lines[i:]:
            if first is None and CUSTOS_LOG.search(ln):
                first = t
            if DROPPED.search(ln) and re.search(r"\d", ln) and not SCRIPT_DROPPED.search(ln) \
                    and not KERNEL.search(printable(ln)):
                found = (t, ln)
                break
        i = len(b.lines)
    check(first is not None, "no custos log line within 15 s of XON", b)
    check(found, "custos's log resumed without a note of dropped lines (a line with `dropped` "
          "and a number) within 15 s of XON", b)
    b.expect_no_event(("SHUTDOWN", "RESET"), 1)
    check(custos_pid(b) == pid, f"custos is not the same process (pid {pid} before the stall)", b)
    starts = [ln for _, ln in b.lines if STARTING.search(ln)]
    check(len(starts) == 1, f"custos started {len(starts)} times", b)
    boots = [ln for _, ln in b.lines if "board: rcS: start" in ln]
    check(len(boots) == 1, f"the board booted {len(boots)} times", b)
    return {"stall_s": stall, "log_after_xon_s": round(first - t_xon, 2),
            "dropped_note": printable(found[1]).strip()[:120]}


# ---------------------------------------------------------------- wall-clock steps (identity)
# Real steps of the board's clock with `date -s`, a year each way, while web_server runs, is
# checked, crashes and custos itself is respawned: custos must log each step once, start no
# second copy, adopt no stranger, restart nothing that is healthy and miss no restart.
# (Only ever on the emulated boards: the host's clock is shared and never changed.)

YEAR = 365 * 24 * 3600


def httpd_count(b):
    # httpd is busybox run by start-stop-daemon ("/bin/busybox httpd -f ..."): count by command line.
    _, _, out = b.run("echo httpd-count=$(for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline 2>/dev/null"
                      " | grep -q '^[^ ]*busybox httpd -f' && echo $p; done | wc -l)")
    m = re.search(r"^httpd-count=(\d+)", out, re.M)
    check(m, f"no httpd count:\n{out}", b)
    return int(m.group(1))


def settle(b, secs):
    """Lets the board run for `secs` seconds, reading the console."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        b.pump(end - time.monotonic())


def step_clock(b, secs):
    """Steps the board's wall clock by `secs` (date -s @...) and waits for custos's one line."""
    way = "forward" if secs > 0 else "back"
    b.run(f"date -s @$(( $(date +%s) + ({secs}) )) >/dev/null")
    _, line, _ = b.wait_console(re.compile(rf"wall clock stepped {way} by \d+h"), 10)
    return line


def crash_and_restart(b):
    """kill -9 of web_server: custos sees the death with its cause and starts exactly one."""
    _, _, out = b.run("echo web-pid=$(cat /var/run/web_server.pid)")
    old = re.search(r"^web-pid=(\d+)", out, re.M).group(1)
    b.run("kill -9 $(cat /var/run/web_server.pid)")
    b.wait_console(re.compile(rf"web_server: died: .*\(pid {old}, up "), 10)
    _, _, m = b.wait_console(re.compile(r"web_server: running as pid (\d+) \(pidfile"), 15)
    check(m.group(1) != old, "restarted with the old pid", b)
    return m.group(1)


def respawn_custos(b, pid):
    """kill -9 of custos: init respawns it, and it adopts exactly the pinned web_server."""
    signal_custos(b, "9")
    b.wait_console(STARTING, 10, "custos started again by init")
    b.wait_console(f"web_server: found running as pid {pid} (pidfile", 10)


@test()
def t16_wall_clock_steps_change_nothing(b):
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(re.compile(r"web_server: (found )?running as pid \d+"), 10)
    b.shell()
    start_mark = b.mark()
    # custos's own child from here on (started after the script, the subreaper's descendant).
    pid = crash_and_restart(b)
    steps = 0
    for secs in (YEAR, -2 * YEAR, YEAR):
        step_clock(b, secs)
        steps += 1
        # Checked for a while across the step: healthy, so nothing happens.
        settle(b, 3)
        check(httpd_count(b) == 1, f"after a step of {secs} s: not exactly one httpd", b)
        # custos respawned with the pidfile written before the step: it adopts its pin.
        respawn_custos(b, pid)
        check(httpd_count(b) == 1, f"after a respawn past a step of {secs} s: not one httpd", b)
        pid = crash_and_restart(b)
        check(httpd_count(b) == 1, f"after a crash past a step of {secs} s: not one httpd", b)
    settle(b, 3)
    text = b.console_since(start_mark)
    for bad in ("held:", "pidfile is stale", "restarting:", "no identified process"):
        check(bad not in text, f"`{bad}` on the console across the clock steps", b)
    counted = re.search(r"check http \S+ failed \(\d+/\d+\)", text)
    check(not counted, f"a check failure counted across the clock steps: {counted and counted.group(0)}", b)
    starts = re.findall(r"web_server: starting \(attempt", text)
    check(len(starts) == 1 + steps, f"{len(starts)} starts for {1 + steps} crashes", b)
    check(len(re.findall(r"wall clock stepped", text)) == steps, "each step logged once", b)
    b.expect_no_event(("SHUTDOWN", "RESET"), 0.1)
    return {"steps": steps, "starts": len(starts)}


@test()
def t17_check_refuses_an_exe_identity_that_matches_init(b):
    booted(b)
    b.shell()
    b.run("printf '[[service]]\\nname = \"x\"\\nexe = \"/bin/busybox\"\\n"
          "start = [\"/bin/true\"]\\n' >/tmp/init-exe.toml")
    _, _, out = b.run("custos check -c /tmp/init-exe.toml; echo check-rc=$?")
    check("check-rc=1" in out and "could match PID 1" in out,
          f"`custos check` accepted an identity that matches init:\n{out}", b)
    return {}


# A service whose pidfile lives on FAT, whose mtimes go in 2 s steps, so a fresh pidfile is
# mostly dated before its process started: crash-looped, met afresh after `custos monitor`,
# and re-adopted by a respawned custos, it must always be exactly one daemon, never "stale".

FATD_PIDFILE = "/mnt/fat/fatd.pid"


def fatd_count(b):
    _, _, out = b.run("echo fatd-count=$(for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline 2>/dev/null"
                      " | grep -q '^[^ ]*busybox sleep 86401' && echo $p; done | wc -l)")
    m = re.search(r"^fatd-count=(\d+)", out, re.M)
    check(m, f"no fatd count:\n{out}", b)
    return int(m.group(1))


def fatd_pidfile(b):
    """(pid, mtime in whole seconds) of fatd's pidfile."""
    _, _, out = b.run(f"echo fatd-pidfile=$(cat {FATD_PIDFILE}) $(stat -c %Y {FATD_PIDFILE})")
    m = re.search(r"^fatd-pidfile=(\d+) (\d+)", out, re.M)
    check(m, f"no fatd pidfile:\n{out}", b)
    return m.group(1), int(m.group(2))


@test()
def t18_coarse_fat_pidfile_never_makes_a_second_copy(b):
    booted(b)
    b.cursor = (0, 0)
    b.wait_console("board: fat: /dev/vda (vfat) mounted at /mnt/fat", 1)
    b.wait_console(re.compile(r"fatd: running as pid \d+ \(pidfile"), 15)
    b.shell()
    start_mark = b.mark()
    mtimes = []
    crashes = 12
    for i in range(crashes):
        old, _ = fatd_pidfile(b)
        b.run(f"kill -9 {old}")
        b.wait_console(re.compile(rf"fatd: died: .*\(pid {old}, up "), 10)
        _, _, m = b.wait_console(re.compile(r"fatd: running as pid (\d+) \(pidfile"), 15)
        check(m.group(1) != old, "restarted with the old pid", b)
        check(fatd_count(b) == 1, f"crash {i + 1}: not exactly one fatd", b)
        mtimes.append(fatd_pidfile(b)[1])
    # Met for the first time: started behind custos's back while unmonitored.
    first_met = 4
    for i in range(first_met):
        b.run("custos unmonitor fatd")
        # Gone (reaped) before the new one starts, or the script finds it "already running".
        b.run(f"p=$(cat {FATD_PIDFILE}); kill -9 $p; i=0; while [ -e /proc/$p ] && [ $i -lt 50 ];"
              " do sleep 0.1; i=$((i + 1)); done; /etc/init.d/fatd start >/dev/null")
        pid, mtime = fatd_pidfile(b)
        mtimes.append(mtime)
        b.run("custos monitor fatd")
        b.wait_console(f"fatd: found running as pid {pid} (pidfile", 10)
        check(fatd_count(b) == 1, f"first meeting {i + 1}: not exactly one fatd", b)
    # A respawned custos adopts the very process it pinned.
    for i in range(2):
        pid, _ = fatd_pidfile(b)
        signal_custos(b, "9")
        b.wait_console(STARTING, 10, "custos started again by init")
        b.wait_console(f"fatd: found running as pid {pid} (pidfile", 10)
        check(fatd_count(b) == 1, f"custos respawn {i + 1}: not exactly one fatd", b)
    settle(b, 3)
    check(fatd_count(b) == 1, "not exactly one fatd at the end", b)
    # FAT keeps even seconds: the board's pidfiles really had coarse mtimes.
    check(all(t % 2 == 0 for t in mtimes), f"pidfile mtimes not in 2 s steps: {mtimes}", b)
    text = b.console_since(start_mark)
    for bad in ("held:", "stale", "no identified process", "given up:"):
        check(bad not in text, f"`{bad}` on the console", b)
    starts = re.findall(r"fatd: starting \(attempt", text)
    check(len(starts) == crashes, f"{len(starts)} starts for {crashes} crashes", b)
    b.expect_no_event(("SHUTDOWN", "RESET"), 0.1)
    return {"crashes": crashes, "first_met": first_met, "starts": len(starts)}
# ------------------------------------------------------------------------- orderly shutdown
# One boot group (state disk, no -no-reboot): `reboot`, then `poweroff`, at the console with
# web_server supervised. The board's inittab runs `custos shutdown`, then rcK (which stops
# web_server and waits 3 s), then `umount -a -r`; init's SIGTERM reaches custos only after them.
SHUTDOWN = "shutdown"
RCK_DONE = "board: rcK: done"


def shutdown_at_console(b, command):
    """`command` at the shell with web_server running: custos records the orderly end, rcK stops
    web_server and custos starts nothing. Returns (the console text of the shutdown, the QMP
    event that ended it)."""
    pid = service_pid(b, "web_server")
    mark = b.mark()
    b.send(command + "\n")
    _, ev = b.wait_event(("RESET", "SHUTDOWN"), 60)
    b.pump(0.5)
    text = b.console_since(mark)
    check("control: shutdown: this boot is ending in order" in text,
          f"`{command}`: custos did not get `custos shutdown`", b)
    check(RCK_DONE in text, f"`{command}`: rcK did not run to its end", b)
    rck = text[text.index("board: rcK: start"):text.index(RCK_DONE)] if "board: rcK: start" in text else ""
    check(re.search(r"web_server: died: .*pid " + pid, rck),
          f"`{command}`: custos did not log the death of web_server (pid {pid}) while rcK ran:\n{rck}", b)
    check("web_server: not starting it again: the system is shutting down" in rck,
          f"`{command}`: custos did not say it starts nothing:\n{rck}", b)
    check(not re.search(r"web_server: starting|board: rcK: web_server is running again", text),
          f"`{command}`: web_server was started again during the shutdown:\n{text}", b)
    m = re.search(r"^board: rcK: boots: (.*)$", text, re.M)
    check(m and "\torderly\t" in m.group(1),
          f"`{command}`: this boot is not recorded as orderly in /var/lib/custos/boots before the unmount: "
          f"{m.group(1) if m else '(no line)'}", b)
    return text, ev


def shutdown_booted(b):
    """The shell of a booted board with the state disk: this boot's, or the one the previous
    test of the group left."""
    if getattr(b, "shutdown_ready", False):
        return
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(STATE_MOUNTED, 1, "the state disk mounted by rcS")
    b.shell()
    b.shutdown_ready = True


@test(boot=SHUTDOWN)
def t20a_reboot_in_order_restarts_nothing(b):
    shutdown_booted(b)
    b.shutdown_ready = False
    _, ev = shutdown_at_console(b, "reboot")
    check(ev["event"] == "RESET" and ev["data"].get("reason") == RESET_REASON,
          f"`reboot`: expected RESET with reason {RESET_REASON} (init's reboot), got {ev}", b)
    mark = b.cursor = b.mark()
    b.wait_console(re.compile(r"the previous boot \([0-9a-f-]+\) ended in order"), BOOT,
                   "the next boot reads the previous one as ended in order")
    shell_after(b, mark)
    b.shutdown_ready = True
    return {}


@test(boot=SHUTDOWN)
def t20b_poweroff_in_order_restarts_nothing(b):
    shutdown_booted(b)
    b.shutdown_ready = False
    _, ev = shutdown_at_console(b, "poweroff")
    # A power-off, not a reset by the watchdog custos left armed (magic_close = false).
    check(ev["event"] == "SHUTDOWN" and ev["data"].get("reason") == "guest-shutdown",
          f"`poweroff`: expected SHUTDOWN with reason guest-shutdown, got {ev}", b)
    return {}


# A decoy for the fault-matrix subset: a busybox sh process that records every catchable signal
# it gets (one name a line in its file). Not SIGCHLD: its own `sleep` children send that.
DECOY_SH = [
    "#!/bin/sh",
    "log=$1",
    "for s in HUP INT QUIT ILL TRAP ABRT BUS FPE USR1 SEGV USR2 PIPE ALRM TERM CONT TSTP TTIN "
    "TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS; do trap \"echo $s >>$log\" $s; done",
    ": >$log",
    "while :; do sleep 1; done",
]

# Hostile pidfiles (shell that writes /tmp/mx/NAME.pid; $D is a decoy's PID, $C custos's) and
# whether custos holds the service (starts nothing) rather than keeps trying to start it. The
# future date stays before 2038: the board's busybox has a 32-bit time_t.
HOSTILE = [
    ("garbage", "echo garbage >/tmp/mx/garbage.pid", False),
    ("plus", "echo +$D >/tmp/mx/plus.pid", False),
    ("spaces", "echo \" $D \" >/tmp/mx/spaces.pid", False),
    ("twolines", "printf '%s\\n%s\\n' $D $D >/tmp/mx/twolines.pid", False),
    ("fifo", "mkfifo /tmp/mx/fifo.pid", False),
    ("watchdog", "ln -s /dev/watchdog /tmp/mx/watchdog.pid", False),
    ("directory", "mkdir /tmp/mx/directory.pid", False),
    ("init", "echo 1 >/tmp/mx/init.pid", False),
    ("custos", "echo $C >/tmp/mx/custos.pid", False),
    ("future", "echo $D >/tmp/mx/future.pid && touch -d '2037-01-01 00:00:00' /tmp/mx/future.pid", True),
]


@test()
def t21_hostile_pidfiles_and_decoys(b):
    """A subset of the fault matrix (tests/matrix.rs) on the board: services whose pidfiles
    are hostile (garbage, a plus sign, spaces, two lines, a FIFO, a symlink to the armed
    /dev/watchdog, a directory, init, custos itself, a future mtime), each naming or garbling a
    decoy's PID, and each with a check that always fails (so anything pinned would be
    signalled). Added by a reload. custos must pin nothing, signal no decoy, keep trying (or
    hold the future one), keep petting (no reset) and stay the same process."""
    booted(b)
    b.shell()
    quoted = " ".join("'" + line.replace("'", "'\\''") + "'" for line in DECOY_SH)
    b.run(f"mkdir -p /tmp/mx && printf '%s\\n' {quoted} >/tmp/mx/decoy.sh")
    _, _, out = b.run(
        "for i in 1 2 3 4; do sh /tmp/mx/decoy.sh /tmp/mx/d$i.sig & echo decoy-pid=$!; done; sleep 1; "
        "echo decoys=$(for f in /tmp/mx/d*.sig; do [ -e $f ] && echo -n x; done)")
    pids = re.findall(r"^decoy-pid=(\d+)", out, re.M)
    check("decoys=xxxx" in out and len(pids) == 4, f"decoys did not start:\n{out}", b)
    c = custos_pid(b)
    check(c.isdigit(), "no custos PID", b)
    service = ("[[service]]\\nname = \"mx-%s\"\\npidfile = \"/tmp/mx/%s.pid\"\\nstart = [\"/bin/true\"]\\n"
               "start_timeout = \"300ms\"\\n[service.restart]\\nbackoff = \"200ms\"\\nbackoff_max = \"1s\"\\n"
               "[[service.check]]\\nkind = \"program\"\\nargv = [\"/bin/false\"]\\nevery = \"1s\"\\n"
               "grace = \"1ms\"\\n")
    for i, (name, make, _) in enumerate(HOSTILE):
        d = pids[i % len(pids)]
        _, _, out = b.run(f"D={d} C={c}; {make} && printf '{service}' {name} {name} >>/etc/custos.toml"
                          f" && echo made-$((6*7))-{name}")
        check(f"made-42-{name}" in out, f"could not lay out the {name} pidfile:\n{out}", b)
    mark = b.mark()
    b.run("custos reload", timeout=20)
    b.expect_no_event(("SHUTDOWN", "RESET"), 8)
    problems = []
    logged = lines_since(b, mark, re.compile(r"mx-\S+: "))
    for name, _, held in HOSTILE:
        mine = [ln for ln in logged if f"mx-{name}: " in ln]
        if held:
            if not any("held:" in ln for ln in mine):
                problems.append(f"mx-{name}: not held")
            if any("starting (" in ln for ln in mine):
                problems.append(f"mx-{name}: started while held")
        elif not any("starting (attempt 2" in ln for ln in mine):
            problems.append(f"mx-{name}: no second start attempt")
        for bad in ("sending SIG", "running as pid"):
            problems += [f"mx-{name}: `{printable(ln).strip()}`" for ln in mine if bad in ln]
    _, _, out = b.run("cat /tmp/mx/d*.sig; for p in " + " ".join(pids) +
                      "; do kill -0 $p 2>/dev/null || echo gone=$p; done; echo sig-end")
    got = out.split("sig-end")[0]
    if re.search(r"^[A-Z]{2,}$", got, re.M):
        problems.append("a decoy received signal(s): " + " ".join(re.findall(r"^[A-Z]{2,}$", got, re.M)))
    problems += [f"decoy {p} is gone" for p in re.findall(r"gone=(\d+)", got)]
    if custos_pid(b) != c:
        problems.append(f"custos is not the same process (was {c}, now {custos_pid(b) or 'none'})")
    check(not problems, "hostile pidfiles on the board: " + "; ".join(problems), b)
    return {"services": len(HOSTILE), "decoys": len(pids)}



@test()
def t23_a_dead_daemon_init_has_not_reaped_yet_is_not_running(b):
    """After custos is respawned, the daemon it adopts is init's child. BusyBox init sleeps 1 s
    after each child it reaps, so a daemon that dies in that second stays a zombie that long, and
    an init script's `kill -0 $(cat pidfile)` takes the zombie for a running daemon ("already
    running"). custos must not run the start script until the dead process is gone, so the
    restart starts exactly one daemon, at once, and no start attempt fails."""
    booted(b)
    b.cursor = (0, 0)
    b.wait_console(re.compile(r"web_server: (found )?running as pid \d+"), 10)
    b.shell()
    _, _, out = b.run("echo web-pid=$(cat /var/run/web_server.pid)")
    pid = re.search(r"^web-pid=(\d+)", out, re.M).group(1)
    respawn_custos(b, pid)
    mark = b.mark()
    # An orphan that exits at once: init reaps it, then sleeps 1 s; the daemon dies in that
    # second and stays an unreaped zombie of init past custos's 500 ms backoff.
    # A second of quiet first, so that init is waiting (not sleeping) when the orphan exits.
    b.run("P=$(cat /var/run/web_server.pid); sleep 1.5; sh -c 'sleep 0.2 & exit 0'; sleep 0.27; kill -9 $P")
    b.wait_console(re.compile(rf"web_server: died: .*\(pid {pid}, up "), 10)
    _, _, m = b.wait_console(re.compile(r"web_server: running as pid (\d+) \(pidfile"), 15)
    check(m.group(1) != pid, "restarted with the old pid", b)
    settle(b, 2)
    text = b.console_since(mark)
    for bad in ("already running", "no identified process", "starting (attempt 3"):
        check(bad not in text, f"`{bad}` after a daemon died as init's unreaped child", b)
    check(httpd_count(b) == 1, "not exactly one httpd", b)
    return {}

VARIANTS = {
    "t3b_custos_sigkill_once_resets": dict(inittab="once"),
    "t5a_magic_close_sigterm_no_reset": dict(inittab="once", config="magic-close"),
    "t5b_no_magic_close_sigterm_resets": dict(inittab="once"),
    "t6_i6300esb_reset_reported_at_next_boot": dict(inittab="once", i6300esb=True, reboot=True),
    "t8_record_survives_a_reset": dict(inittab="once", i6300esb=True, reboot=True, disk=True),
    "t9_boot_loop_guard": dict(inittab="once", config="boot-loop", i6300esb=True, reboot=True, disk=True),
    "t14_boot_loop_guard_softdog": dict(inittab="once", config="boot-loop", reboot=True, disk=True),
    "t22_boot_health_gate_runs_once_per_boot": dict(config="gate", reboot=True, disk=True),
    CHILDREN: dict(inittab="children", config="children"),
    "t13_console_stall_no_reset": dict(config="stall"),
    "t18_coarse_fat_pidfile_never_makes_a_second_copy": dict(config="fat", disk="fat-disk.img"),
    SHUTDOWN: dict(i6300esb=False, reboot=True, disk=True),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board-dir", default=DEFAULT_BOARD_DIR)
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    ap.add_argument("-v", action="store_true", help="print console lines as they arrive")
    ap.add_argument("archs", nargs="*", default=["armv7", "aarch64"])
    args = ap.parse_args()
    logs = os.path.join(args.board_dir, "logs")
    results = []
    t_all = time.monotonic()
    shared = None  # (arch, boot group, Board, its log path): a boot the next test may reuse
    for arch in args.archs:
        for name, archs, fn, boot in TESTS:
            if arch not in archs or (args.k and not any(k in name for k in args.k)):
                continue
            label = f"{arch}/{name}"
            print(f"board test {label} ...", flush=True)
            t0 = time.monotonic()
            if shared and shared[:2] != (arch, boot):
                shared[2].__exit__(None, None, None)
                shared = None
            if shared:
                board, log_path = shared[2], shared[3]
            else:
                log_path = os.path.join(logs, f"{arch}-{name}.log")
                board = Board(arch, args.board_dir, log_path=log_path,
                              echo=echo_to() if args.v else None, **VARIANTS.get(boot or name, {}))
            ok = False
            try:
                if board.proc is None:
                    board.start()
                info = fn(board) or {}
                ok = True
                took = time.monotonic() - t0
                detail = ", ".join(f"{k}={v}" for k, v in info.items())
                print(f"ok    {label} ({took:.1f} s){': ' + detail if detail else ''}", flush=True)
                results.append((label, True, took))
            except Exception as e:  # noqa: BLE001 - report every failure and go on
                took = time.monotonic() - t0
                print(f"FAIL  {label} ({took:.1f} s): {e}", flush=True)
                if not isinstance(e, BoardError):
                    traceback.print_exc()
                print(f"      console log: {os.path.relpath(log_path)}", flush=True)
                results.append((label, False, took))
            finally:
                if boot and ok:
                    shared = (arch, boot, board, log_path)
                else:
                    shared = None
                    board.__exit__(None, None, None)
    if shared:
        shared[2].__exit__(None, None, None)
    total = time.monotonic() - t_all
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"board tests: {len(results)} run in {total:.1f} s")
    for label, ok, took in results:
        if not ok:
            print(f"  failed: {label}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and results else 1)


if __name__ == "__main__":
    main()

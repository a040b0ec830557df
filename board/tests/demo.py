#!/usr/bin/env python3
"""Narrated board demo (run through `scripts/board demo [armv7|aarch64]`).

Boots the board with custos started from inittab by `::once:` (so that when custos itself
dies, nothing starts it again and the hardware watchdog must act), then:
  1. custos starts from inittab and pets the watchdog;
  2. the demo web service is killed (twice) and custos restarts it, logging the cause;
  3. custos itself is killed;
  4. the watchdog resets the board within its timeout (QMP: SHUTDOWN, reason guest-reset).
The board's console is shown as it runs (lines prefixed with "  | ").
"""

import argparse
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boardlib import DEFAULT_BOARD_DIR, Board, BoardError, echo_to, watchdog_settings  # noqa: E402

BOLD = "\033[1m" if sys.stdout.isatty() else ""
PLAIN = "\033[0m" if sys.stdout.isatty() else ""


def say(text):
    print(f"\n{BOLD}demo: {text}{PLAIN}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--board-dir", default=DEFAULT_BOARD_DIR)
    ap.add_argument("arch", nargs="?", default="armv7")
    args = ap.parse_args()
    timeout, pet = watchdog_settings()

    b = Board(args.arch, args.board_dir, inittab="once", echo=echo_to(hide_markers=True),
              log_path=os.path.join(args.board_dir, "logs", f"{args.arch}-demo.log"))
    say(f"booting the emulated {args.arch} board (Debian kernel, busybox init, custos from "
        f"/etc/inittab with ::once:; watchdog timeout {timeout:g} s, petted every {pet:g} s)")
    try:
        with b:
            b.wait_console("board: rcS: done", 120)
            t_exec, _, _ = b.wait_console(
                re.compile(r"custos \S+ starting with /etc/custos.toml"), 60)
            t_pet, _, _ = b.wait_console("watchdog: first keepalive", 15)
            say(f"custos was started by init and petted /dev/watchdog "
                f"{(t_pet - t_exec) * 1000:.0f} ms after its first log line "
                f"({t_pet - b.t0:.1f} s after power-on)")

            b.shell()
            say("the web service was started by rcS, before custos: kill -9 it")
            b.run("kill -9 $(cat /var/run/web_server.pid)")
            b.wait_console("web_server: died:", 10)
            b.wait_console(re.compile(r"web_server: running as pid \d+"), 15)
            say("custos saw the death at once (pidfd) but could not know the cause: it did not "
                "start that process. It restarted it through /etc/init.d/web_server, so the "
                "new daemon is its child (child subreaper). Kill it again:")
            b.run("kill -9 $(cat /var/run/web_server.pid)")
            _, line, _ = b.wait_console("web_server: died: killed by SIGKILL", 10)
            b.wait_console(re.compile(r"web_server: running as pid \d+"), 15)
            b.run("wget -q -O - http://127.0.0.1/watchdog_page.html")
            say("this time the log has the cause: 'killed by SIGKILL', and the page is served "
                "again")

            say(f"now kill custos itself (kill -9). inittab says ::once:, so nobody starts it "
                f"again; nobody pets the watchdog; the board must reset within {timeout:g} s")
            _, done, out = b.run(
                "kill -9 $(pidof custos); echo killed at uptime $(cut -d' ' -f1 /proc/uptime)")
            t, ev = b.wait_event(("SHUTDOWN", "RESET"), timeout + 10)
            reason = ev.get("data", {}).get("reason")
            if ev["event"] == "SHUTDOWN" and reason == "guest-reset":
                say(f"the watchdog reset the board {t - done:.2f} s after custos was killed "
                    f"(QMP event SHUTDOWN, reason guest-reset; QEMU runs with -no-reboot)")
            else:
                say(f"unexpected QMP event: {ev}")
                return 1
    except BoardError as e:
        print(f"demo: FAILED: {e}", file=sys.stderr)
        return 1
    say("done: custos started from inittab, pets the watchdog, restarts services with their "
        "cause, and if custos itself dies the board resets")
    return 0


if __name__ == "__main__":
    sys.exit(main())

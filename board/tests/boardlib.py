"""Drive the emulated board: QEMU with the serial console on pipes and QMP on a UNIX socket.

Standard library only. Every wait is bounded; the console and QMP are read by one select()
loop that timestamps each console line and each QMP event with the host's monotonic clock.
QEMU's exit code is never looked at: resets are told by QMP events and their reasons.
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BOARD_DIR = os.path.join(ROOT, "target", "board")

MACHINES = {
    "armv7": [
        "qemu-system-arm", "-M", "virt,highmem=off", "-cpu", "cortex-a15",
        "-m", "256", "-smp", "1", "-nic", "none",
    ],
    "aarch64": [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53",
        "-m", "256", "-smp", "1", "-nic", "none",
    ],
}


def watchdog_settings(config="custos.toml"):
    """(timeout, pet_every) in seconds from a board config in board/rootfs/etc."""
    path = os.path.join(ROOT, "board", "rootfs", "etc", config)
    if config != "custos.toml":
        path = os.path.join(ROOT, "board", "rootfs", "etc", "board", config)
    with open(path, "rb") as f:
        wd = tomllib.load(f)["watchdog"]

    def secs(s):
        m = re.fullmatch(r"(\d+)(ms|s|m|h)", s)
        n, u = int(m.group(1)), m.group(2)
        return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u]

    timeout = secs(wd["timeout"])
    pet = secs(wd["pet_every"]) if "pet_every" in wd else timeout / 3
    return timeout, pet


class BoardError(AssertionError):
    pass


class Board:
    """One QEMU run of the board image for `arch`.

    inittab: None or "once" (board.inittab=once); config: None or "magic-close"
    (board.config=...); i6300esb: add the PCI watchdog (aarch64); reboot: let a reset reboot
    the guest (a RESET event) instead of ending QEMU (a SHUTDOWN event, reason guest-reset);
    disk: attach a fresh copy of the empty state disk (board_dir/state-disk.img, ext4, made by
    `scripts/board build`) as a virtio disk, which rcS mounts at /var/lib/custos; the copy
    lives as long as this Board, so it survives the guest's resets. disk="fat-disk.img" attaches
    a copy of that image instead (FAT, made by `scripts/board build`), which rcS mounts at
    /mnt/fat, leaving /var/lib/custos in RAM.
    """

    def __init__(self, arch, board_dir=DEFAULT_BOARD_DIR, *, inittab=None, config=None,
                 i6300esb=False, reboot=False, disk=False, quiet=True, log_path=None, echo=None):
        self.arch = arch
        self.dir = os.path.join(board_dir, arch)
        self.inittab = inittab
        self.config = config
        self.i6300esb = i6300esb
        self.reboot = reboot
        image = disk if isinstance(disk, str) else "state-disk.img"
        self.disk_template = os.path.join(board_dir, image) if disk else None
        self.quiet = quiet
        self.log_path = log_path
        self.echo = echo  # callable(t, line) for live output, or None
        self.proc = None
        self.qmp = None
        self.qmp_buf = b""
        self.lines = []  # [(t, text)] complete console lines
        self.partial = ""  # the console line being written
        self.partial_t = None
        self.cursor = (0, 0)  # (line index, char offset): where the next wait_console looks
        self.events = []  # [(t, event dict)]
        self.event_cursor = 0
        self.replies = []
        self.console_eof = False
        self.t0 = None
        self.cmd_no = 0
        self.log = None

    # ------------------------------------------------------------------ start and stop
    def command(self):
        append = ["console=ttyAMA0", "panic=1"]
        if self.quiet:
            append.append("quiet")
        if self.inittab:
            append.append(f"board.inittab={self.inittab}")
        if self.config:
            append.append(f"board.config={self.config}")
        cmd = list(MACHINES[self.arch])
        if self.i6300esb:
            cmd += ["-device", "i6300esb", "-watchdog-action", "reset"]
        if not self.reboot:
            cmd.append("-no-reboot")
        if self.disk_template:
            cmd += ["-drive", f"file={self.disk_path},if=virtio,format=raw"]
        cmd += [
            "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-kernel", os.path.join(self.dir, "vmlinuz"),
            "-initrd", os.path.join(self.dir, "initramfs.cpio.gz"),
            "-append", " ".join(append),
            # wait=on: QEMU starts the guest only once we are connected, so no event is missed.
            "-qmp", f"unix:{self.qmp_path},server=on,wait=on",
        ]
        return cmd

    @property
    def qmp_path(self):
        return os.path.join(self.dir, f"qmp-{os.getpid()}.sock")

    @property
    def disk_path(self):
        return os.path.join(self.dir, f"disk-{os.getpid()}.img")

    def start(self):
        for f in ("vmlinuz", "initramfs.cpio.gz"):
            if not os.path.exists(os.path.join(self.dir, f)):
                raise BoardError(f"no {self.dir}/{f}: run scripts/board build {self.arch}")
        if self.disk_template:
            if not os.path.exists(self.disk_template):
                raise BoardError(f"no {self.disk_template}: run scripts/board build {self.arch}")
            shutil.copyfile(self.disk_template, self.disk_path)
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        if self.log_path:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
            self.log = open(self.log_path, "w", encoding="utf-8")
            self.log.write("# " + " ".join(self.command()) + "\n")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._drain_console(0.2)
                    raise BoardError("QEMU did not open its QMP socket:\n" + self.tail())
                time.sleep(0.02)
        s.setblocking(False)
        self.qmp = s
        self._wait_reply(10)  # the greeting
        self.qmp_command("qmp_capabilities")
        return self

    def stop(self):
        """Ends QEMU (QMP quit, then SIGKILL) and closes everything. Never raises."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and self.qmp is not None:
                self._send_qmp({"execute": "quit"})
                end = time.monotonic() + 5
                while self.proc.poll() is None and time.monotonic() < end:
                    self.pump(0.05)
        except (OSError, BoardError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.qmp, self.proc.stdin, self.proc.stdout, self.log):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self.qmp = None
        for f in (self.qmp_path, self.disk_path if self.disk_template else None):
            try:
                if f:
                    os.unlink(f)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.partial and self.log:
            self.log.write(f"{self.partial_t - self.t0:8.3f} {self.partial}\n")
        self.stop()
        return False

    def now(self):
        return time.monotonic() - self.t0

    # ------------------------------------------------------------------ the select loop
    def pump(self, timeout):
        """Reads what the console and QMP have within `timeout` seconds."""
        fds = []
        if not self.console_eof:
            fds.append(self.proc.stdout)
        if self.qmp is not None:
            fds.append(self.qmp)
        if not fds:
            time.sleep(max(0, timeout))
            return
        r, _, _ = select.select(fds, [], [], max(0, timeout))
        t = time.monotonic()
        if self.proc.stdout in r:
            try:
                data = self.proc.stdout.read(65536)
            except BlockingIOError:
                data = None
            if data == b"":
                self.console_eof = True
            elif data:
                self._console(t, data.decode("utf-8", "replace"))
        if self.qmp in r:
            try:
                data = self.qmp.recv(65536)
            except BlockingIOError:
                data = None
            if data == b"":
                self.qmp.close()
                self.qmp = None
            elif data:
                self.qmp_buf += data
                while b"\n" in self.qmp_buf:
                    line, self.qmp_buf = self.qmp_buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    msg = json.loads(line)
                    if "event" in msg:
                        self.events.append((t, msg))
                        if self.log:
                            self.log.write(f"{t - self.t0:8.3f} QMP {json.dumps(msg)}\n")
                        if self.echo:
                            self.echo(t, f"[QMP event {msg['event']} {json.dumps(msg.get('data', {}))}]")
                    else:
                        self.replies.append(msg)

    def _console(self, t, text):
        text = text.replace("\r", "")
        if not self.partial:
            self.partial_t = t
        self.partial += text
        while "\n" in self.partial:
            line, self.partial = self.partial.split("\n", 1)
            self.lines.append((self.partial_t, line))
            if self.log:
                self.log.write(f"{self.partial_t - self.t0:8.3f} {line}\n")
            if self.echo:
                self.echo(self.partial_t, line)
            self.partial_t = t

    def _drain_console(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end and not self.console_eof:
            self.pump(end - time.monotonic())

    def tail(self, n=40):
        out = [f"{t - self.t0:8.3f} {line}" for t, line in self.lines[-n:]]
        if self.partial:
            out.append(f"{'':8} {self.partial}")
        return "\n".join(out)

    # ------------------------------------------------------------------ the console
    def _search(self, rx, partial):
        """Finds rx after the cursor in the console text (in the line still being written
        too, if `partial`); returns (t, line, match) or None."""
        i, off = self.cursor
        while i <= len(self.lines) - (0 if partial else 1):
            if i < len(self.lines):
                t, line = self.lines[i]
            else:
                t, line = self.partial_t, self.partial
            m = rx.search(line, off)
            if m:
                self.cursor = (i, m.end())
                return t, line, m
            i, off = i + 1, 0
        return None

    def wait_console(self, pattern, timeout, what=None, partial=False):
        """Waits up to `timeout` s for `pattern` (a substring, or a compiled regex) in a
        console line after the cursor; returns (host time, line, match) and moves the cursor
        past the match. `partial`: look in the line still being written too (for prompts).
        Raises BoardError."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        end = time.monotonic() + timeout
        while True:
            found = self._search(rx, partial)
            if found:
                return found
            left = end - time.monotonic()
            if left <= 0 or (self.console_eof and self.proc.poll() is not None):
                raise BoardError(
                    f"{self.arch}: no {what or repr(rx.pattern)} on the console within "
                    f"{timeout} s (at {self.now():.1f} s); console tail:\n{self.tail()}")
            self.pump(min(left, 0.5))

    def mark(self):
        """A cursor at the end of what has been read (for wait_console after it)."""
        return (len(self.lines), len(self.partial))

    def console_since(self, mark):
        i, off = mark
        out = [line[off:] if j == i else line for j, (_, line) in enumerate(self.lines) if j >= i]
        if self.partial and i <= len(self.lines):
            out.append(self.partial[off:] if i == len(self.lines) else self.partial)
        return "\n".join(out)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def shell(self, timeout=30):
        """Gets the root shell of `ttyAMA0::askfirst:-/bin/sh` (presses Enter)."""
        saved = self.cursor
        self.cursor = (0, 0)
        self.wait_console("Please press Enter to activate this console.", timeout, partial=True)
        self.cursor = saved
        self.send("\n")
        # A wide terminal: ash's line editor wraps typed lines at 80 columns otherwise.
        return self.run("stty cols 1000 rows 50", timeout=15)

    def run(self, command, timeout=15):
        """Types `command` on the console shell and waits until it has run. Returns
        (host time the line was sent, host time it finished, its output)."""
        self.cmd_no += 1
        n = self.cmd_no
        # The marker is computed by the shell, so the echoed input line cannot match it.
        marker = re.compile(rf"board-test-42-{n}-done")
        start_mark = self.mark()
        sent = time.monotonic()
        self.send(f"{command}; echo board-test-$((6*7))-{n}-done\n")
        saved = self.cursor
        self.cursor = start_mark
        t, _, _ = self.wait_console(marker, timeout, f"end of `{command}`")
        output = self.console_since(start_mark)
        self.cursor = saved
        return sent, t, output

    # ------------------------------------------------------------------ QMP
    def _send_qmp(self, msg):
        self.qmp.setblocking(True)
        try:
            self.qmp.sendall(json.dumps(msg).encode() + b"\r\n")
        finally:
            self.qmp.setblocking(False)

    def _wait_reply(self, timeout):
        end = time.monotonic() + timeout
        while not self.replies:
            left = end - time.monotonic()
            if left <= 0 or self.qmp is None:
                raise BoardError(f"{self.arch}: no QMP reply within {timeout} s")
            self.pump(min(left, 0.5))
        return self.replies.pop(0)

    def qmp_command(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self._send_qmp(msg)
        reply = self._wait_reply(10)
        if "error" in reply:
            raise BoardError(f"QMP {name}: {reply['error']}")
        return reply.get("return")

    def wait_event(self, names, timeout):
        """Waits up to `timeout` s for a QMP event named in `names` after the event cursor;
        returns (host time, event)."""
        if isinstance(names, str):
            names = (names,)
        end = time.monotonic() + timeout
        while True:
            while self.event_cursor < len(self.events):
                t, ev = self.events[self.event_cursor]
                self.event_cursor += 1
                if ev["event"] in names:
                    return t, ev
            left = end - time.monotonic()
            if left <= 0 or (self.qmp is None and self.event_cursor >= len(self.events)):
                seen = [e["event"] for _, e in self.events]
                raise BoardError(
                    f"{self.arch}: no QMP {'/'.join(names)} event within {timeout} s "
                    f"(events seen: {seen}); console tail:\n{self.tail()}")
            self.pump(min(left, 0.5))

    def expect_no_event(self, names, secs):
        """Reads for `secs` seconds and fails if a QMP event named in `names` arrives."""
        end = time.monotonic() + secs
        while True:
            while self.event_cursor < len(self.events):
                t, ev = self.events[self.event_cursor]
                self.event_cursor += 1
                if ev["event"] in names:
                    raise BoardError(
                        f"{self.arch}: unexpected QMP event {json.dumps(ev)}; console tail:\n"
                        + self.tail())
            left = end - time.monotonic()
            if left <= 0:
                return
            self.pump(min(left, 0.5))

    def events_named(self, name):
        return [(t, e) for t, e in self.events if e["event"] == name]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TYPED_MARKER = re.compile(r"; echo board-test-\$\(\(6\*7\)\)-\d+-done")
MARKER = re.compile(r"board-test-42-\d+-done")


def printable(line, hide_markers=False):
    """The console line without terminal escapes (ash asks for the cursor position with
    ESC[6n, which a real terminal would answer) and, if `hide_markers`, without the markers
    Board.run adds and QEMU's note about the QMP socket (None for a line to leave out)."""
    line = ANSI.sub("", line)
    if hide_markers:
        if "QEMU waiting for connection" in line:
            return None
        line = TYPED_MARKER.sub("", line)
        if MARKER.fullmatch(line.strip()):
            return None
        line = MARKER.sub("", line)
    return line


def echo_to(stream=sys.stdout, prefix="  | ", hide_markers=False):
    """An `echo` callback that prints console lines as they arrive."""

    def echo(t, line):
        line = printable(line, hide_markers)
        if line is not None:
            stream.write(prefix + line + "\n")
            stream.flush()

    return echo

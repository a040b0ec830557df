#!/usr/bin/env python3
"""The flash-write budget: bytes and fsyncs custos writes to its state_dir, per hour.

Run through scripts/bench (which builds custos), or directly:

    python3 bench/writes.py [--quick] [--custos PATH] [--keep]

Three custos instances run side by side under strace, each with its own state_dir:

  crash   one service that dies after 1 s of running and is restarted at once (stable_after
          500ms): a death and a restart every second, for as long as the phase lasts;
  idle    one service that keeps running;
  reload  the idle service, and `custos reload` through the control socket as fast as it answers
          (what a control_group member can do in a loop).

Counting is black-box and exact at the syscall level: `strace -f -y` records every write, writev,
pwrite64, pwritev, ftruncate, fsync, fdatasync, sync_file_range and syncfs custos (all its threads)
makes, with the path behind each file descriptor; the bytes are the return values of the writes
to files inside state_dir, the fsyncs the sync calls on files in it or on the directory itself.
Page-cache writeback of files that are never synced, file-system metadata and the flash
translation layer's own amplification are not seen: they depend on the file system, not on custos.
Each phase first runs a 60 s warm-up (custos's start and first writes; the crash and reload
loops run from the start, so the budget's saved-up burst is spent there), then counts during its
window; the figures are the window's counts scaled to one hour. The boots file is written once
when the boot becomes good (good_after, 10 minutes): a window that holds that moment counts it.

Goals (README, "The flash-write budget"): crash loop <= 64 KiB/h and <= 60 fsyncs/h; idle
<= 1 KiB/h; reload in a loop within the crash-loop goals.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
GOALS = {"crash": (64 * 1024, 60), "reload": (64 * 1024, 60), "idle": (1024, None)}

SERVICE = r"""#!/bin/sh
# A double-forking init.d-style service; with DIR/dies it exits after 1 s of running.
dir=$(dirname "$0")
case "$1" in
start)
    rm -f "$dir/svc.pid"
    ( setsid /bin/sh "$0" daemon </dev/null >/dev/null 2>&1 & )
    i=0
    while [ ! -s "$dir/svc.pid" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$dir/svc.pid" ]
    ;;
daemon)
    echo $$ > "$dir/svc.pid.tmp" && mv "$dir/svc.pid.tmp" "$dir/svc.pid"
    if [ -f "$dir/dies" ]; then exec sleep 1; fi
    exec sleep 100000
    ;;
stop)
    exit 0
    ;;
esac
"""

TRACED = "write,writev,pwrite64,pwritev,pwritev2,ftruncate,fsync,fdatasync,sync_file_range,syncfs"
# "1234 1733050000.123456 write(5</tmp/x/state/record.tmp>, "..."..., 200) = 200"
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(\w+)\((\d+)<([^>]*)>.*\)\s+=\s+(-?\d+)")


def config(root, name):
    d = os.path.join(root, name)
    return f"""[supervisor]
interval = "1s"
state_dir = "{d}/state"
control_socket = "{d}/custos.sock"

[[service]]
name = "svc"
pidfile = "{d}/svc/svc.pid"
start = ["/bin/sh", "{d}/svc/svc", "start"]
stop = ["/bin/sh", "{d}/svc/svc", "stop"]
start_timeout = "5s"
stop_timeout = "1s"

[service.restart]
stable_after = "500ms"
"""


class Phase:
    def __init__(self, root, name, custos, warmup, window):
        self.name, self.custos, self.warmup, self.window = name, custos, warmup, window
        self.dir = os.path.join(root, name)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(os.path.join(self.dir, "svc"))
        os.makedirs(self.state)
        with open(os.path.join(self.dir, "svc", "svc"), "w") as f:
            f.write(SERVICE)
        if name == "crash":
            open(os.path.join(self.dir, "svc", "dies"), "w").close()
        self.cfg = os.path.join(self.dir, "custos.toml")
        with open(self.cfg, "w") as f:
            f.write(config(root, name))
        self.trace = os.path.join(self.dir, "trace")
        self.result = None

    def run(self):
        log = open(os.path.join(self.dir, "custos.log"), "w")
        p = subprocess.Popen(["strace", "-f", "-qq", "-y", "-ttt", "-s", "0", "-e", f"trace={TRACED}",
                              "-o", self.trace, self.custos, "run", "-c", self.cfg],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        reloads = 0
        try:
            # The reload loop runs from the start, like the crash loop: the warm-up spends the
            # budget's saved-up burst, and the window counts the steady state.
            t0 = None
            begin = time.monotonic()
            end = begin + self.warmup + self.window
            while time.monotonic() < end:
                if t0 is None and time.monotonic() >= begin + self.warmup:
                    t0 = time.time()
                if self.name == "reload":
                    r = subprocess.run([self.custos, "--socket", os.path.join(self.dir, "custos.sock"),
                                        "reload"], capture_output=True, timeout=10)
                    reloads += r.returncode == 0
                    time.sleep(0.05)
                else:
                    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            t1 = time.time()
            t0 = t0 or t1
        finally:
            # strace passes the SIGTERM on to custos, which stops the service and exits.
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            log.close()
            self.kill_daemon()
        self.result = self.count(t0, t1)
        self.result["reloads"] = reloads
        deaths = 0
        with open(os.path.join(self.dir, "custos.log"), errors="replace") as f:
            deaths = sum(" died: " in line for line in f)
        self.result["deaths_in_log"] = deaths

    def kill_daemon(self):
        """The service outlives custos by design: its daemon (the sleep the pidfile names) is
        ended here."""
        try:
            with open(os.path.join(self.dir, "svc", "svc.pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[0] == b"sleep":
                    os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def count(self, t0, t1):
        nbytes = fsyncs = writes = 0
        files = {}
        state = self.state.rstrip("/")
        with open(self.trace, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                t, call, path, ret = float(m.group(2)), m.group(3), m.group(5), int(m.group(6))
                if not (t0 <= t <= t1) or ret < 0:
                    continue
                if path != state and not path.startswith(state + "/"):
                    continue
                name = os.path.basename(path) if path != state else "."
                if call in ("fsync", "fdatasync", "sync_file_range", "syncfs"):
                    fsyncs += 1
                    files.setdefault(name, [0, 0])[1] += 1
                elif call.startswith(("write", "pwrite")):
                    nbytes += ret
                    writes += 1
                    files.setdefault(name, [0, 0])[0] += ret
        h = 3600.0 / (t1 - t0)
        return {"seconds": round(t1 - t0, 1), "bytes": nbytes, "writes": writes, "fsyncs": fsyncs,
                "bytes_per_hour": round(nbytes * h), "fsyncs_per_hour": round(fsyncs * h, 1),
                "per_file": files}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 5-minute window (CI); full: 20 minutes")
    ap.add_argument("--custos", default=os.path.join(ROOT, "target", "release", "custos"))
    ap.add_argument("--window", type=float, help="seconds counted per phase (overrides the mode)")
    ap.add_argument("--only", help="comma-separated phases to run (crash,idle,reload)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not shutil.which("strace"):
        print("writes: strace is needed (apt-get install strace)", file=sys.stderr)
        return 1
    mode = "quick" if a.quick else "full"
    window = a.window or (300.0 if a.quick else 1200.0)
    warmup = 60.0
    root = tempfile.mkdtemp(prefix="custos-writes-")
    phases = [Phase(root, n, os.path.abspath(a.custos), warmup, window)
              for n in ("crash", "idle", "reload") if not a.only or n in a.only.split(",")]
    print(f"writes: {mode}: {warmup:.0f} s warm-up, then {window:.0f} s counted, {len(phases)} phase(s) side by side",
          file=sys.stderr)
    threads = [threading.Thread(target=p.run) for p in phases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    R = {"mode": mode, "window_seconds": window, "phases": {}}
    rows = ["| phase | counted | bytes | fsyncs | bytes/h | fsyncs/h | goal | met |",
            "|---|---|---|---|---|---|---|---|"]
    ok = True
    for p in phases:
        r = p.result
        if r is None:
            ok = False
            rows.append(f"| {p.name} | failed | | | | | | no |")
            continue
        gb, gf = GOALS[p.name]
        met = r["bytes_per_hour"] <= gb and (gf is None or r["fsyncs_per_hour"] <= gf)
        ok &= met
        goal = f"<= {gb // 1024} KiB/h" + (f", <= {gf} fsyncs/h" if gf else "")
        extra = {"crash": f"{r['deaths_in_log']} deaths", "reload": f"{r['reloads']} reloads",
                 "idle": "no events"}[p.name]
        rows.append(f"| {p.name} ({extra}) | {r['seconds']:.0f} s | {r['bytes']} | {r['fsyncs']} | "
                    f"{r['bytes_per_hour'] / 1024:.1f} KiB | {r['fsyncs_per_hour']:.0f} | {goal} | "
                    f"{'yes' if met else 'NO'} |")
        R["phases"][p.name] = r
    md = "\n".join(rows)
    print(f"custos's writes to state_dir ({mode}; strace -f -y, counted after a {warmup:.0f} s warm-up, "
          f"scaled to one hour)\n")
    print(md)
    for p in phases:
        if p.result:
            print(f"  {p.name}: per file (bytes, fsyncs): {json.dumps(p.result['per_file'])}")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"writes-{mode}.json"), "w") as f:
        json.dump(R, f, indent=1)
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept {root}", file=sys.stderr)
    print("goals " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

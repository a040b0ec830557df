#!/usr/bin/env python3
"""custos vs Monit: the same init.d-started, double-forking HTTP service under each supervisor.

Run through scripts/bench (which installs Monit and busybox and builds custos):

    scripts/bench [--quick] [--phases crash,hang,idle,loop] [--keep]

Every supervisor runs under bench/reaper.py (a child subreaper that reaps orphans at once, as
init does on a board). Event times come from time.monotonic() in this driver, polled at <= 10 ms
(1 ms for the first action), and every wait has a hard timeout. The service is
board/rootfs/etc/init.d/web_server (busybox start-stop-daemon -b + busybox httpd), copied per
service next to its own etc/default/web_server settings file, which also appends the script's
verb ("start"/"stop") to a marks file: that is how the first action of either supervisor is seen.

Output: a markdown table on stdout, JSON in target/bench/ (bench-<time>.json and latest.json),
supervisor logs in target/bench/logs/.
"""
import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
REAPER = os.path.join(BENCH, "reaper.py")
INITD = os.path.join(ROOT, "board", "rootfs", "etc", "init.d", "web_server")
PAGE = os.path.join(ROOT, "board", "rootfs", "var", "www", "watchdog_page.html")
OUT = os.path.join(ROOT, "target", "bench")
CONTENT = b"woof woof still alive"
PAGE_PATH = "/watchdog_page.html"
MONIT_START_TIMEOUT = 30  # Monit's default start timeout (set limits STARTTIMEOUT)
AFTER_BATCH, AFTER_SPACING = 5, 6.5  # scenario 3: trials per batch, seconds between their crashes
TICKS = os.sysconf("SC_CLK_TCK")

ABORT = threading.Event()
LIVE = []  # supervisors and idler groups to clean up
LIVE_LOCK = threading.Lock()


def mono():
    return time.monotonic()


class Timeout(Exception):
    pass


class Aborted(Exception):
    pass


def wait_until(fn, timeout, poll):
    """Polls fn() every `poll` s until it returns a true value; raises Timeout after `timeout` s."""
    end = mono() + timeout
    while True:
        v = fn()
        if v:
            return v
        if ABORT.is_set():
            raise Aborted()
        if mono() > end:
            raise Timeout()
        time.sleep(poll)


def sleep(secs):
    if ABORT.wait(secs):
        raise Aborted()


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def nprocs():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


# ---------------------------------------------------------------------------------------------
# /proc readings.


def proc_stat(pid):
    """(state, ppid, utime, stime, cutime, cstime, starttime) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return (rest[0], int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14]),
            int(rest[19]))


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in "ZX"


def uptime_of(pid):
    st = proc_stat(pid)
    if st is None:
        return None
    with open("/proc/uptime") as f:
        now = float(f.read().split()[0])
    return now - st[6] / TICKS


def cpu_of(pid):
    """CPU used by `pid`: ns on the CPU of its live threads (schedstat) and clock ticks of
    utime+stime+cutime+cstime (cutime/cstime: children it has waited for)."""
    ns = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        return None
    st = proc_stat(pid)
    if st is None:
        return None
    return {"ns": ns, "ticks": st[2] + st[3] + st[4] + st[5], "self_ticks": st[2] + st[3]}


def mem_of(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Private_Dirty", "Private_Clean", "Shared_Clean"):
                    out[k.lower() + "_kib"] = int(v.split()[0])
    except OSError:
        return None
    return out


def http_ok(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET " + PAGE_PATH.encode() + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while len(data) < 16384:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    status = data.split(b"\r\n", 1)[0]
    return status.startswith(b"HTTP/1.") and b" 200" in status and CONTENT in data


def free_port(used):
    for _ in range(1000):
        p = random.randint(20000, 59999)
        if p in used:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        used.add(p)
        return p
    raise RuntimeError("no free port")


# ---------------------------------------------------------------------------------------------
# The service: a copy of the board's init.d script with its own settings file.


class Service:
    def __init__(self, root, name, port):
        self.name, self.port = name, port
        self.dir = os.path.join(root, name)
        etc = os.path.join(self.dir, "etc")
        os.makedirs(os.path.join(etc, "init.d"))
        os.makedirs(os.path.join(etc, "default"))
        self.script = os.path.join(etc, "init.d", "web_server")
        shutil.copyfile(INITD, self.script)
        os.chmod(self.script, 0o755)
        self.pidfile = os.path.join(self.dir, "web_server.pid")
        self.marks = os.path.join(self.dir, "marks")
        www = os.path.join(root, "www")
        with open(os.path.join(etc, "default", "web_server"), "w") as f:
            f.write(
                "# Settings for the bench copy of /etc/init.d/web_server (sourced as shell).\n"
                f"PORT={port}\nDOCROOT={www}\nPIDFILE={self.pidfile}\nBUSYBOX=busybox\n"
                "# bench: note each run of the script (builtins only, so it costs no fork).\n"
                f'echo "$1" >> {self.marks}\n'
            )

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def marks_size(self):
        try:
            return os.stat(self.marks).st_size
        except OSError:
            return 0

    def mark_lines(self):
        try:
            with open(self.marks) as f:
                return f.read().split()
        except OSError:
            return []

    def running_pid(self, not_pid=None):
        """The pidfile's PID if that process runs (not stopped, not a zombie) and is not `not_pid`."""
        p = self.pid()
        if p is None or p == not_pid:
            return None
        st = proc_stat(p)
        if st is None or st[0] in "ZXTt":
            return None
        return p

    def up(self, not_pid=None):
        p = self.running_pid(not_pid)
        if p and http_ok(self.port):
            return p
        return None


# ---------------------------------------------------------------------------------------------
# The supervisors.


def custos_config(root, services, checks=True):
    out = [
        "# custos bench config: the Monit config's equivalent (see bench/README.md).",
        "[supervisor]",
        'interval = "1s"',
        f'state_dir = "{root}"',
        # Its own control socket: the default path is shared by every custos on the host, and
        # another one's clients would wake this one.
        f'control_socket = "{root}/custos.sock"',
        "",
    ]
    for s in services:
        out += [
            "[[service]]",
            f'name = "{s.name}"',
            f'pidfile = "{s.pidfile}"',
            f'start = ["{s.script}", "start"]',
            f'stop = ["{s.script}", "stop"]',
            'start_timeout = "30s"',
            'stop_timeout = "30s"',
            "[service.restart]",
            'backoff = "1ms"',
            'backoff_max = "1ms"',
            "max_restarts = 64",
            'window = "1m"',
        ]
        if not checks:
            out.append("")
            continue
        out += [
            "[[service.check]]",
            'kind = "http"',
            'host = "127.0.0.1"',
            f"port = {s.port}",
            f'path = "{PAGE_PATH}"',
            f'expect = "{CONTENT.decode()}"',
            'timeout = "1s"',
            'every = "1s"',
            "failures = 1",
            "",
        ]
    return "\n".join(out)


def monit_config(root, services, checks=True):
    out = [
        "# Monit bench control file: the custos config's equivalent (see bench/README.md).",
        "set daemon 1",
        f"set log {root}/monit.log",
        f"set idfile {root}/monit.id",
        f"set statefile {root}/monit.state",
        f"set pidfile {root}/monit.pid",
        "",
    ]
    for s in services:
        out += [
            f"check process {s.name} with pidfile {s.pidfile}",
            f'  start program = "{s.script} start"',
            f'  stop program = "{s.script} stop"',
        ]
        if not checks:
            out.append("")
            continue
        out += [
            f'  if failed host 127.0.0.1 port {s.port} protocol http request "{PAGE_PATH}"'
            f' and content = "{CONTENT.decode()}" with timeout 1 seconds then restart',
            "",
        ]
    return "\n".join(out)


class Supervisor:
    def __init__(self, kind, label, root, n_services, ports, names=None, custos_bin=None,
                 checks=True):
        self.kind, self.label = kind, label
        self.root = os.path.join(root, label)
        os.makedirs(self.root)
        names = names or [f"ws{i}" for i in range(n_services)]
        self.services = [Service(self.root, n, free_port(ports)) for n in names]
        self.by_name = {s.name: s for s in self.services}
        os.makedirs(os.path.join(self.root, "www"))
        shutil.copyfile(PAGE, os.path.join(self.root, "www", "watchdog_page.html"))
        if kind == "custos":
            self.config = os.path.join(self.root, "custos.toml")
            with open(self.config, "w") as f:
                f.write(custos_config(self.root, self.services, checks))
            self.cmd = [custos_bin, "run", "-c", self.config]
        else:
            self.config = os.path.join(self.root, "monitrc")
            fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(monit_config(self.root, self.services, checks))
            os.chmod(self.config, 0o600)
            self.cmd = ["monit", "-I", "-c", self.config]
        self.lines = []  # (monotonic time of arrival, line)
        self.proc = None
        self.pid = None
        self.logfile = os.path.join(self.root, "supervisor.log")

    def start(self):
        env = dict(os.environ)
        env["RUST_LOG"] = "info"
        self.proc = subprocess.Popen(
            [sys.executable, REAPER, os.path.join(self.root, "reaper.pid"), "--"] + self.cmd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.root, env=env)
        with LIVE_LOCK:
            LIVE.append(self)
        self.started_at = mono()
        threading.Thread(target=self._read, daemon=True).start()

        def sup_pid():
            try:
                with open(os.path.join(self.root, "reaper.pid")) as f:
                    return int(f.read())
            except (OSError, ValueError):
                return None
        self.pid = wait_until(sup_pid, 10, 0.005)

    def _read(self):
        with open(self.logfile, "w") as out:
            for raw in self.proc.stdout:
                t = mono()
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append((t, line))
                out.write(f"{t:.6f} {line}\n")
                out.flush()

    def first_line(self, since, patterns, name=None):
        for t, line in list(self.lines):
            if t >= since and (name is None or name in line) and any(p in line for p in patterns):
                return t
        return None

    def wait_all_up(self, timeout=60):
        wait_until(lambda: all(s.up() for s in self.services), timeout, 0.05)

    def cpu(self):
        return cpu_of(self.pid)

    def mem(self):
        return mem_of(self.pid)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        try:
            os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
            shutil.copyfile(self.logfile, os.path.join(OUT, "logs", f"{self.label}.log"))
        except OSError:
            pass

    # Patterns of a supervisor's log lines that say it acts.
    def action_patterns(self):
        if self.kind == "custos":
            return ["starting (", "restarting:", "running stop script"]
        return ["trying to restart", "' start:", "' stop:"]


class Idlers:
    """Idle processes in bulk (bench/fixtures/idlers.c), to grow the host's process count."""

    def __init__(self, binary, n):
        self.proc = subprocess.Popen([binary, str(n)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, start_new_session=True)
        with LIVE_LOCK:
            LIVE.append(self)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            raise RuntimeError(f"idlers: {line!r}")
        self.n = int(line.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def sweep(workdir):
    """Kills, by PID, any process left whose command line names the bench's work dir."""
    me = os.getpid()
    key = workdir.encode()
    for _ in range(3):
        found = 0
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if key in f.read():
                        os.kill(int(d), signal.SIGKILL)
                        found += 1
            except (OSError, ProcessLookupError):
                pass
        if not found:
            return
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# Scenarios.


def summary(values):
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0, "failed": len(values)}
    return {"n": len(v), "failed": len(values) - len(v), "min": min(v),
            "median": statistics.median(v), "max": max(v)}


def children(pid):
    """Children of every thread of `pid` (/proc/PID/task/TID/children)."""
    out = set()
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def crash_trial(sup, svc):
    """Scenario 1. The first action is seen twice, both polled every 1 ms: the supervisor's
    fork of the init.d script (a new child in /proc/SUP/task/*/children: custos forks nothing
    else, its checks run in-process, and neither does Monit), and the script itself at work
    (its settings file appends to the marks file, after a few ms of sh start-up)."""
    old = wait_until(lambda: svc.up(), 30, 0.01)
    n0 = svc.marks_size()
    kids0 = children(sup.pid) | {old}
    t0 = mono()
    os.kill(old, signal.SIGKILL)
    r = {"pid": old}
    t_fork = t_act = None
    end = t0 + 15
    while (t_fork is None or t_act is None) and mono() < end:
        if t_fork is None and children(sup.pid) - kids0:
            t_fork = mono()
        if t_act is None and svc.marks_size() > n0:
            t_act = mono()
        time.sleep(0.001)
    r["fork_ms"] = None if t_fork is None else (t_fork - t0) * 1e3
    r["action_ms"] = None if t_act is None else (t_act - t0) * 1e3
    try:
        with open(svc.marks) as f:
            f.seek(n0)
            r["action"] = (f.read().split() or [None])[0]
        t_up = wait_until(lambda: mono() if svc.up(not_pid=old) else None, 30, 0.005)
        r["answering_ms"] = (t_up - t0) * 1e3
    except (Timeout, OSError):
        r["timeout"] = True
    t_log = sup.first_line(t0, sup.action_patterns(), svc.name)
    r["log_ms"] = None if t_log is None else (t_log - t0) * 1e3
    return r


def phase_crash(kind, cfg, ctx):
    """Scenario 1 (SIGKILL of the daemon), on one service; also RSS/PSS with 1 service."""
    sup = Supervisor(kind, f"{kind}-crash", ctx.work, 1, ctx.ports, custos_bin=ctx.custos)
    res = {"trials": []}
    try:
        sup.start()
        sup.wait_all_up()
        svc = sup.services[0]
        sleep(2.0)
        rng = random.Random(f"crash-{kind}")
        for i in range(cfg["crash_trials"]):
            sleep(rng.uniform(1.0, 2.0))  # spreads the kill over the supervisor's 1 s cycle
            r = crash_trial(sup, svc)
            res["trials"].append(r)
            log(f"{kind} crash {i + 1}/{cfg['crash_trials']}: fork {fmt_ms(r.get('fork_ms'))},"
                f" script {fmt_ms(r.get('action_ms'))}"
                f" ({r.get('action')}), log {fmt_ms(r.get('log_ms'))},"
                f" answering {fmt_ms(r.get('answering_ms'))}")
        sleep(1.5)
        res["mem_1"] = sup.mem()
        res["marks"] = svc.mark_lines()
    finally:
        sup.stop()
    for k in ("fork_ms", "action_ms", "log_ms", "answering_ms"):
        res[k] = summary([t.get(k) for t in res["trials"]])
    return res


def hang_trial(sup, svc, pid, timeout):
    """SIGSTOP `pid` (the service's running daemon) and time, from then: the first init.d script
    run (the stop script, normally), the start script after it, and the new daemon answering."""
    n0 = svc.marks_size()
    t0 = mono()
    os.kill(pid, signal.SIGSTOP)
    r = {"pid": pid, "uptime_s": uptime_of(pid)}
    try:
        t_act = wait_until(lambda: mono() if svc.marks_size() > n0 else None, timeout, 0.002)
        r["action_ms"] = (t_act - t0) * 1e3

        def new_marks():
            with open(svc.marks) as f:
                f.seek(n0)
                return f.read().split()
        r["action"] = new_marks()[0]
        if r["action"] == "stop":
            wait_until(lambda: mono() if len(new_marks()) >= 2 else None, timeout, 0.002)
            r["stop_script_ms"] = (mono() - t_act) * 1e3
        t_up = wait_until(lambda: mono() if svc.up(not_pid=pid) else None, timeout, 0.005)
        r["replaced_ms"] = (t_up - t0) * 1e3
    except Timeout:
        r["timeout"] = True
    t_log = sup.first_line(t0, sup.action_patterns(), svc.name)
    r["log_ms"] = None if t_log is None else (t_log - t0) * 1e3
    return r


def after_restart_trial(sup, svc, delay, timeout):
    """Scenario 3: SIGKILL, then SIGSTOP the new daemon `delay` s after it appeared."""
    old = wait_until(lambda: svc.up(), 30, 0.01)
    os.kill(old, signal.SIGKILL)
    r = {"crashed_pid": old}
    try:
        new = wait_until(lambda: svc.running_pid(not_pid=old), 30, 0.005)
        t_new = mono()
        wait_until(lambda: svc.up(not_pid=old), 30, 0.005)
        sleep(max(0.0, t_new + delay - mono()))
        r["delay_s"] = delay
        r.update(hang_trial(sup, svc, new, timeout))
    except Timeout:
        r["timeout"] = True
    return r


def phase_hang(kind, cfg, ctx):
    """Scenarios 2 and 3 on one supervisor. Scenario 3: each r* service gets a crash and then a
    hang 3-4 s after its restart. Monit handles services one at a time in one loop, and one
    hang costs that loop about 4.5 s (1 s timeout, 3.3 s stop script, start), so trials run in
    batches of at most AFTER_BATCH started AFTER_SPACING s apart: every crash of a batch is
    handled before the batch's first hang is seen (30 s after its restart), and the hangs are
    seen one after another, never queued behind each other. Scenario 2 then: each h* service,
    older than Monit's 30 s start timeout, gets a hang, one after another."""
    k2, k3 = cfg["hang_trials"], cfg["after_trials"]
    names = [f"r{i}" for i in range(k3)] + [f"h{i}" for i in range(k2)]
    sup = Supervisor(kind, f"{kind}-hang", ctx.work, 0, ctx.ports, names=names,
                     custos_bin=ctx.custos)
    res = {"after_restart": [], "hang": []}
    try:
        sup.start()
        sup.wait_all_up(90)
        sleep(2.0)
        rs = [sup.by_name[f"r{i}"] for i in range(k3)]
        out = [None] * k3
        rng = random.Random(f"after-{kind}")
        # 3 s, plus up to 1 s so that the hang falls anywhere in the supervisors' 1 s cycle.
        jitter = [rng.uniform(0.0, 1.0) for _ in range(k3)]

        def run(i, t_begin):
            try:
                sleep(max(0.0, t_begin + AFTER_SPACING * (i % AFTER_BATCH) - mono()))
                out[i] = after_restart_trial(sup, rs[i], 3.0 + jitter[i], 60)
            except Aborted:
                pass
            except Exception as e:  # recorded, the bench goes on
                out[i] = {"error": repr(e)}
        for first in range(0, k3, AFTER_BATCH):
            t_begin = mono()
            threads = [threading.Thread(target=run, args=(i, t_begin), daemon=True)
                       for i in range(first, min(k3, first + AFTER_BATCH))]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
                    if ABORT.is_set():
                        raise Aborted()
        res["after_restart"] = [o or {"error": "no result"} for o in out]
        for i, r in enumerate(res["after_restart"]):
            log(f"{kind} hang 3 s after restart {i + 1}/{k3}: action {fmt_ms(r.get('action_ms'))},"
                f" replaced {fmt_ms(r.get('replaced_ms'))}"
                f" (stopped at uptime {r.get('uptime_s') or 0:.2f} s)")

        hs = [sup.by_name[f"h{i}"] for i in range(k2)]
        # Steady state: every h service older than Monit's start timeout (its port-test pause).
        for s in hs:
            wait_until(lambda: (uptime_of(s.pid() or 0) or 0) > MONIT_START_TIMEOUT + 1, 60, 0.1)
        rng = random.Random(f"hang-{kind}")
        for i, s in enumerate(hs):
            sleep(rng.uniform(0.5, 1.5))
            r = hang_trial(sup, s, wait_until(lambda: s.up(), 30, 0.01), 30)
            res["hang"].append(r)
            log(f"{kind} hang {i + 1}/{k2}: action {fmt_ms(r.get('action_ms'))}"
                f" ({r.get('action')}), replaced {fmt_ms(r.get('replaced_ms'))}")
        res["marks"] = {s.name: s.mark_lines() for s in sup.services}
        # Expected: r*: start, start (crash), stop, start; h*: start, stop, start.
        extra = 0
        for s in sup.services:
            want = 4 if s.name.startswith("r") else 3
            extra += max(0, len(res["marks"][s.name]) - want)
        res["unexpected_script_runs"] = extra
    finally:
        sup.stop()
    for k in ("action_ms", "log_ms", "stop_script_ms", "replaced_ms"):
        res["hang_" + k] = summary([t.get(k) for t in res["hang"]])
        res["after_" + k] = summary([t.get(k) for t in res["after_restart"]])
    return res


def phase_idle(kind, cfg, ctx, checks=True):
    """Scenarios 4, 5 and 6 (20 services): false restarts while healthy, idle CPU, RSS/PSS.
    With checks=False: the same services without their HTTP check (supervision alone)."""
    n = cfg["idle_services"]
    sup = Supervisor(kind, f"{kind}-idle{'' if checks else '-nocheck'}", ctx.work, n, ctx.ports,
                     custos_bin=ctx.custos, checks=checks)
    res = {}
    try:
        sup.start()
        sup.wait_all_up(90)
        t_up = mono()
        pids0 = {s.name: s.pid() for s in sup.services}
        marks0 = {s.name: s.marks_size() for s in sup.services}
        # Steady state first: every service older than Monit's start timeout, so that Monit
        # runs its port tests (it skips them while a process is younger than that).
        for s in sup.services:
            wait_until(lambda: (uptime_of(s.pid() or 0) or 0) > MONIT_START_TIMEOUT + 1, 90, 0.1)
        c0, t0 = sup.cpu(), mono()
        sleep(cfg["idle_s"])
        c1, t1 = sup.cpu(), mono()
        res["cpu_window_s"] = t1 - t0
        res["cpu_ms"] = (c1["ns"] - c0["ns"]) / 1e6
        res["cpu_ticks_ms"] = (c1["ticks"] - c0["ticks"]) * 1000 / TICKS
        res["cpu_percent"] = res["cpu_ms"] / 1000 / (t1 - t0) * 100
        res["mem_20"] = sup.mem()
        sleep(max(0.0, t_up + cfg["healthy_s"] - mono()))
        res["healthy_s"] = mono() - t_up
        runs = []
        for s in sup.services:
            with open(s.marks) as f:
                f.seek(marks0[s.name])
                runs += f.read().split()
        res["pid_changes"] = [s.name for s in sup.services if s.pid() != pids0[s.name]]
        res["script_runs"] = runs
        # A restart is a run of the start script (after a stop, or after a death it caused).
        res["false_restarts"] = max(runs.count("start"), len(res["pid_changes"]))
        res["services"] = n
    finally:
        sup.stop()
    return res


def phase_loop(cfg, ctx, sups):
    """Scenario 8: supervisor CPU per 1 s cycle as the host's process count grows. Both
    supervisors (1 service each, warm) are measured over the same windows."""
    levels, window = cfg["loop_levels"], cfg["loop_window"]
    for s in sups.values():
        for svc in s.services:
            wait_until(lambda: (uptime_of(svc.pid() or 0) or 0) > MONIT_START_TIMEOUT + 1, 90, 0.1)
    res = {"levels": []}
    groups, have = [], 0
    try:
        for level in levels:
            if level > have:
                groups.append(Idlers(ctx.idlers, level - have))
                have += groups[-1].n
            sleep(2.0)
            c0 = {k: s.cpu() for k, s in sups.items()}
            t0 = mono()
            procs0 = nprocs()
            sleep(window)
            t1 = mono()
            c1 = {k: s.cpu() for k, s in sups.items()}
            row = {"extra_processes": have, "host_processes": procs0, "window_s": t1 - t0}
            for k in sups:
                row[k + "_ms_per_cycle"] = (c1[k]["ns"] - c0[k]["ns"]) / 1e6 / (t1 - t0)
                row[k + "_ticks_ms_per_cycle"] = (c1[k]["ticks"] - c0[k]["ticks"]) * 1000 / TICKS / (t1 - t0)
            res["levels"].append(row)
            log(f"loop cost with {procs0} processes: custos {row['custos_ms_per_cycle']:.3f} ms,"
                f" monit {row['monit_ms_per_cycle']:.3f} ms per cycle")
        res["marks"] = {k: s.services[0].mark_lines() for k, s in sups.items()}
    finally:
        for g in groups:
            g.stop()
    return res


def phase_mem_musl(cfg, ctx):
    """RSS/PSS of custos's static musl build, 1 and 20 services (when that build exists)."""
    res = {"path": ctx.musl}
    for n in (1, cfg["idle_services"]):
        sup = Supervisor("custos", f"custos-musl-{n}", ctx.work, n, ctx.ports, custos_bin=ctx.musl)
        try:
            sup.start()
            sup.wait_all_up(60)
            sleep(3.0)
            res[f"mem_{n}"] = sup.mem()
        finally:
            sup.stop()
    return res


def timer_noise():
    """How late a 1 ms sleep of this driver wakes up now (ms): the resolution of its polls."""
    late = []
    for _ in range(200):
        t = mono()
        time.sleep(0.001)
        late.append((mono() - t) * 1e3 - 1.0)
    late.sort()
    return {"median_ms": late[100], "p90_ms": late[180], "max_ms": late[-1]}


# ---------------------------------------------------------------------------------------------
# Static facts: binary size and linked libraries.


def binary_facts(path):
    out = {"path": path, "bytes": os.path.getsize(path)}
    try:
        d = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True, timeout=30).stdout
        out["needed"] = [l.split("[")[1].rstrip("]") for l in d.splitlines() if "(NEEDED)" in l]
        h = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, timeout=30).stdout
        out["static"] = "INTERP" not in h
    except (OSError, subprocess.SubprocessError, IndexError):
        out["needed"] = None
    try:
        l = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30).stdout
        out["ldd"] = [x.split()[0] for x in l.splitlines() if x.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Report.


def fmt_ms(v):
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms"


def med_max(s):
    if not s or s.get("n", 0) == 0:
        return "— (all failed)" if s else "—"
    t = f"{fmt_ms(s['median'])} (max {fmt_ms(s['max'])})"
    if s.get("failed"):
        t += f", {s['failed']} timed out"
    return t


def ratio(c, m, fmt="{:.0f}×"):
    try:
        if c and m is not None and c > 0:
            r = m / c
            return fmt.format(r) if r >= 10 else f"{r:.1f}×"
    except TypeError:
        pass
    return "—"


def kib(v):
    return "—" if v is None else f"{v} KiB"


def table(R):
    rows = []
    C, M = R["custos"], R["monit"]

    def med(d, k):
        return (d.get(k) or {}).get("median")

    def crash():
        c, m = C["crash"], M["crash"]
        rows.append((f"1. crash (SIGKILL) → first action: supervisor forks the init.d script, n={c['fork_ms'].get('n')}",
                     med_max(c["fork_ms"]), med_max(m["fork_ms"]),
                     ratio(med(c, "fork_ms"), med(m, "fork_ms"))))
        rows.append(("1. crash → supervisor's action logged (line arrives)",
                     med_max(c["log_ms"]), med_max(m["log_ms"]),
                     ratio(med(c, "log_ms"), med(m, "log_ms"))))
        rows.append(("1. crash → init.d script at work (its settings file sourced)",
                     med_max(c["action_ms"]), med_max(m["action_ms"]),
                     ratio(med(c, "action_ms"), med(m, "action_ms"))))
        rows.append(("1. crash → answering HTTP again",
                     med_max(c["answering_ms"]), med_max(m["answering_ms"]),
                     ratio(med(c, "answering_ms"), med(m, "answering_ms"))))

    def hang():
        c, m = C["hang"], M["hang"]
        n = c["hang_replaced_ms"].get("n")
        rows.append((f"2. hang (SIGSTOP) → first action (stop script runs), n={n}",
                     med_max(c["hang_action_ms"]), med_max(m["hang_action_ms"]),
                     ratio(med(c, "hang_action_ms"), med(m, "hang_action_ms"))))
        rows.append(("2. … of which the init.d stop script ran (its SIGTERM waits on a stopped process: 3 s, then SIGKILL)",
                     med_max(c["hang_stop_script_ms"]), med_max(m["hang_stop_script_ms"]), "—"))
        rows.append(("2. hang → replaced and answering",
                     med_max(c["hang_replaced_ms"]), med_max(m["hang_replaced_ms"]),
                     ratio(med(c, "hang_replaced_ms"), med(m, "hang_replaced_ms"))))
        n = c["after_replaced_ms"].get("n")
        rows.append((f"3. hang 3 s after a restart → first action, n={n}",
                     med_max(c["after_action_ms"]), med_max(m["after_action_ms"]),
                     ratio(med(c, "after_action_ms"), med(m, "after_action_ms"))))
        rows.append(("3. hang 3 s after a restart → replaced and answering",
                     med_max(c["after_replaced_ms"]), med_max(m["after_replaced_ms"]),
                     ratio(med(c, "after_replaced_ms"), med(m, "after_replaced_ms"))))
        rows.append(("2+3. init.d script runs beyond the expected ones",
                     str(c.get("unexpected_script_runs")), str(m.get("unexpected_script_runs")), "—"))

    def idle():
        c, m = C["idle"], M["idle"]
        rows.append((f"4. false restarts, {c['services']} healthy services for {c['healthy_s']:.0f} s (must be 0)",
                     str(c["false_restarts"]), str(m["false_restarts"]), "—"))
        rows.append((f"5. idle CPU, {c['services']} services, over {c['cpu_window_s']:.0f} s (% of one core)",
                     f"{c['cpu_ms']:.1f} ms ({c['cpu_percent']:.3f} %)",
                     f"{m['cpu_ms']:.1f} ms ({m['cpu_percent']:.3f} %)",
                     ratio(c["cpu_ms"], m["cpu_ms"])))
        try:
            cn, mn = C["idlenc"], M["idlenc"]
            rows.append((f"5. … the same {cn['services']} services without their HTTP check (supervision alone)",
                         f"{cn['cpu_ms']:.1f} ms ({cn['cpu_percent']:.3f} %)",
                         f"{mn['cpu_ms']:.1f} ms ({mn['cpu_percent']:.3f} %)",
                         ratio(cn["cpu_ms"], mn["cpu_ms"])))
        except (KeyError, TypeError):
            pass
        rows.append((f"6. RSS / PSS, {c['services']} services",
                     f"{kib(c['mem_20'].get('rss_kib'))} / {kib(c['mem_20'].get('pss_kib'))}",
                     f"{kib(m['mem_20'].get('rss_kib'))} / {kib(m['mem_20'].get('pss_kib'))}",
                     ratio(c["mem_20"].get("rss_kib"), m["mem_20"].get("rss_kib"))))

    def mem1():
        c, m = C["crash"]["mem_1"], M["crash"]["mem_1"]
        rows.append(("6. RSS / PSS, 1 service",
                     f"{kib(c.get('rss_kib'))} / {kib(c.get('pss_kib'))}",
                     f"{kib(m.get('rss_kib'))} / {kib(m.get('pss_kib'))}",
                     ratio(c.get("rss_kib"), m.get("rss_kib"))))

    def musl():
        if "musl" not in C:
            return
        u = C["musl"]
        for n in (1, 20):
            x = u[f"mem_{n}"]
            m = (M["crash"]["mem_1"] if n == 1 else M["idle"]["mem_20"]) or {}
            rows.append((f"6. RSS / PSS, {n} service(s), custos static musl build",
                         f"{kib(x.get('rss_kib'))} / {kib(x.get('pss_kib'))}",
                         f"{kib(m.get('rss_kib'))} / {kib(m.get('pss_kib'))}",
                         ratio(x.get("rss_kib"), m.get("rss_kib"))))

    def binaries():
        b = R["binaries"]
        c, m = b["custos"], b["monit"]
        rows.append((f"7. binary size ({os.path.relpath(c['path'], ROOT)} vs {m['path']})",
                     f"{c['bytes'] / 1024:.0f} KiB", f"{m['bytes'] / 1024:.0f} KiB",
                     ratio(c["bytes"], m["bytes"])))
        musl = b.get("custos_musl")
        if musl:
            rows.append(("7. custos static musl build (target/x86_64-unknown-linux-musl)",
                         f"{musl['bytes'] / 1024:.0f} KiB" + (", static" if musl.get("static") else ""),
                         "—", ratio(musl["bytes"], m["bytes"])))
        rows.append(("7. linked libraries (DT_NEEDED)",
                     ", ".join(c.get("needed") or []) or "none (static)",
                     ", ".join(m.get("needed") or []) or "none", "—"))

    def loop():
        L = R["loop"]["levels"]
        for row in L:
            rows.append((f"8. CPU per 1 s cycle, 1 service, {row['host_processes']} processes on the host",
                         f"{row['custos_ms_per_cycle']:.3f} ms", f"{row['monit_ms_per_cycle']:.3f} ms",
                         ratio(row["custos_ms_per_cycle"], row["monit_ms_per_cycle"])))
        if len(L) >= 2:
            g = {k: L[-1][k + "_ms_per_cycle"] / L[0][k + "_ms_per_cycle"]
                 if L[0][k + "_ms_per_cycle"] > 0 else None for k in ("custos", "monit")}
            rows.append((f"8. loop cost growth, {L[-1]['host_processes']} vs {L[0]['host_processes']} processes",
                         f"{g['custos']:.2f}×" if g["custos"] else "—",
                         f"{g['monit']:.2f}×" if g["monit"] else "—", "—"))

    for name, fn in (("crash", crash), ("hang", hang), ("idle", idle), ("mem1", mem1), ("musl", musl),
                     ("binaries", binaries), ("loop", loop)):
        try:
            fn()
        except (KeyError, TypeError, ZeroDivisionError, AttributeError) as e:
            rows.append((f"{name}: not measured", f"({type(e).__name__} {e})", "", ""))
    out = ["| metric | custos | Monit | ratio (Monit ÷ custos) |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def goals(R):
    C, M = R["custos"], R["monit"]
    out = []

    def g(name, ok, detail):
        out.append(f"- {'MET' if ok else 'MISSED'}: {name}: {detail}")
    try:
        c, m = C["crash"]["fork_ms"]["median"], M["crash"]["fork_ms"]["median"]
        g("first action after a crash <= 5 ms median and >= 100x faster than Monit",
          c <= 5 and m / c >= 100, f"{c:.1f} ms vs {m:.0f} ms ({m / c:.0f}x)")
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    try:
        c, m = C["hang"]["hang_replaced_ms"]["median"], M["hang"]["hang_replaced_ms"]["median"]
        g("hang replaced >= 3x faster than Monit (1 s timeout)", m / c >= 3,
          f"{c / 1000:.2f} s vs {m / 1000:.2f} s ({m / c:.2f}x)")
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    try:
        a, h = C["hang"]["after_replaced_ms"], C["hang"]["hang_replaced_ms"]
        g("no post-start blind window (hang 3 s after a restart replaced as fast as any hang)",
          a["median"] <= h["median"] + 500 and a["max"] <= h["max"] + 1000,
          f"custos {a['median'] / 1000:.2f} s (max {a['max'] / 1000:.2f} s) vs steady-state hang "
          f"{h['median'] / 1000:.2f} s; Monit {M['hang']['after_replaced_ms']['median'] / 1000:.2f} s")
    except (KeyError, TypeError):
        pass
    try:
        c, m = C["idle"]["cpu_ms"], M["idle"]["cpu_ms"]
        g("idle CPU <= 1/10 of Monit's", c * 10 <= m, f"{c:.1f} ms vs {m:.1f} ms ({m / c:.1f}x)")
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    try:
        c, m = C["idlenc"]["cpu_ms"], M["idlenc"]["cpu_ms"]
        g("idle CPU, supervision alone (no checks), <= 1/100 of Monit's", c * 100 <= m,
          f"{c:.1f} ms vs {m:.1f} ms ({m / c:.0f}x)")
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    try:
        r1 = C["crash"]["mem_1"]["rss_kib"]
        r20 = C["idle"]["mem_20"]["rss_kib"]
        detail = f"gnu build {r1} KiB (1 service), {r20} KiB (20 services)"
        worst = max(r1, r20)
        if "musl" in C:
            u1, u20 = C["musl"]["mem_1"]["rss_kib"], C["musl"]["mem_20"]["rss_kib"]
            detail += f"; static musl build {u1} KiB, {u20} KiB"
            worst = max(u1, u20)
        g("RSS <= 1 MiB", worst <= 1024, detail)
    except (KeyError, TypeError):
        pass
    try:
        L = R["loop"]["levels"]
        c0, c1 = L[0]["custos_ms_per_cycle"], L[-1]["custos_ms_per_cycle"]
        g("loop cost flat as processes grow", c1 <= c0 * 1.5 + 0.05,
          f"{c0:.3f} -> {c1:.3f} ms per cycle ({L[0]['host_processes']} -> "
          f"{L[-1]['host_processes']} processes); Monit {L[0]['monit_ms_per_cycle']:.3f} -> "
          f"{L[-1]['monit_ms_per_cycle']:.3f} ms")
    except (KeyError, TypeError, IndexError):
        pass
    try:
        f = (C["idle"]["false_restarts"], M["idle"]["false_restarts"])
        g("no false restarts while healthy", f[0] == 0, f"custos {f[0]}, Monit {f[1]}")
    except KeyError:
        pass
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


MODES = {
    "quick": {"crash_trials": 5, "hang_trials": 3, "after_trials": 2, "idle_services": 20,
              "idle_s": 10, "healthy_s": 40, "loop_levels": [100, 10000], "loop_window": 5},
    "full": {"crash_trials": 20, "hang_trials": 10, "after_trials": 10, "idle_services": 20,
             "idle_s": 60, "healthy_s": 120, "loop_levels": [100, 1000, 3000, 10000],
             "loop_window": 20},
}


class Ctx:
    pass


def run_parallel(fns):
    """Runs named callables in threads; returns {name: result or {'error': ...}}."""
    out = {}

    def wrap(name, fn):
        try:
            out[name] = fn()
        except Aborted:
            out[name] = {"error": "aborted"}
        except Exception as e:
            traceback.print_exc()
            out[name] = {"error": repr(e)}
    threads = [threading.Thread(target=wrap, args=(n, f), daemon=True) for n, f in fns.items()]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    if ABORT.is_set():
        raise Aborted()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few trials, short windows (CI)")
    ap.add_argument("--phases", default="crash,hang,idle,loop")
    ap.add_argument("--custos", default=os.path.join(ROOT, "target", "release", "custos"))
    ap.add_argument("--musl", default=os.path.join(ROOT, "target", "x86_64-unknown-linux-musl",
                                                   "release", "custos"),
                    help="custos's static musl build: its size and RSS are reported when it exists")
    ap.add_argument("--idlers", default=os.path.join(OUT, "idlers"))
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    cfg = MODES[mode]
    phases = a.phases.split(",")
    os.makedirs(OUT, exist_ok=True)

    ctx = Ctx()
    ctx.custos, ctx.idlers, ctx.musl = a.custos, a.idlers, a.musl
    ctx.work = tempfile.mkdtemp(prefix="custos-bench-")
    ctx.ports = set()

    def on_term(sig, _frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    R = {"mode": mode, "config": cfg, "custos": {}, "monit": {},
         "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                  "processes_at_start": nprocs()},
         "load": {"start": loadavg()}, "phase_seconds": {}}
    try:
        R["host"]["monit_version"] = subprocess.run(["monit", "-V"], capture_output=True, text=True,
                                                   timeout=10).stdout.splitlines()[0]
        R["host"]["git_rev"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                              capture_output=True, text=True, timeout=10).stdout.strip()
        R["host"]["git_dirty_files"] = len(subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
            capture_output=True, text=True, timeout=10).stdout.splitlines())
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    t_start = mono()
    log(f"mode {mode}; work dir {ctx.work}; load {R['load']['start']}")
    loop_sups = {}

    def group(label, fns):
        """Runs phases side by side; stores each result under R[kind][what]."""
        log(f"{label}: {', '.join(sorted(fns))}")
        t, l0, n0 = mono(), loadavg(), timer_noise()
        out = run_parallel(fns)
        R["phase_seconds"][label] = round(mono() - t, 1)
        R["load"][label] = {"before": l0, "after": loadavg(), "timer_late_before": n0,
                            "timer_late_after": timer_noise()}
        for name, v in out.items():
            what, kind = name.split("-")
            R[kind][what] = v
    try:
        R["binaries"] = {"custos": binary_facts(a.custos), "monit": binary_facts(shutil.which("monit"))}
        if os.path.exists(ctx.musl):
            R["binaries"]["custos_musl"] = binary_facts(ctx.musl)

        # Scenario 1 alone, one supervisor at a time: its numbers are milliseconds.
        if "crash" in phases:
            for k in ("custos", "monit"):
                group(f"crash ({k} alone)", {f"crash-{k}": lambda k=k: phase_crash(k, cfg, ctx)})
        if "loop" in phases:
            # Started now, they are past Monit's 30 s port-test pause when scenario 8 begins.
            for k in ("custos", "monit"):
                loop_sups[k] = Supervisor(k, f"{k}-loop", ctx.work, 1, ctx.ports, custos_bin=ctx.custos)
                loop_sups[k].start()
        hang = {f"hang-{k}": (lambda k=k: phase_hang(k, cfg, ctx)) for k in ("custos", "monit")} \
            if "hang" in phases else {}
        idle = {}
        if "idle" in phases:
            for k in ("custos", "monit"):
                idle[f"idle-{k}"] = lambda k=k: phase_idle(k, cfg, ctx)
                idle[f"idlenc-{k}"] = lambda k=k: phase_idle(k, cfg, ctx, checks=False)
            if os.path.exists(ctx.musl):
                idle["musl-custos"] = lambda: phase_mem_musl(cfg, ctx)
        if mode == "quick":
            # Quick: the idle runs overlap the hang runs (CPU time is measured, not wall time).
            hang.update(idle)
            idle = {}
        if hang:
            group("scenarios 2-3" + (" and 4-6" if "idle-custos" in hang else "")
                  + ", custos and Monit side by side", hang)
        if idle:
            group("scenarios 4-6, custos and Monit side by side", idle)
        if "loop" in phases:
            log("scenario 8 (loop cost vs process count), custos and Monit side by side")
            t, l0 = mono(), loadavg()
            R["loop"] = phase_loop(cfg, ctx, loop_sups)
            R["phase_seconds"]["loop"] = round(mono() - t, 1)
            R["load"]["loop"] = {"before": l0, "after": loadavg()}
    except (KeyboardInterrupt, Aborted):
        log("interrupted: cleaning up")
        ABORT.set()
        R["interrupted"] = True
    finally:
        ABORT.set()
        with LIVE_LOCK:
            live = list(LIVE)
        for x in reversed(live):
            try:
                x.stop()
            except Exception:
                traceback.print_exc()
        sweep(ctx.work)
        if not a.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)
    R["load"]["end"] = loadavg()
    R["seconds"] = round(mono() - t_start, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    md = table(R)
    gl = goals(R)
    R["table_markdown"] = md
    R["goals"] = gl
    names = [f"bench-{mode}-{stamp}.json"]
    if not R.get("interrupted"):
        names.append(f"latest-{mode}.json")
        with open(os.path.join(OUT, f"latest-{mode}.md"), "w") as f:
            f.write(md + "\n\n" + gl + "\n")
    for name in names:
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(R, f, indent=1, default=str)
    lates = [v[k]["p90_ms"] for v in R["load"].values() if isinstance(v, dict)
             for k in ("timer_late_before", "timer_late_after") if k in v]
    print(f"custos vs Monit ({mode} mode, {R['seconds']:.0f} s; {os.cpu_count()} CPUs; load average "
          f"{R['load']['start'][0]:.1f} at start, up to "
          f"{max([R['load']['start'][0]] + [v['before'][0] for k, v in R['load'].items() if isinstance(v, dict) and k != 'loop']):.1f} "
          f"before a phase (scenario 8's 10 000 forks then raise it)"
          + (f"; the driver's 1 ms sleeps woke up to {max(lates):.2f} ms late (p90)" if lates else "")
          + ")\n")
    print(md)
    print()
    print(gl)
    print(f"\nJSON: {os.path.relpath(os.path.join(OUT, names[-1]), ROOT)}")
    return 1 if R.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())

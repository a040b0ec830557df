#!/usr/bin/env python3
"""One idle pass, syscall by syscall: what custos asks of the kernel while nothing happens.

Run through scripts/bench (which builds custos and installs busybox and strace), or directly:

    python3 bench/syscalls.py [--quick] [--custos PATH] [--window S] [--cpu-from JSON] [--keep]

Two custos instances run side by side, each with 20 services: the bench's double-forking
busybox httpd started by its init.d script (bench/driver.py's fixtures, under bench/reaper.py).
One has an HTTP check per service every 1 s on 127.0.0.1 (the idle phase's config); the other
has no checks (supervision alone). Once every service answers and a warm-up has passed, each
custos is watched for the same number of ticks twice (quick: 20, full: 60; whole multiples of
the 10-tick /proc cross-check): untraced first (the voluntary context switches of its main
thread, which sleeps only in poll(2): its wake-ups), then under strace, attached to all its
threads (`strace -f -p PID -ttt -y`) and detached afterwards.

Counts, not times, are the figures: a syscall count does not depend on the machine's load (CPU
time does; the driver's idle phase measures that against Monit). A pass is one 1 s tick (one
`interval`); a wake-up is one return of the loop's poll(2). The counted window runs from the
end of one tick's poll timeout to the end of a later one, so it holds whole ticks. Reads of the
clock go through the vDSO and are not syscalls: strace does not see them.

Goals: with no checks, at most 1 wake-up per interval (custos's own, traced and aligned on
ticks; a wake-up for a deadline between ticks, such as a write the flash budget deferred since
the start, or for the timerfd or signalfd, is shown apart); the syscalls per idle pass per
service are stated. With --cpu-from (the driver's JSON of the same
run), the idle CPU ratios against Monit are repeated as goals: >= 10x with 20 HTTP checks,
>= 100x for supervision alone. The table goes to stdout, the JSON to
target/bench/syscalls-<mode>.json. As for the flash-write budget, the exit status is 1 when a
count goal is missed (the wake-ups); the CPU ratios are reported MET/MISSED but, like the
driver's goals (times on a shared machine), do not change the exit status.
"""
import argparse
import collections
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402  (the services, configs and supervisors of the main bench)

ROOT = driver.ROOT
OUT = driver.OUT
SERVICES = 20
INTERVAL_S = 1.0  # the bench config's interval
WARMUP_S = 15.0
TICK_JITTER_S = 0.25  # how far from the ticks' phase a tick's poll may end (strace slows it)
# "1234  1796138531.926020 openat(AT_FDCWD</x>, "/proc/1789/stat", O_RDONLY) = 17</proc/1789/stat>"
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. (\w+) resumed>(.*)|(\w+)\((.*))$")
FD_ARG = re.compile(r"^(-?\d+)<([^>]*)>")
RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:<([^>]*)>)?(.*)$")

# Why each syscall is on the idle path (read from src/supervisor/, src/procs/, src/checks/;
# keys are (syscall, what it acts on)).
REASONS = {
    ("poll", ""): "the loop's one blocking call: signalfd, wall-clock timerfd, control socket, "
                  "the epoll fd (every pidfd and output pipe, registered once), the check sockets in flight",
    ("poll", "other"): "output_keeper sweep: a zero-timeout poll of a retired pipe for its hang-up, on a tick",
    ("poll", "pidfds"): "Supervisor::watch_instances: one poll with a zero timeout of the pidfds whose "
                        "process's group and session were just read: a reading counts only if it has not exited",
    ("getpgid", ""): "Supervisor::watch_instances: the process group of each pidfd-watched running process "
                     "that is not a session leader (a session leader can change neither), every tick",
    ("getsid", ""): "Supervisor::watch_instances: its session, when its group is not the one it had",
    ("epoll_wait", "eventpoll"): "Supervisor::watched_ready: which registered pidfds and output pipes are ready, "
                                 "when the loop's poll says the epoll fd is",
    ("wait4", ""): "Supervisor::pass reaps (waitpid(-1, WNOHANG)) in a pass whose signalfd read gave SIGCHLD",
    ("openat", "/proc/PID/stat"): "procs::stat_fields (open, one read into a stack buffer, close): "
                                  "procs::check_pin (every 10th tick: the pidfd pin's cross-check); "
                                  "Svc::watch_instance for a pin without a pidfd",
    ("statx", "/proc/PID/stat"): "std::fs::read sizes its buffer from the file (size 0 on /proc); "
                                 "before custos read stat into a fixed buffer",
    ("read", "/proc/PID/stat"): "procs::stat_fields: the whole line in one read (std::fs::read, "
                                "before, made 6 for one ~300-byte line)",
    ("close", "/proc/PID/stat"): "end of procs::stat_fields",
    ("socket", ""): "checks::NetProbe::start: a non-blocking TCP socket per HTTP check",
    ("connect", "socket"): "NetProbe::start: connect(127.0.0.1:PORT) = EINPROGRESS (the handshake is over all the same)",
    ("getsockopt", "socket"): "NetProbe::ready: SO_ERROR once POLLOUT says the connect ended (only when send() said EAGAIN)",
    ("sendto", "socket"): "NetProbe::start: the request (GET PATH HTTP/1.0), MSG_NOSIGNAL, right after connect()",
    ("read", "socket"): "NetProbe::ready: the response; the verdict at the read that decides it (no read for the EOF)",
    ("close", "socket"): "the probe is dropped when the check is done",
    ("futex", ""): "writer threads (record, boots) waiting for work",
    ("accept4", "socket"): "the control socket: a client connected (not idle)",
    ("recvfrom", "socket"): "a control client's request (not idle)",
}


def classify(name, args):
    """(syscall, what it acts on): /proc paths with the PID taken out, sockets, pipes..."""
    what = ""
    if name in ("openat", "open", "newfstatat", "readlink", "readlinkat"):
        m = re.search(r'"([^"]*)"', args)
        if m:
            what = m.group(1)
    if not what:
        m = FD_ARG.match(args)
        if m:
            what = m.group(2)
    what = re.sub(r"^/proc/\d+(/|$)", r"/proc/PID\1", what)
    what = re.sub(r"^(socket|pipe):\[\d+\]$", r"\1", what)
    what = re.sub(r"^anon_inode:\[?([\w-]+)\]?$", r"\1", what)
    if what.startswith("/") and not what.startswith("/proc/"):
        what = "FILE " + os.path.basename(what)
    return name, what


def parse(path):
    """The syscalls in the order they began: (tid, t, name, what, result text, args). A call
    strace splits ("<unfinished ...>", then "<... name resumed>") is joined at its start."""
    calls = []
    pending = {}  # tid -> index in calls of its unfinished call
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            tid = int(m.group(1))
            if m.group(3):
                i = pending.pop(tid, None)
                if i is not None:
                    tid_, t, name, what, _, args = calls[i]
                    args = args[:args.rindex("<unfinished ...>")] + m.group(4)
                    calls[i] = (tid_, t, name, what, result_of(args), args)
                continue
            t, name, args = float(m.group(2)), m.group(5), m.group(6)
            if args.endswith("<unfinished ...>"):
                pending[tid] = len(calls)
            calls.append((tid, t, name, poll_kind(args) if name == "poll" else classify(name, args)[1],
                          result_of(args), args))
    return calls


def poll_kind(args):
    """"" for the loop's poll; "pidfds" for the zero-timeout poll of nothing but pidfds that
    vouches for the groups and sessions just read (it never waits: no wake-up); "other" for
    another zero-timeout poll of the main thread (the keeper's retired pipes, on a tick)."""
    if not ZERO_TIMEOUT.search(args):
        return ""
    fds = POLL_FD.findall(args)
    if fds and all("pidfd" in f for f in fds):
        return "pidfds"
    return "" if "signalfd" in args else "other"


ZERO_TIMEOUT = re.compile(r"\], \d+, 0\)\s+=")
POLL_FD = re.compile(r"\{fd=-?\d+<([^>]*)>")


def result_of(args):
    r = RESULT.search(args)
    return r.group(1) + r.group(3) if r else "unfinished"


def poll_ready(args):
    """The classes of the fds a poll returned ready: "socket POLLIN", "signalfd"..."""
    fds = {}
    for m in re.finditer(r"\{fd=(\d+)<([^>]*)>", args):
        fds[m.group(1)] = classify("x", f"{m.group(1)}<{m.group(2)}>")[1]
    ready = re.search(r"\)\s+=\s+\d+ \(\[(.*)\]\)$", args)
    if not ready:
        return []
    out = []
    for m in re.finditer(r"\{fd=(\d+), revents=(\w+)", ready.group(1)):
        what = fds.get(m.group(1), "?")
        out.append(f"{what} {m.group(2)}" if what == "socket" else what)
    return out


def count(calls, main_tid, services, ticks_wanted):
    """Counts over whole ticks: from the end of one poll timeout (a tick's deadline) to the end
    of the one ticks_wanted ticks later. Other deadlines (a deferred write) also end a poll by
    its timeout: the number of ticks comes from the time between the two, not from timeouts."""
    main = [c for c in calls if c[0] == main_tid]
    timeouts = [i for i, c in enumerate(main) if c[2:4] == ("poll", "") and c[4].startswith("0")]
    if len(timeouts) < 3:
        raise RuntimeError(f"only {len(timeouts)} poll timeouts traced: no whole ticks to count")
    # Ticks are aligned on the interval: their polls end at one phase of the second. A poll
    # that times out at another phase ended for another deadline (a write deferred by the
    # flash budget, say).
    phase = {i: (main[min(i + 1, len(main) - 1)][1]) % INTERVAL_S for i in timeouts}

    def apart(a, b):
        d = abs(a - b) % INTERVAL_S
        return min(d, INTERVAL_S - d)
    ref = max(phase.values(), key=lambda p: sum(apart(p, q) < TICK_JITTER_S for q in phase.values()))
    tick_polls = [i for i in timeouts if apart(phase[i], ref) < TICK_JITTER_S]
    if len(tick_polls) < 3:
        raise RuntimeError(f"only {len(tick_polls)} tick polls traced: no whole ticks to count")
    first = tick_polls[0]
    target = main[first][1] + ticks_wanted * INTERVAL_S
    last = min(tick_polls[1:], key=lambda i: abs(main[i][1] - target))
    window = main[first + 1:last + 1]
    t0, t1 = main[first][1], main[last][1]
    ticks = round((t1 - t0) / INTERVAL_S)
    if ticks < 2 or abs((t1 - t0) - ticks * INTERVAL_S) > 0.3 * INTERVAL_S:
        raise RuntimeError(f"no whole ticks: {t1 - t0:.3f} s between the window's poll timeouts")
    between = {id(main[i]) for i in timeouts if i not in set(tick_polls)}
    by_kind = collections.Counter((c[2], c[3]) for c in window)
    polls = [c for c in window if c[2:4] == ("poll", "")]
    woke_by = collections.Counter()
    ready_fds = 0
    for c in polls:
        ready = poll_ready(c[5])
        ready_fds += len(ready)
        if ready:
            woke_by[" + ".join(sorted(set(ready)))] += 1
        else:
            woke_by["deadline between ticks" if id(c) in between else "tick"] += 1
    others = collections.Counter()
    for c in calls:
        if c[0] != main_tid and t0 < c[1] <= t1:
            others[(c[2], c[3])] += 1
    total = sum(by_kind.values())
    seconds = t1 - t0
    return {
        "ticks": ticks, "seconds": round(seconds, 3), "services": services,
        "wakeups": len(polls), "wakeups_per_s": len(polls) / seconds,
        "wakeups_per_tick": len(polls) / ticks,
        "ready_fds_per_wakeup": ready_fds / max(1, len(polls)),
        "woke_by": dict(woke_by),
        "syscalls": total, "per_tick": total / ticks, "per_tick_per_service": total / ticks / services,
        "by_kind": {f"{k[0]} {k[1]}".strip(): v for k, v in by_kind.most_common()},
        "other_threads": {f"{k[0]} {k[1]}".strip(): v for k, v in others.most_common()},
        "other_threads_syscalls": sum(others.values()),
    }


def voluntary_switches(pid):
    """Voluntary context switches of the main thread: its sleeps, one per poll that waited."""
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/task/{pid}/status: no voluntary_ctxt_switches")


class Run:
    def __init__(self, label, checks, work, ports, custos, window):
        self.label, self.checks, self.window = label, checks, window
        self.sup = driver.Supervisor("custos", label, work, SERVICES, ports, custos_bin=custos,
                                     checks=checks)
        self.trace = os.path.join(self.sup.root, "strace.out")
        self.result = None
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported in the table; the other run goes on
            self.error = f"{type(e).__name__}: {e}"

    def _run(self):
        sup = self.sup
        sup.start()
        sup.wait_all_up(90)
        driver.sleep(WARMUP_S)
        pids0 = {s.name: s.pid() for s in sup.services}
        marks0 = {s.name: s.marks_size() for s in sup.services}
        # Wake-ups untraced first: how fds are batched into one wake-up depends on timing, and
        # strace slows custos. The main thread sleeps only in poll(2), so each of its voluntary
        # context switches is one wake-up.
        v0, t0 = voluntary_switches(sup.pid), time.monotonic()
        driver.sleep(self.window * INTERVAL_S)
        v1, t1 = voluntary_switches(sup.pid), time.monotonic()
        untraced = {"seconds": round(t1 - t0, 3), "wakeups": v1 - v0,
                    "wakeups_per_s": (v1 - v0) / (t1 - t0)}
        tasks = sorted(os.listdir(f"/proc/{sup.pid}/task"))
        names = {}
        for t in tasks:
            with open(f"/proc/{sup.pid}/task/{t}/comm") as f:
                names[int(t)] = f.read().strip()
        st = subprocess.Popen(["strace", "-f", "-qq", "-ttt", "-y", "-s", "64", "-o", self.trace,
                               "-p", str(sup.pid)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # One tick more than the window on each side: the count starts and ends at a tick.
            driver.sleep(self.window + 2 * INTERVAL_S + 0.5)
        finally:
            st.send_signal(signal.SIGINT)  # strace detaches; custos runs on untouched
            try:
                _, err = st.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                st.kill()
                _, err = st.communicate(timeout=10)
        if st.returncode not in (0, 130, -signal.SIGINT) and not os.path.exists(self.trace):
            raise RuntimeError(f"strace failed ({st.returncode}): {err.decode(errors='replace')}")
        # A start or a PID change in the window would count a restart, not an idle pass.
        events = [s.name for s in sup.services
                  if s.pid() != pids0[s.name] or s.marks_size() != marks0[s.name]]
        calls = parse(self.trace)
        r = count(calls, sup.pid, SERVICES, int(self.window))
        r["untraced"] = untraced
        r["threads"] = {str(k): v for k, v in names.items()}
        r["restarts_in_window"] = events
        r["checks"] = SERVICES if self.checks else 0
        self.result = r

    def stop(self):
        self.sup.stop()


def cpu_goals(path):
    """The idle CPU ratios against Monit from the driver's JSON of the same run."""
    out = []
    try:
        with open(path) as f:
            R = json.load(f)
    except (OSError, ValueError) as e:
        return [("idle CPU ratios against Monit", None, f"no driver results ({e})")]
    for what, key, goal in (("idle CPU with 20 HTTP checks >= 10x below Monit's", "idle", 10),
                            ("idle CPU, supervision alone, >= 100x below Monit's", "idlenc", 100)):
        try:
            c, m = R["custos"][key]["cpu_ms"], R["monit"][key]["cpu_ms"]
            w = R["custos"][key]["cpu_window_s"]
            out.append((what, m / c >= goal,
                        f"{c:.1f} ms vs {m:.1f} ms over {w:.0f} s ({m / c:.1f}x)"))
        except (KeyError, TypeError, ZeroDivisionError):
            out.append((what, None, "not measured in this run"))
    return out


def report(runs, mode, window, cpu_from):
    rows = ["| run | ticks counted | wake-ups / s (traced) | wake-ups / s (untraced) "
            "| ready fds per wake-up | syscalls / tick | syscalls / tick / service "
            "| other threads' syscalls |",
            "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        x = r.result
        if x is None:
            rows.append(f"| {r.label} | failed: {r.error} | | | | | | |")
            continue
        rows.append(f"| {SERVICES} services, {x['checks']} HTTP checks | {x['ticks']} "
                    f"({x['seconds']:.1f} s) | {x['wakeups_per_s']:.2f} | "
                    f"{x['untraced']['wakeups_per_s']:.2f} | "
                    f"{x['ready_fds_per_wakeup']:.2f} | {x['per_tick']:.1f} | "
                    f"{x['per_tick_per_service']:.2f} | {x['other_threads_syscalls']} |")
    kinds = ["", "By kind, per tick (per tick per service in brackets):", "",
             "| syscall on | " + " | ".join(f"{SERVICES} svc, {r.result['checks']} checks"
                                            for r in runs if r.result) + " | why |",
             "|---|" + "---|" * sum(1 for r in runs if r.result) + "---|"]
    keys = []
    for r in runs:
        if r.result:
            keys += [k for k in r.result["by_kind"] if k not in keys]
    for k in keys:
        cells = []
        for r in runs:
            if r.result:
                n = r.result["by_kind"].get(k, 0) / r.result["ticks"]
                cells.append(f"{n:.2f} ({n / SERVICES:.3f})" if n else "—")
        name, _, what = k.partition(" ")
        why = REASONS.get((name, what)) or REASONS.get((name, "")) or ""
        kinds.append(f"| {k} | " + " | ".join(cells) + f" | {why} |")
    woke = ["", "Wake-ups by what was ready (per tick):", ""]
    for r in runs:
        if r.result:
            parts = ", ".join(f"{k} {v / r.result['ticks']:.2f}"
                              for k, v in sorted(r.result["woke_by"].items(), key=lambda kv: -kv[1]))
            woke.append(f"- {SERVICES} services, {r.result['checks']} checks: {parts}")
            if r.result["other_threads"]:
                woke.append(f"  other threads ({', '.join(v for k, v in r.result['threads'].items() if k != str(r.sup.pid))}):"
                            f" {json.dumps(r.result['other_threads'])}")
            if r.result["restarts_in_window"]:
                woke.append(f"  NOTE: starts or PID changes in the window: {r.result['restarts_in_window']}")
    goals = []
    nc = next((r.result for r in runs if r.result and r.result["checks"] == 0), None)
    wc = next((r.result for r in runs if r.result and r.result["checks"]), None)
    if nc:
        u = nc["untraced"]["wakeups_per_s"] * INTERVAL_S
        # Judged on the traced count, aligned on ticks and attributed: a wake-up for the wall
        # clock's timerfd (someone set this host's clock) or the signalfd comes from outside.
        outside = sum(v for k, v in nc["woke_by"].items()
                      if "timerfd" in k or "signalfd" in k)
        between = nc["woke_by"].get("deadline between ticks", 0)
        own = (nc["wakeups"] - outside - between) / nc["ticks"]
        goals.append(("wake-ups with no checks <= 1 per interval", own <= 1.0 + 1e-9,
                      f"{own:.2f} per {INTERVAL_S:.0f} s tick traced"
                      + (f"; {between} more in {nc['ticks']} ticks for a deadline between ticks "
                         "(writes the flash budget deferred since the start: see the other "
                         "threads)" if between else "")
                      + (f"; {outside} more from outside (clock set, signal)" if outside else "")
                      + f"; {u:.2f} untraced (voluntary context switches over "
                      f"{nc['untraced']['seconds']:.0f} s, not aligned on ticks)"))
        goals.append(("syscalls per idle pass per service, supervision alone (stated)", True,
                      f"{nc['per_tick_per_service']:.2f} ({nc['per_tick']:.1f} per tick for {SERVICES})"))
    else:
        goals.append(("wake-ups with no checks <= 1 per interval", False, "not measured"))
    if wc:
        goals.append(("syscalls per idle pass per service, one HTTP check each (stated)", True,
                      f"{wc['per_tick_per_service']:.2f} ({wc['per_tick']:.1f} per tick for {SERVICES}); "
                      f"{wc['wakeups_per_tick']:.2f} wake-ups per tick traced, "
                      f"{wc['untraced']['wakeups_per_s'] * INTERVAL_S:.2f} untraced"))
    if cpu_from:
        goals += cpu_goals(cpu_from)
    lines = []
    for name, ok, detail in goals:
        word = "MET" if ok else ("NOT MEASURED" if ok is None else "MISSED")
        if "(stated)" in name:
            word = "STATED"
        lines.append(f"- {word}: {name}: {detail}")
    head = (f"custos's syscalls while idle ({mode}; strace -f -p over {window:.0f} ticks of "
            f"{INTERVAL_S:.0f} s after a {WARMUP_S:.0f} s warm-up; counts, not times)\n")
    # The counts decide the exit status, as the flash-write budget's do; the CPU ratios are
    # times on a shared machine and are reported, as the driver reports its goals.
    ok = all(g[1] is not False for g in goals if not g[0].startswith("idle CPU"))
    return head + "\n".join(rows + kinds + woke) + "\n\n" + "\n".join(lines), ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 ticks counted (CI); full: 60")
    ap.add_argument("--custos", default=os.path.join(ROOT, "target", "release", "custos"))
    ap.add_argument("--window", type=float, help="ticks counted per run (overrides the mode)")
    ap.add_argument("--cpu-from", help="the driver's JSON of this run: its idle CPU ratios")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (and the traces)")
    a = ap.parse_args()
    for tool in ("strace", "busybox"):
        if not shutil.which(tool):
            print(f"syscalls: {tool} is needed (scripts/bench installs it)", file=sys.stderr)
            return 1
    mode = "quick" if a.quick else "full"
    window = a.window or (20.0 if a.quick else 60.0)
    work = tempfile.mkdtemp(prefix="custos-syscalls-")
    ports = set()
    custos = os.path.abspath(a.custos)
    runs = [Run("custos-syscalls-checks", True, work, ports, custos, window),
            Run("custos-syscalls-nocheck", False, work, ports, custos, window)]
    print(f"syscalls: {mode}: {SERVICES} services with and without HTTP checks, side by side; "
          f"{window:.0f} ticks traced after a {WARMUP_S:.0f} s warm-up", file=sys.stderr)

    def on_term(sig, _frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    interrupted = False
    try:
        threads = [threading.Thread(target=r.run, daemon=True) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        interrupted = True
        driver.ABORT.set()
    finally:
        driver.ABORT.set()
        for r in runs:
            try:
                r.stop()
            except Exception as e:
                print(f"syscalls: stopping {r.label}: {e}", file=sys.stderr)
        driver.sweep(work)
        if a.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    text, ok = report(runs, mode, window, a.cpu_from)
    print(text)
    R = {"mode": mode, "window_ticks": window, "warmup_s": WARMUP_S, "services": SERVICES,
         "interval_s": INTERVAL_S, "runs": {r.label: r.result or {"error": r.error} for r in runs},
         "report": text}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"syscalls-{mode}.json"), "w") as f:
        json.dump(R, f, indent=1)
    print(f"\nJSON: {os.path.relpath(os.path.join(OUT, f'syscalls-{mode}.json'), ROOT)}")
    print("goals " + ("met" if ok and not interrupted else "NOT met"))
    return 0 if ok and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())

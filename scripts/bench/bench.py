#!/usr/bin/env python3
"""Upgrades under load, side by side with what users would use instead.

Driven by scripts/bench.sh (which installs wrk, gnuplot and Server::Starter, builds the
binaries and the load client, then runs this). Loopback only; every process it starts is
tracked by pid and stopped on exit.

For each workload (demo worker startup delay), contender and mode (close, keepalive) it
alternates baseline slices (no upgrade) and upgrade slices (an upgrade every --interval
seconds) of --slice seconds each, in the order B U U B B U U B ..., until each kind has run
--duration seconds, and compares the medians: background load on a shared machine moves
both kinds alike. Then it records 100 ms timelines with the load client for this supervisor
and for naive restart, and draws them with gnuplot.
"""
import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ---------------------------------------------------------------------------------------
# process bookkeeping: everything we start is recorded here and stopped by pid on exit

_procs = {}  # pid -> (Popen or None, description)
_procs_lock = threading.Lock()
_extra_pids = set()  # workers started by a launcher, until their exit is seen


def track(p, what):
    with _procs_lock:
        _procs[p.pid] = (p, what)
    return p


def untrack(p):
    with _procs_lock:
        _procs.pop(p.pid, None)


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid, children=False, parent=None):
    """utime+stime (+cutime+cstime) of a process in seconds; 0 if it is gone or, with parent,
    if it is not that parent's child (a recycled pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    if parent is not None and int(rest[1]) != parent:
        return 0.0
    ticks = int(rest[11]) + int(rest[12]) + ((int(rest[13]) + int(rest[14])) if children else 0)
    return ticks / TICK


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, p=None, grace=5.0):
    """TERM, wait up to grace seconds, then KILL. Only pids we started or that our launchers
    started (recorded from their logs)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        if p is not None and p.poll() is not None:
            return
        if p is None and not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if p is not None:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def cleanup_all():
    with _procs_lock:
        items = list(_procs.items())
    for pid, (p, _what) in items:
        if p is not None and p.poll() is None:
            stop_pid(pid, p)
        untrack(p) if p is not None else None
    for pid in list(_extra_pids):
        if is_our_worker(pid):
            stop_pid(pid)
        _extra_pids.discard(pid)


def is_our_worker(pid):
    """Alive, and still the demo worker a launcher of ours started (not a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"demo_worker" in f.read()
    except OSError:
        return False


def on_signal(signum, _frame):
    log(f"interrupted by signal {signum}: stopping everything we started")
    cleanup_all()
    sys.exit(130)


# ---------------------------------------------------------------------------------------

T0 = time.time()


def log(msg):
    el = time.time() - T0
    print(f"bench [{int(el) // 60:02d}:{int(el) % 60:02d}] {msg}", flush=True)


def free_port():
    """A free loopback port outside the ephemeral range (32768-60999), by bind test."""
    import random

    for _ in range(200):
        port = random.randint(20000, 29999)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise RuntimeError("no free port found in 20000-29999")


def fmt_dur(ms):
    return f"{ms}ms"


SUP_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")


class Worker:
    """spawn: started; ready: as the launcher judges it; exit: as the launcher saw it (reaped);
    own_exit: the worker's own last log line (start_server reaps late: it sleeps --interval)."""
    __slots__ = ("pid", "spawn", "ready", "exit", "own_exit", "requests")

    def __init__(self, pid):
        self.pid, self.spawn, self.ready, self.exit, self.own_exit, self.requests = pid, None, None, None, None, None

    def gone(self):
        ts = [t for t in (self.exit, self.own_exit) if t is not None]
        return min(ts) if ts else None


class Launcher:
    """Common part: a log pipe read by a thread that stamps every line, and a worker table
    (pid -> spawn, ready, exit times) filled from the log lines."""

    key = ""
    label = ""

    def __init__(self, args, port, startup_ms, logpath):
        self.args, self.port, self.startup_ms = args, port, startup_ms
        self.cv = threading.Condition()
        self.workers = {}
        self.order = []  # pids in spawn order
        self.signals = []  # epoch seconds of every upgrade request
        self.notes = []
        self.logf = open(logpath, "w")
        self.rfd, self.wfd = os.pipe()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def worker(self, pid):
        w = self.workers.get(pid)
        if w is None:
            w = self.workers[pid] = Worker(pid)
            self.order.append(pid)
            _extra_pids.add(pid)
        return w

    def exited(self, pid, t):
        self.worker(pid).exit = t
        _extra_pids.discard(pid)

    def _read(self):
        with os.fdopen(self.rfd, "rb", buffering=0) as f:
            buf = b""
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                stamp = time.time()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                with self.cv:
                    for raw in lines:
                        line = raw.decode(errors="replace")
                        if not self.logf.closed:
                            self.logf.write(f"{stamp:.3f} {line}\n")
                        self._parse_common(stamp, line)
                        self.parse(stamp, line)
                    if not self.logf.closed:
                        self.logf.flush()
                    self.cv.notify_all()

    def _parse_common(self, stamp, line):
        m = re.search(r"demo_worker pid=(\d+) gen=\S+ drained connections=\d+ requests=(\d+)", line)
        if m:
            self.worker(int(m.group(1))).requests = int(m.group(2))
        m = re.search(r"demo_worker pid=(\d+) gen=\S+ exit code=", line)
        if m:
            self.worker(int(m.group(1))).own_exit = stamp
            _extra_pids.discard(int(m.group(1)))

    def parse(self, stamp, line):
        raise NotImplementedError

    def env(self):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith(("LISTEN_", "NOTIFY_SOCKET", "SERVER_STARTER_", "SUPERVISOR_", "EINHORN_")):
                del e[k]
        return e

    def popen(self, cmd, what):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.wfd, stderr=self.wfd, env=self.env(),
                             start_new_session=True, cwd=ROOT)
        return track(p, what)

    def wait_for(self, pred, timeout):
        with self.cv:
            return self.cv.wait_for(pred, timeout)

    def serving(self):
        """Pids alive and ready."""
        return [pid for pid in self.order if self.workers[pid].ready and self.workers[pid].gone() is None]

    def quiescent(self):
        """The last upgrade request is answered: one worker alive, ready, spawned after it."""
        alive = [pid for pid in self.order if self.workers[pid].gone() is None]
        if len(alive) != 1:
            return False
        w = self.workers[alive[0]]
        last = self.signals[-1] if self.signals else 0
        return w.ready is not None and w.spawn is not None and w.spawn >= last - 0.002

    def close_log(self):
        self.reader.join(timeout=5)  # EOF once the launcher and every worker are gone
        with self.cv:
            self.logf.close()

    def cpu_seconds(self):
        """CPU time the server side has used so far: the launcher itself, the workers it has
        reaped, and its live (or not yet reaped) workers. Robust to background load, unlike
        requests per second."""
        total = proc_cpu(self.proc.pid, children=True)
        for pid in list(self.order):
            total += proc_cpu(pid, parent=self.proc.pid)
        return total


class HupLauncher(Launcher):
    """A parent that upgrades on SIGHUP and stops on SIGTERM: this supervisor, start_server."""

    def upgrade(self):
        with self.cv:
            self.signals.append(time.time())
        try:
            os.kill(self.proc.pid, signal.SIGHUP)
        except ProcessLookupError:  # stopped under us (interrupted): nothing to upgrade
            pass

    def stop(self):
        stop_pid(self.proc.pid, self.proc, grace=15)
        untrack(self.proc)


class SupervisorLauncher(HupLauncher):
    def __init__(self, args, port, startup_ms, logpath, ready):
        super().__init__(args, port, startup_ms, logpath)
        self.ready_mode = ready
        self.key = f"sv-{ready}"
        self.label = f"supervisor --ready {ready}"
        self.proc = None

    def start(self):
        cmd = [self.args.supervisor, "--listen", f"127.0.0.1:{self.port}", "--drain-timeout", "10s"]
        cmd += ["--ready", self.ready_mode]  # say it: the default is auto
        cmd += ["--", self.args.worker, "--startup-delay", fmt_dur(self.startup_ms)]
        self.cmdline = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
        self.proc = self.popen(cmd, self.label)
        os.close(self.wfd)
        if not self.wait_for(lambda: self.serving(), 30):
            raise RuntimeError(f"{self.label}: no worker became ready in 30 s (see the log)")

    def _t(self, stamp, line):
        m = SUP_TS.match(line)
        if not m:
            return stamp
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        return t if abs(t - stamp) < 2 else stamp  # a different time zone: fall back to our stamp

    def parse(self, stamp, line):
        m = re.search(r"supervisor\[\d+\]: (spawned|ready|exited) gen=\d+ pid=(\d+)", line)
        if m:
            pid, t = int(m.group(2)), self._t(stamp, line)
            if m.group(1) == "exited":
                self.exited(pid, t)
            else:
                setattr(self.worker(pid), "spawn" if m.group(1) == "spawned" else "ready", t)
        elif "upgrade failed" in line or "warning" in line.split("supervisor[")[0]:
            self.notes.append(line)


class StarterLauncher(HupLauncher):
    key = "starter"
    label = "Server::Starter"
    first = None

    def start(self):
        cmd = ["start_server", f"--port=127.0.0.1:{self.port}", "--signal-on-hup=TERM", "--signal-on-term=TERM",
               "--", self.args.worker, "--startup-delay", fmt_dur(self.startup_ms)]
        self.cmdline = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
        self.last_spawned = None
        self.proc = self.popen(cmd, self.label)
        os.close(self.wfd)
        if not self.wait_for(lambda: self.serving(), 30):
            raise RuntimeError(f"{self.label}: no worker became ready in 30 s (see the log)")

    def parse(self, stamp, line):
        m = re.match(r"starting new worker (\d+)", line)
        if m:
            w = self.worker(int(m.group(1)))
            w.spawn = stamp
            if self.last_spawned is None:  # the first one: start_server says nothing more
                self.first = w.pid
            self.last_spawned = w.pid
            return
        if line.startswith("new worker is now running") and self.last_spawned:
            self.workers[self.last_spawned].ready = stamp
            return
        m = re.match(r"(?:old )?worker (\d+) died", line)
        if m:
            self.exited(int(m.group(1)), stamp)
            return
        m = re.match(r"demo_worker pid=(\d+) gen=\S+ ready ", line)
        if m and int(m.group(1)) == self.first:
            self.workers[self.first].ready = stamp
        if "failed to start" in line or "died unexpectedly" in line:
            self.notes.append(line)


class NaiveLauncher(Launcher):
    """What people do without a supervisor: the worker binds the port itself; an upgrade
    stops it (SIGTERM, its graceful drain), waits for it to exit, starts the new one."""

    key = "naive"
    label = "naive restart"

    def start(self):
        self.cmd = [self.args.worker, "--listen", f"127.0.0.1:{self.port}", "--startup-delay", fmt_dur(self.startup_ms)]
        self.cmdline = "kill -TERM $old; wait $old; " + " ".join(
            os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in self.cmd)
        self.queue = []
        self.reaped_cpu = 0.0
        self.qcv = threading.Condition()
        self.stopping = False
        self.current = self._spawn()
        self.restarter = threading.Thread(target=self._restarter, daemon=True)
        self.restarter.start()
        if not self.wait_for(lambda: self.serving(), 30):
            raise RuntimeError(f"{self.label}: the worker did not become ready in 30 s (see the log)")

    def _spawn(self):
        p = self.popen(self.cmd, "demo_worker (naive)")
        with self.cv:
            self.worker(p.pid).spawn = time.time()
        return p

    def parse(self, stamp, line):
        m = re.match(r"demo_worker pid=(\d+) gen=\S+ ready ", line)
        if m:
            self.worker(int(m.group(1))).ready = stamp
        if "cannot bind" in line:
            self.notes.append(line)

    def _restarter(self):
        while True:
            with self.qcv:
                self.qcv.wait_for(lambda: self.queue or self.stopping)
                if self.stopping:
                    return
                self.queue.pop(0)
            old = self.current
            try:
                os.kill(old.pid, signal.SIGTERM)
                _, status, ru = os.wait4(old.pid, 0)
            except (ProcessLookupError, ChildProcessError):  # stopped under us (interrupted)
                return
            old.returncode = os.waitstatus_to_exitcode(status)
            with self.cv:
                self.exited(old.pid, time.time())
                self.reaped_cpu += ru.ru_utime + ru.ru_stime
            untrack(old)
            self.current = self._spawn()

    def cpu_seconds(self):
        with self.cv:
            return self.reaped_cpu + proc_cpu(self.current.pid, parent=os.getpid())

    def upgrade(self):
        with self.cv:
            self.signals.append(time.time())
        with self.qcv:
            self.queue.append(1)
            self.qcv.notify_all()

    def stop(self):
        self.wait_for(self.quiescent, 10)
        with self.qcv:
            self.stopping = True
            self.qcv.notify_all()
        self.restarter.join(timeout=10)
        stop_pid(self.current.pid, self.current)
        untrack(self.current)
        os.close(self.wfd)


def make_launcher(key, args, port, startup_ms, logpath):
    if key == "sv-notify":
        return SupervisorLauncher(args, port, startup_ms, logpath, "notify")
    if key == "sv-delay":
        return SupervisorLauncher(args, port, startup_ms, logpath, "delay")
    if key == "naive":
        return NaiveLauncher(args, port, startup_ms, logpath)
    if key == "starter":
        return StarterLauncher(args, port, startup_ms, logpath)
    raise ValueError(key)


LABELS = {"sv-notify": "supervisor `--ready notify`", "sv-delay": "supervisor `--ready delay` (1 s)",
          "naive": "naive restart", "starter": "Server::Starter"}

# ---------------------------------------------------------------------------------------
# load


def parse_wrk(text):
    r = {"requests": 0, "seconds": 0.0, "rps": 0.0, "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m.group(3)]
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["connect"], r["read"], r["write"], r["timeout"] = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        r["latency_avg"], r["latency_max"] = m.group(1), m.group(3)
    return r


ERROR_KINDS = ("connect", "read", "write", "timeout", "non2xx")


def upgrade_schedule(launcher, seconds, interval, stop_evt):
    """Sends an upgrade request every `interval` seconds, the first at interval/2."""
    t0 = time.time()
    k = 0
    while True:
        at = t0 + interval / 2 + k * interval
        if at > t0 + seconds - 0.05:
            return
        delay = at - time.time()
        if delay > 0 and stop_evt.wait(delay):
            return
        launcher.upgrade()
        k += 1


def run_slice(args, launcher, mode, kind, seconds, outprefix):
    cmd = ["wrk", "-t1", f"-c{args.conns}", f"-d{int(seconds)}s", "--timeout", "2s"]
    if mode == "close":
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{launcher.port}/")
    n_sig = len(launcher.signals)
    stop_evt = threading.Event()
    cpu0 = launcher.cpu_seconds()
    with open(outprefix + ".txt", "w") as out:
        p = track(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True), "wrk")
        sched = None
        if kind == "U":
            sched = threading.Thread(target=upgrade_schedule, args=(launcher, seconds, args.interval, stop_evt))
            sched.start()
        try:
            p.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            stop_pid(p.pid, p)
        untrack(p)
        stop_evt.set()
        if sched:
            sched.join()
    settled = True
    if kind == "U":
        settled = launcher.wait_for(launcher.quiescent, 30)
        if not settled:
            launcher.notes.append(f"upgrades not settled 30 s after a slice ({outprefix})")
    cpu1 = launcher.cpu_seconds()  # after the settle: the last upgrade's whole cost counts
    with open(outprefix + ".txt") as f:
        r = parse_wrk(f.read())
    r["server_cpu_s"] = cpu1 - cpu0
    r["signals"] = launcher.signals[n_sig:]
    r["settled"] = settled
    return r


def run_timeline(args, launcher, mode, seconds, outprefix):
    cmd = [args.loadclient, "--port", str(launcher.port), "--conns", str(args.conns), "--duration", str(seconds),
           "--mode", mode, "--interval-ms", "100", "--timeout-ms", "2000", "--series", outprefix + ".csv"]
    n_sig = len(launcher.signals)
    stop_evt = threading.Event()
    p = track(subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True), "loadclient")
    sched = threading.Thread(target=upgrade_schedule, args=(launcher, seconds, args.interval, stop_evt))
    sched.start()
    try:
        out, _ = p.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        stop_pid(p.pid, p)
        out = b"{}"
    untrack(p)
    stop_evt.set()
    sched.join()
    launcher.wait_for(launcher.quiescent, 30)
    summary = json.loads(out.decode() or "{}")
    start = summary.get("start_epoch_ms", 0) / 1000.0
    sigs = launcher.signals[n_sig:]
    with open(outprefix + ".signals", "w") as f:
        f.write("# upgrade signals, seconds since the load client started\n")
        for s in sigs:
            f.write(f"{s - start:.3f}\n")
    summary["signals"] = len(sigs)
    summary["distinct_pids"] = len(summary.get("pids", {}))
    return summary


# ---------------------------------------------------------------------------------------
# upgrade accounting


def upgrade_stats(launcher, signals):
    """For each signal: when a worker spawned after it became ready (as the launcher judges
    it), and when the last worker spawned before it was gone (no older code runs any more).
    Also the distinct new pids."""
    ready_ms, gone_ms = [], []
    new_pids = set()
    unanswered = 0
    ws = [launcher.workers[p] for p in launcher.order]
    for s in signals:
        nxt = [w for w in ws if w.spawn is not None and w.spawn >= s - 0.002 and w.ready is not None]
        if nxt:
            w = min(nxt, key=lambda w: w.ready)
            ready_ms.append((w.ready - s) * 1000)
            new_pids.add(w.pid)
        else:
            unanswered += 1
        older = [w for w in ws if w.spawn is not None and w.spawn < s - 0.002 and (w.gone() is None or w.gone() > s)]
        if older and all(w.gone() is not None for w in older):
            gone_ms.append((max(w.gone() for w in older) - s) * 1000)
    return {"ready_ms": ready_ms, "gone_ms": gone_ms, "new_pids": sorted(new_pids), "unanswered": unanswered}


def quartiles(xs):
    if len(xs) < 2:
        return (xs[0], xs[0]) if xs else (0, 0)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[0], q[2])


def med_max(xs):
    if not xs:
        return "–"
    return f"{statistics.median(xs):.0f} / {max(xs):.0f}"


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=20, help="seconds of load per kind (baseline, upgrades)")
    ap.add_argument("--slice", type=int, default=2, help="seconds per alternating slice (whole seconds: wrk -d)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between upgrades")
    ap.add_argument("--timeline", type=float, default=10, help="seconds of each timeline run")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--contenders", default="sv-notify,sv-delay,naive,starter")
    ap.add_argument("--modes", default="keepalive,close")
    ap.add_argument("--startup-delays", default="0,500", help="demo worker startup delays, ms")
    ap.add_argument("--supervisor", default=os.path.join(ROOT, "build", "supervisor"))
    ap.add_argument("--worker", default=os.path.join(ROOT, "build", "demo_worker"))
    ap.add_argument("--loadclient", required=True)
    ap.add_argument("--out", required=True, help="directory for logs, raw outputs, results.json")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    os.makedirs(args.out, exist_ok=True)

    contenders = [c for c in args.contenders.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    delays = [int(d) for d in args.startup_delays.split(",") if d != ""]
    pairs = max(1, round(args.duration / args.slice))
    order = []
    for i in range(pairs):
        order += ["B", "U"] if i % 2 == 0 else ["U", "B"]

    results = []
    timelines = []
    try:
        for delay in delays:
            for key in contenders:
                port = free_port()
                tag = f"{key}-startup{delay}"
                launcher = make_launcher(key, args, port, delay, os.path.join(args.out, f"{tag}.log"))
                with open("/proc/loadavg") as f:
                    load = f.read().split()[0]
                log(f"{LABELS[key]}, worker startup delay {delay} ms, port {port}: starting (load average {load})")
                launcher.start()
                for mode in modes:
                    slices = []
                    for i, kind in enumerate(order):
                        r = run_slice(args, launcher, mode, kind, args.slice, os.path.join(args.out, f"{tag}-{mode}-{i:02d}{kind}"))
                        r["kind"] = kind
                        slices.append(r)
                        errs = sum(r[k] for k in ERROR_KINDS)
                        cpu_us = r["server_cpu_s"] / r["requests"] * 1e6 if r["requests"] else 0
                        log(f"  {mode:9s} slice {i + 1}/{len(order)} {'upgrades' if kind == 'U' else 'baseline'}: "
                            f"{r['rps']:9.0f} req/s, server CPU {cpu_us:5.2f} µs/request, {errs} errors" + (f", {len(r['signals'])} upgrade signals" if kind == "U" else ""))
                    b = [s for s in slices if s["kind"] == "B"]
                    u = [s for s in slices if s["kind"] == "U"]
                    pair_ratios = []
                    for j in range(0, len(order), 2):
                        a, c = slices[j], slices[j + 1]
                        bb, uu = (a, c) if a["kind"] == "B" else (c, a)
                        if bb["rps"] > 0:
                            pair_ratios.append(uu["rps"] / bb["rps"])
                    sigs = [t for s in u for t in s["signals"]]
                    st = upgrade_stats(launcher, sigs)
                    res = {
                        "contender": key, "label": LABELS[key], "startup_ms": delay, "mode": mode, "loadavg": load,
                        "cmdline": launcher.cmdline,
                        "baseline_rps": statistics.median(s["rps"] for s in b),
                        "upgrade_rps": statistics.median(s["rps"] for s in u),
                        "pair_ratios": pair_ratios,
                        "baseline_requests": sum(s["requests"] for s in b),
                        "upgrade_requests": sum(s["requests"] for s in u),
                        "errors": {k: sum(s[k] for s in u) for k in ERROR_KINDS},
                        "baseline_errors": {k: sum(s[k] for s in b) for k in ERROR_KINDS},
                        "signals": len(sigs),
                        "new_pids": st["new_pids"],
                        "new_pids_served": [p for p in st["new_pids"]],
                        "unanswered": st["unanswered"],
                        "ready_ms": st["ready_ms"], "gone_ms": st["gone_ms"],
                        "settled": all(s["settled"] for s in u),
                        "slices": slices,
                    }
                    # the headline ratio: median over the pairs of neighbouring slices, which
                    # cancels background load that changes slower than a pair
                    res["ratio"] = statistics.median(pair_ratios) if pair_ratios else 0
                    res["ratio_iqr"] = quartiles(pair_ratios)
                    # server CPU per request, all slices of a kind together (µs)
                    for kind, ss in (("baseline", b), ("upgrade", u)):
                        req = sum(x["requests"] for x in ss)
                        res[f"{kind}_cpu_us"] = sum(x["server_cpu_s"] for x in ss) / req * 1e6 if req else 0
                    results.append(res)
                    log(f"  {mode}: baseline {res['baseline_rps']:.0f} req/s, with upgrades {res['upgrade_rps']:.0f} "
                        f"(ratio {res['ratio']:.3f}), server CPU/request {res['baseline_cpu_us']:.2f} → "
                        f"{res['upgrade_cpu_us']:.2f} µs, errors {sum(res['errors'].values())}, "
                        f"upgrades {len(st['new_pids'])}/{len(sigs)}, ready {med_max(st['ready_ms'])} ms, "
                        f"old gone {med_max(st['gone_ms'])} ms")
                    if key in ("sv-notify", "naive") and args.timeline > 0:
                        tl = run_timeline(args, launcher, mode, args.timeline,
                                          os.path.join(args.out, f"timeline-{key}-{mode}-startup{delay}"))
                        tl.update({"contender": key, "mode": mode, "startup_ms": delay})
                        timelines.append(tl)
                        log(f"  {mode} timeline ({args.timeline:g} s, load client): {tl.get('ok', 0)} ok, "
                            f"{tl.get('failed', 0)} failed, {tl['signals']} upgrade signals, "
                            f"{tl['distinct_pids']} distinct worker pids served")
                log(f"{LABELS[key]}: stopping")
                launcher.stop()
                # count, for the record, which new pids served requests (their drain line says)
                for res in results:
                    if res["contender"] == key and res["startup_ms"] == delay:
                        res["new_pids_served"] = [p for p in res["new_pids"]
                                                  if (launcher.workers[p].requests or 0) > 0]
                        res["notes"] = launcher.notes[:20]
                launcher.close_log()
                leftover = [p for p in launcher.order if launcher.workers[p].gone() is None and is_our_worker(p)]
                if leftover:
                    log(f"  warning: workers still alive after stop: {leftover}; killing them")
                    for p in leftover:
                        stop_pid(p)
    finally:
        cleanup_all()

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"results": results, "timelines": timelines,
                   "settings": {k: v for k, v in vars(args).items()}}, f, indent=1, default=str)
    table = render(results, timelines, args)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print()
    print(table)


def done(r):
    """Upgrades that completed (distinct new worker pids that became ready after a signal) /
    signals. Signals sent while an upgrade ran merge into the next one (documented behaviour);
    a generation may be replaced before a keep-alive client ever reconnects to it."""
    n, sig = len(r["new_pids"]), r["signals"]
    served = len(r["new_pids_served"])
    notes = []
    if r["unanswered"]:
        notes.append(f"{r['unanswered']} unanswered")
    if len(r["new_pids"]) + r["unanswered"] < sig:
        notes.append(f"{sig - len(r['new_pids']) - r['unanswered']} merged")
    if served < n:
        notes.append(f"{n - served} served no request")
    return f"{n} / {sig}" + (f" ({', '.join(notes)})" if notes else "")


def cpu_cell(r):
    b, u = r["baseline_cpu_us"], r["upgrade_cpu_us"]
    return f"{b:.2f} → {u:.2f} ({(u / b - 1) * 100:+.1f} %)" if b else "–"


def render(results, timelines, args):
    lines = []
    lines.append(f"Load: wrk -t1 -c{args.conns}, {args.duration:g} s per kind in alternating {args.slice:g} s slices "
                 f"(req/s: median slice; ratio: median over pairs of neighbouring slices, interquartile range in "
                 f"brackets); an upgrade every {args.interval:g} s in the upgrade slices. Load average at the "
                 f"start of each contender: {', '.join(sorted({r['loadavg'] for r in results}, key=float))}.")
    lines.append("")
    lines.append("| contender | worker startup | mode | req/s baseline | req/s with upgrades | ratio (IQR) "
                 "| server CPU µs/request, baseline → upgrades | upgrades done / signals "
                 "| connect | read | write | timeout | non-2xx | signal → new ready, ms (median / max) "
                 "| signal → old gone, ms (median / max) |")
    lines.append("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        e = r["errors"]
        lines.append(
            f"| {r['label']} | {r['startup_ms']} ms | {r['mode']} | {r['baseline_rps']:,.0f} | {r['upgrade_rps']:,.0f} "
            f"| {r['ratio'] * 100:.1f} % ({r['ratio_iqr'][0] * 100:.0f}–{r['ratio_iqr'][1] * 100:.0f}) "
            f"| {cpu_cell(r)} | {done(r)} "
            f"| {e['connect']} | {e['read']} | {e['write']} | {e['timeout']} | {e['non2xx']} "
            f"| {med_max(r['ready_ms'])} | {med_max(r['gone_ms'])} |")
    lines.append("")
    lines.append("Per-pair ratios (upgrade slice / neighbouring baseline slice), errors in baseline slices:")
    lines.append("")
    for r in results:
        be = sum(r["baseline_errors"].values())
        pr = ", ".join(f"{x * 100:.1f}" for x in r["pair_ratios"])
        lines.append(f"- {r['label']}, {r['startup_ms']} ms, {r['mode']}: [{pr}] %; baseline errors {be}")
    if timelines:
        lines.append("")
        lines.append(f"Timelines (load client, {args.conns} connections, {args.timeline:g} s, an upgrade every "
                     f"{args.interval:g} s):")
        lines.append("")
        lines.append("| contender | worker startup | mode | ok | failed (connect / read / write / timeout / non-2xx) "
                     "| ok req/s | latency p50 / p99 / max, ms | distinct pids / signals |")
        lines.append("|---|---|---|--:|--:|--:|--:|--:|")
        for t in timelines:
            lat = t.get("latency_ms", {})
            lines.append(
                f"| {LABELS[t['contender']]} | {t['startup_ms']} ms | {t['mode']} | {t.get('ok', 0):,} "
                f"| {t.get('failed', 0):,} ({t.get('connect', 0)} / {t.get('read', 0)} / {t.get('write', 0)} / "
                f"{t.get('timeout', 0)} / {t.get('non2xx', 0)}) | {t.get('rps', 0):,.0f} "
                f"| {lat.get('p50', 0):.2f} / {lat.get('p99', 0):.2f} / {lat.get('max', 0):.0f} "
                f"| {t['distinct_pids']} / {t['signals']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

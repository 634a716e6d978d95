#!/usr/bin/env python3
"""Footprint and cost: N consecutive upgrades as fast as the supervisor completes them
(--ready notify, no load), each waited for through the control socket. Reports the
supervisor's RSS, open fds, zombie children and threads before and after, the upgrades per
second achieved, and the supervisor's CPU time per upgrade (from /proc). Driven by
scripts/soak.sh."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")

proc = None


def stop():
    global proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()  # its workers get the drain signal through PR_SET_PDEATHSIG
        proc.wait()


def on_signal(signum, _frame):
    stop()
    sys.exit(130)


def free_port():
    import random

    for _ in range(200):
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def children(pid):
    """(pid, state) of every process whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pid:
            out.append((int(d), rest[0]))
    return out


def snapshot(pid):
    s = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                s[k] = int(v.split()[0])
    s["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    kids = children(pid)
    s["zombies"] = sum(1 for _, st in kids if st == "Z")
    s["children"] = len(kids)
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # fields 14..17 of stat(5): utime stime cutime cstime; rest[0] is field 3
    s["cpu_ticks"] = int(rest[11]) + int(rest[12])
    s["children_cpu_ticks"] = int(rest[13]) + int(rest[14])
    with open(f"/proc/{pid}/schedstat") as f:
        s["cpu_ns"] = int(f.read().split()[0])
    return s


class Ctl:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rwb", buffering=0)

    def call(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())
        line = self.f.readline()
        if not line:
            raise RuntimeError("control connection closed")
        return json.loads(line)


def settle(ctl, pid, timeout=10):
    """Until one worker is left (the others drained and reaped) and no child is a zombie."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = ctl.call({"cmd": "status"})["status"]
        if len(st["workers"]) == 1 and st["phase"] == "serving":
            time.sleep(0.2)
            if snapshot(pid)["zombies"] == 0:
                return True
        time.sleep(0.05)
    return False


def main():
    global proc
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--upgrades", type=int, default=1000)
    ap.add_argument("--ready", default="notify", choices=["notify", "accepting", "auto", "delay"],
                    help="the supervisor's --ready mode (accepting/auto: the /proc probe's cost shows in CPU per upgrade)")
    ap.add_argument("--warmup", type=int, default=10, help="upgrades before the 'warm' snapshot")
    ap.add_argument("--supervisor", default=os.path.join(ROOT, "build", "supervisor"))
    ap.add_argument("--worker", default=os.path.join(ROOT, "build", "demo_worker"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(args.out, exist_ok=True)

    ctl_path = os.path.join(args.out, f"soak-{os.getpid()}.sock")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "SERVER_STARTER_", "SUPERVISOR_", "EINHORN_"))}
    cmd = [args.supervisor, "--listen", f"127.0.0.1:{port}", "--ready", args.ready, "--control", ctl_path,
           "--", args.worker]
    logpath = os.path.join(args.out, "soak.log")
    print(f"soak: {' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)}", flush=True)
    with open(logpath, "w") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                start_new_session=True, cwd=ROOT)
    try:
        deadline = time.time() + 20
        ctl = None
        while ctl is None:
            try:
                ctl = Ctl(ctl_path)
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the supervisor did not open its control socket; see {logpath}")
                time.sleep(0.05)
        if not settle(ctl, proc.pid):
            raise RuntimeError("the first worker did not become ready")
        pid = proc.pid
        before = snapshot(pid)
        for _ in range(args.warmup):
            ctl.call({"cmd": "upgrade"})
        settle(ctl, pid)
        warm = snapshot(pid)

        failed = 0
        t0 = time.monotonic()
        c0 = snapshot(pid)
        last_report = t0
        every = max(1, args.upgrades // 10)
        series = []  # (upgrades done, VmRSS KiB, fds) every tenth of the run
        for i in range(args.upgrades):
            r = ctl.call({"cmd": "upgrade"})
            if not r.get("ok"):
                failed += 1
                if failed <= 5:
                    print(f"soak: upgrade {i + 1} failed: {r}", flush=True)
            if (i + 1) % every == 0:
                snap = snapshot(pid)
                series.append((args.warmup + i + 1, snap["VmRSS"], snap["fds"]))
            now = time.monotonic()
            if now - last_report >= 2:
                print(f"soak: {i + 1}/{args.upgrades} upgrades, {(i + 1) / (now - t0):.0f}/s", flush=True)
                last_report = now
        elapsed = time.monotonic() - t0
        c1 = snapshot(pid)  # CPU right after the last verdict, before the settle's status polling
        settled = settle(ctl, pid)
        after = snapshot(pid)
        status = ctl.call({"cmd": "status"})["status"]
    finally:
        stop()

    n = args.upgrades
    cpu_ms = (c1["cpu_ns"] - c0["cpu_ns"]) / 1e6
    tick_ms = (c1["cpu_ticks"] - c0["cpu_ticks"]) * 1000 / TICK
    kids_ms = (after["children_cpu_ticks"] - c0["children_cpu_ticks"]) * 1000 / TICK
    rows = [("RSS (VmRSS), KiB", "VmRSS"), ("peak RSS (VmHWM), KiB", "VmHWM"), ("open fds", "fds"),
            ("zombie children", "zombies"), ("children", "children"), ("threads", "Threads")]
    out = []
    out.append(f"{n} upgrades (`--ready {args.ready}`, no load, each waited for on the control socket) in {elapsed:.2f} s: "
               f"**{n / elapsed:.0f} upgrades/s**, {failed} failed, serving generation {status['serving_gen']}, "
               f"settled: {'yes' if settled else 'NO'}.")
    out.append("")
    out.append(f"| supervisor | at start | after {args.warmup} upgrades | after {args.warmup + n} upgrades | change since start |")
    out.append("|---|--:|--:|--:|--:|")
    for title, k in rows:
        out.append(f"| {title} | {before[k]} | {warm[k]} | {after[k]} | {after[k] - before[k]:+d} |")
    out.append(f"| CPU time per upgrade (schedstat) | | | {cpu_ms / n * 1000:.0f} µs | total {cpu_ms:.0f} ms |")
    out.append(f"| CPU time per upgrade (utime+stime) | | | {tick_ms / n * 1000:.0f} µs | total {tick_ms:.0f} ms, "
               f"{1000 / TICK:.0f} ms ticks |")
    out.append(f"| workers' CPU per upgrade (reaped children: exec, start, drain) | | | {kids_ms / n * 1000:.0f} µs | |")
    out.append("")
    out.append("RSS (KiB) / fds every tenth of the run: " +
               ", ".join(f"{u}: {r} / {fd}" for u, r, fd in series) + ".")
    half = series[len(series) // 2 - 1][1] if len(series) >= 2 else warm["VmRSS"]
    out.append(f"RSS change over the second half of the run: {after['VmRSS'] - half:+d} KiB.")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.out, "soak.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump({"series": series, "upgrades": n, "elapsed_s": elapsed, "failed": failed, "before": before, "warm": warm,
                   "after": after, "cpu_ms": cpu_ms, "tick_ms": tick_ms, "children_cpu_ms": kids_ms,
                   "settled": settled}, f, indent=1)
    print()
    print(text)
    # Growth that would matter scales with the number of upgrades: compare the end with the
    # middle of the run for RSS (a one-time page of heap high-water mark is not a leak), with
    # the start for everything that can be counted exactly.
    grew = [k for k in ("fds", "zombies", "children", "Threads") if after[k] > before[k]]
    if after["VmRSS"] > half + 4:  # one page of heap high-water mark is not a leak
        grew.append("VmRSS")
    ok = failed == 0 and settled and not grew and after["zombies"] == 0 and cpu_ms / n < 1.0
    print(f"soak: {'targets met' if ok else 'TARGET MISSED'}: {failed} failed upgrades, settled={settled}, "
          f"grown: {', '.join(grew) or 'nothing'}, supervisor CPU {cpu_ms / n * 1000:.0f} µs per upgrade", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

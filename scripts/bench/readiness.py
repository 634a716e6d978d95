#!/usr/bin/env python3
"""Readiness under load: a server that boots for --boot-ms and sends nothing, upgraded every
--interval seconds under wrk (a new connection per request), once per readiness mode.

  delay      the supervisor's old default: ready after --ready-delay (1 s), whatever it does
  accepting  ready when /proc shows it waiting on the listener (the server: slow_acceptor)
  auto       the default: the same for a server that sends nothing
  notify     for comparison, a server that does send READY=1 after the same boot
             (the demo worker with --startup-delay): what cooperation buys

For each: requests, failed requests, latency p50/p99/max (wrk --latency), and from the
supervisor's log how long after the upgrade signal the old generation was told to drain
(median and max). Loopback only; every process started is stopped by pid.
Run by scripts/bench.sh --readiness; prints a markdown table and writes it to OUT/readiness.md.
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def stamp(line):
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})", line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() if m else None


def drain_delays(log_text):
    """ms from each 'upgrade started gen=N' to 'draining gen=N-1' (the old told to stop)."""
    started, out = {}, []
    for line in log_text.splitlines():
        t = stamp(line)
        if t is None:
            continue
        m = re.search(r"upgrade started gen=(\d+)", line)
        if m:
            started[int(m.group(1))] = t
        m = re.search(r"draining gen=(\d+) ", line)
        if m and int(m.group(1)) + 1 in started:
            out.append((t - started.pop(int(m.group(1)) + 1)) * 1000)
    return out


def parse_wrk(text):
    def dur(s):
        v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
        return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
    lat = {p: dur(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
    mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text)
    req = int(re.search(r"(\d+) requests in", text).group(1))
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests": req, "failed": errs + (int(non2xx.group(1)) if non2xx else 0),
            "p50": lat.get("50"), "p99": lat.get("99"), "max": dur(mx.group(1)) if mx else None}


def run_mode(args, mode):
    port = free_port()
    log_path = os.path.join(args.out, f"readiness-{mode}.log")
    if mode == "notify":
        cmd = [args.demo_worker, "--startup-delay", f"{args.boot_ms}ms"]
        ready = ["--ready", "notify"]
    else:
        cmd = [args.slow_acceptor, "--mode", "epoll", "--boot-ms", str(args.boot_ms)]
        ready = ["--ready", mode]
    sv = subprocess.Popen([args.supervisor, "-l", f"127.0.0.1:{port}", *ready, "--drain-timeout", "10s", "--", *cmd],
                          stdout=open(log_path, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        if not wait_for(lambda: "ready gen=1" in open(log_path).read(), args.boot_ms / 1000 + 10):
            raise RuntimeError(f"{mode}: the first generation never got ready (see {log_path})")
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.duration}s", "--latency", "-H", "Connection: close",
                                f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
        end = time.monotonic() + args.duration - args.interval
        time.sleep(args.interval / 2)
        upgrades = 0
        while time.monotonic() < end:
            sv.send_signal(signal.SIGHUP)
            upgrades += 1
            time.sleep(args.interval)
        out, _ = wrk.communicate(timeout=args.duration + 30)
        r = parse_wrk(out)
        with open(os.path.join(args.out, f"readiness-{mode}.wrk"), "w") as f:
            f.write(out)
        d = drain_delays(open(log_path).read())
        r.update(mode=mode, upgrades=upgrades, done=open(log_path).read().count("upgrade done"),
                 drain_median=statistics.median(d) if d else None, drain_max=max(d) if d else None)
        return r
    finally:
        sv.send_signal(signal.SIGTERM)
        try:
            sv.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sv.kill()
            sv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boot-ms", type=int, default=1500)
    ap.add_argument("--interval", type=float, default=3.0)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--modes", default="delay,accepting,auto,notify")
    ap.add_argument("--supervisor", default=os.path.join(ROOT, "build", "supervisor"))
    ap.add_argument("--slow-acceptor", default=os.path.join(ROOT, "build", "tests", "slow_acceptor"))
    ap.add_argument("--demo-worker", default=os.path.join(ROOT, "build", "demo_worker"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = [run_mode(args, m) for m in args.modes.split(",")]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    table = [f"Boot {args.boot_ms} ms, an upgrade every {args.interval:g} s for {args.duration} s, "
             "wrk -t1 -c16, a new connection per request.", "",
             "| readiness | upgrades (done) | requests | failed | p50 ms | p99 ms | max ms | old told to drain after the signal, median / max ms |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        table.append(f"| {r['mode']} | {r['upgrades']} ({r['done']}) | {r['requests']} | {r['failed']} | {fmt(r['p50'])} | "
                     f"{fmt(r['p99'])} | {fmt(r['max'])} | {fmt(r['drain_median'])} / {fmt(r['drain_max'])} |")
    text = "\n".join(table) + "\n"
    print(text)
    with open(os.path.join(args.out, "readiness.md"), "w") as f:
        f.write(text)
    return 0 if all(r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""--adopt-bind against LISTEN_FDS: the same server (tests/fixtures/adopt_server.c, blocking
accept, one request per connection), run both ways in the same run, alternating:

  adopt       supervisor --adopt-bind -- adopt_server 127.0.0.1 PORT   (it binds; the preload
              hands it the listener, and emulates its blocking accept on the non-blocking one)
  listen-fds  supervisor -- adopt_server fd 3                          (it takes fd 3)

For each: throughput under wrk -t1 -c32 (a new connection per request: the server closes),
median of --runs runs of --duration seconds; then --upgrades upgrades one after another,
each timed by the supervisor ('upgrade done … after_ms=', from the signal to the new
generation accepting: the handover). Prints a markdown table and writes OUT/adopt.md.
Loopback only; every process started is stopped by pid.
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


class Server:
    def __init__(self, args, mode, out):
        self.port = free_port()
        self.log = os.path.join(out, f"adopt-{mode}.log")
        cmd = [args.supervisor, "-l", f"127.0.0.1:{self.port}"]
        if mode == "adopt":
            cmd += ["--adopt-bind", "--", args.server, "127.0.0.1", str(self.port)]
        else:
            cmd += ["--", args.server, "fd", "3"]
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)
        if not wait_for(lambda: "ready gen=1 " in self.text(), 20):
            self.stop()
            sys.exit(f"bench adopt: {mode} never got ready; see {self.log}")

    def text(self):
        with open(self.log) as f:
            return f.read()

    def throughput(self, seconds):
        r = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{self.port}/"],
                           capture_output=True, text=True, timeout=seconds + 30)
        m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
        errors = re.search(r"Socket errors: (.*)", r.stdout)
        return float(m.group(1)) if m else 0.0, errors.group(1) if errors else ""

    def upgrade_times(self, n):
        out = []
        for gen in range(2, n + 2):
            self.proc.send_signal(signal.SIGHUP)
            pat = re.compile(rf"upgrade done gen={gen} pid=\d+ .*after_ms=(\d+)")
            if not wait_for(lambda: pat.search(self.text()), 20):
                sys.exit(f"bench adopt: upgrade to gen={gen} did not complete; see {self.log}")
            out.append(int(pat.search(self.text()).group(1)))
            wait_for(lambda: re.search(rf"exited gen={gen - 1} ", self.text()), 20)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--supervisor", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--upgrades", type=int, default=10)
    ap.add_argument("--out", default=".bench")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    modes = ["adopt", "listen-fds"]
    rps = {m: [] for m in modes}
    errors = {m: [] for m in modes}
    handover = {m: [] for m in modes}
    for run in range(args.runs):
        for mode in (modes if run % 2 == 0 else list(reversed(modes))):
            s = Server(args, mode, args.out)
            try:
                r, e = s.throughput(args.duration)
                rps[mode].append(r)
                if e:
                    errors[mode].append(e)
                if run == 0:
                    handover[mode] = s.upgrade_times(args.upgrades)
            finally:
                s.stop()
            print(f"bench adopt: run {run + 1}/{args.runs} {mode}: {r:.0f} req/s", flush=True)
    load = open("/proc/loadavg").read().split()[:3]
    lines = [
        f"wrk -t1 -c32, a new connection per request, {args.runs} runs of {args.duration} s each, alternating; "
        f"{args.upgrades} upgrades one after another (no load) for the handover; "
        f"{os.cpu_count()} CPUs, load average at the end {' '.join(load)}",
        "",
        "| mode | req/s (median) | req/s (runs) | socket errors | handover ms (median) | handover ms (min–max) |",
        "|---|---|---|---|---|---|",
    ]
    for m in modes:
        h = handover[m]
        lines.append(f"| {m} | {statistics.median(rps[m]):.0f} | {' '.join(f'{x:.0f}' for x in rps[m])} | "
                     f"{'; '.join(errors[m]) or 'none'} | {statistics.median(h):.0f} | {min(h)}–{max(h)} |")
    ratio = statistics.median(rps["adopt"]) / statistics.median(rps["listen-fds"])
    lines += ["", f"throughput ratio adopt / listen-fds (medians): {ratio:.3f}"]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "adopt.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reexec soak: N consecutive `reexec` requests (default 1000) alternating two copies of
the supervisor binary, each waited for on the control connection (which the new image
keeps), while the one worker keeps serving. Reports the supervisor's RSS, open fds, zombie
children and threads before, every tenth of the run and after, the reexecs per second,
and checks that the pid and the worker never changed. Driven by scripts/soak.sh --reexec."""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import soak  # noqa: E402  (shares the snapshot, control client and process handling)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reexecs", type=int, default=1000)
    ap.add_argument("--supervisor", default=os.path.join(soak.ROOT, "build", "supervisor"))
    ap.add_argument("--worker", default=os.path.join(soak.ROOT, "build", "demo_worker"))
    ap.add_argument("--out", default=os.path.join(soak.ROOT, ".bench"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    bins = [os.path.abspath(os.path.join(args.out, f"supervisor-{x}")) for x in "ab"]
    for b in bins:
        shutil.copy(args.supervisor, b)
        os.chmod(b, 0o755)
    ctl_path = os.path.join(args.out, f"soak-reexec-{os.getpid()}.sock")
    port = soak.free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "SERVER_STARTER_", "SUPERVISOR_", "EINHORN_"))}
    cmd = [bins[1], "--listen", f"127.0.0.1:{port}", "--ready", "notify", "--control", ctl_path, "--", args.worker]
    logpath = os.path.join(args.out, "soak-reexec.log")
    with open(logpath, "w") as logf:
        soak.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                     start_new_session=True, cwd=soak.ROOT)
    try:
        deadline = time.time() + 20
        ctl = None
        while ctl is None:
            try:
                ctl = soak.Ctl(ctl_path)
            except OSError:
                if time.time() > deadline or soak.proc.poll() is not None:
                    raise RuntimeError(f"the supervisor did not open its control socket; see {logpath}")
                time.sleep(0.05)
        if not soak.settle(ctl, soak.proc.pid):
            raise RuntimeError("the first worker did not become ready")
        pid = soak.proc.pid
        worker = ctl.call({"cmd": "status"})["status"]["workers"][0]["pid"]
        before = soak.snapshot(pid)
        n, failed, series = args.reexecs, 0, []
        every = max(1, n // 10)
        t0 = time.monotonic()
        for i in range(n):
            r = ctl.call({"cmd": "reexec", "binary": bins[i % 2]})
            if not r.get("ok") or r.get("pid") != pid:
                failed += 1
                if failed <= 5:
                    print(f"soak: reexec {i + 1} failed: {r}", flush=True)
            if (i + 1) % every == 0:
                s = soak.snapshot(pid)
                series.append((i + 1, s["VmRSS"], s["fds"], s["zombies"]))
        elapsed = time.monotonic() - t0
        after = soak.snapshot(pid)
        st = ctl.call({"cmd": "status"})["status"]
        same_worker = [w["pid"] for w in st["workers"]] == [worker]
    finally:
        soak.stop()
    lines = [f"{n} reexecs (alternating two copies of the binary, one idle worker, each waited for) in {elapsed:.2f} s: "
             f"**{n / elapsed:.0f} reexecs/s** ({elapsed / n * 1000:.1f} ms each, the new binary's --check-state "
             f"included), {failed} failed, same pid: yes, same worker: {'yes' if same_worker else 'NO'}.", "",
             "| supervisor | at start | after | change |", "|---|--:|--:|--:|"]
    for title, k in [("RSS (VmRSS), KiB", "VmRSS"), ("open fds", "fds"), ("zombie children", "zombies"),
                     ("children", "children"), ("threads", "Threads")]:
        lines.append(f"| {title} | {before[k]} | {after[k]} | {after[k] - before[k]:+d} |")
    lines.append("")
    lines.append("RSS (KiB) / fds / zombies every tenth of the run: " +
                 ", ".join(f"{u}: {r} / {fd} / {z}" for u, r, fd, z in series) + ".")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "soak-reexec.md"), "w") as f:
        f.write(text)
    print(text)
    grew = [k for k in ("fds", "zombies", "children", "Threads") if after[k] > before[k]]
    if after["VmRSS"] > before["VmRSS"] + 512:  # a fresh image each time: nothing may accumulate
        grew.append("VmRSS")
    ok = failed == 0 and same_worker and not grew
    print(f"soak: {'targets met' if ok else 'TARGET MISSED'}: {failed} failed reexecs, same worker={same_worker}, "
          f"grown: {', '.join(grew) or 'nothing'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""In-flight requests across a stop: opens N connections to 127.0.0.1:PORT and sends half
of a request on each; once the listener's accept queue is empty (every connection is in a
worker's hands), runs STOP_COMMAND (which must return at once, e.g. systemctl --no-block),
waits until WAIT_COMMAND succeeds (the stop has begun), then sends the rest and reads the
answers. Prints "answered=N of=M" and exits 0 when every request got 200.
Runs in the server's network namespace (nsenter -n).

  inflight.py PORT N 'STOP COMMAND' 'WAIT COMMAND'
"""
import socket
import subprocess
import sys
import time

port, n, stop_cmd, wait_cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]


def until(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    sys.exit(f"inflight: timed out waiting for {what}")


def accept_queue_empty():
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
    return len(out) >= 2 and out[1] == "0"  # State Recv-Q ...: Recv-Q of a listener = queued connections


conns = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
    conns.append(c)
until(accept_queue_empty, 10, "the worker to accept every connection")
subprocess.run(stop_cmd, shell=True, check=True)
until(lambda: subprocess.run(wait_cmd, shell=True).returncode == 0, 10, "the stop to begin")
answered = 0
for c in conns:
    c.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        answered += 1
print(f"answered={answered} of={n}")
sys.exit(0 if answered == n else 1)

#!/usr/bin/env python3
"""selector_worker — a test worker that boots slowly, never sends READY=1, and waits
for connections on the inherited fd 3 (LISTEN_FDS) with the standard library's
selectors: poll(2) or select(2), so that only the readiness probe can tell when it
accepts. Answers every HTTP request with "pid=<pid> gen=<SUPERVISOR_GENERATION>".

    selector_worker.py [--selector poll|select] [--boot-ms N]
"""
import argparse
import os
import selectors
import signal
import socket
import sys
import time

GEN = os.environ.get("SUPERVISOR_GENERATION", "0")
# Drain: SIGTERM is blocked and looked for between requests (select waits at most 50 ms),
# so it never lands between accept() and the answer: the request in flight is finished.


def serve(conn):
    conn.settimeout(2.0)
    head = b""
    try:
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = conn.recv(2048)
            if not chunk:
                break
            head += chunk
        body = f"pid={os.getpid()} gen={GEN}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--selector", choices=["poll", "select"], default="poll")
    parser.add_argument("--boot-ms", type=int, default=0)
    args = parser.parse_args()
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0") or 0) < 1:
        sys.stderr.write("selector_worker: no listening socket: LISTEN_FDS/LISTEN_PID do not name us\n")
        return 2
    os.set_inheritable(3, False)
    sock = socket.socket(fileno=3)
    sys.stderr.write(f"selector_worker pid={os.getpid()} selector={args.selector} boot_ms={args.boot_ms}\n")
    time.sleep(args.boot_ms / 1000)
    sel = selectors.PollSelector() if args.selector == "poll" else selectors.SelectSelector()
    sel.register(sock, selectors.EVENT_READ)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    sys.stderr.write(f"selector_worker pid={os.getpid()} booted\n")
    sys.stderr.flush()
    while signal.SIGTERM not in signal.sigpending():
        for _key, _events in sel.select(timeout=0.05):
            try:
                conn, _addr = sock.accept()
            except BlockingIOError:
                continue
            serve(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""py_worker — a supervisor test worker written with the standard library only.

Serves GET / with "pid=<pid> gen=<gen>\\n" (HTTP/1.1, keep-alive) on the
listener inherited as fd 3, sends READY=1 to NOTIFY_SOCKET, and drains on
SIGTERM: stop accepting, finish in-flight requests (answered with
Connection: close), close keep-alive connections idle for IDLE_GRACE, exit 0.
"""
import http.server
import os
import select
import signal
import socket
import sys
import threading
import time

IDLE_GRACE = 0.2      # seconds an idle keep-alive connection may live once draining
POLL_INTERVAL = 0.05  # how quickly serve_forever notices shutdown()
GEN = os.environ.get("SUPERVISOR_GENERATION", "0")


def log(msg):
    # os.write, not print: the SIGTERM handler logs too, and buffered stderr
    # is not reentrant.
    os.write(2, f"py_worker pid={os.getpid()} gen={GEN} {msg}\n".encode())


def inherited_listener():
    """The socket on fd 3, or None when LISTEN_FDS is not meant for us."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        if int(os.environ.get("LISTEN_FDS", "0")) < 1:
            return None
    except ValueError:
        return None
    os.set_inheritable(3, False)
    sock = socket.socket(fileno=3)
    # O_NONBLOCK lives on the open file description shared with the other
    # generations, so this sets it for all of them (libuv workers do the same).
    # It is needed: the other generations wake on the same connection, and a
    # blocking accept() that loses the race would hang until the next one,
    # delaying our drain. A lost race now raises BlockingIOError, which
    # socketserver's _handle_request_noblock() swallows as an OSError.
    sock.setblocking(False)
    return sock


def notify(state):
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr:
        return "none"
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), addr)
        return "sent"
    except OSError as e:
        return f"failed:{e.strerror}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30   # a client stalling mid-request cannot block the drain forever
    wbufsize = -1  # one segment per response; header and body apart meet Nagle + delayed ACK

    def log_message(self, format, *args):  # quiet per request
        pass

    def handle(self):
        # BaseHTTPRequestHandler.handle(), but waiting between requests in
        # wait_for_request() so that a drain can close an idle connection.
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self.wait_for_request():
            self.handle_one_request()

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/":
            return self.reply(404, b"not found\n")
        self.reply(200, f"pid={os.getpid()} gen={GEN}\n".encode())

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.server.draining.is_set():
            self.send_header("Connection", "close")  # also sets close_connection
        elif self.request_version == "HTTP/1.0":
            self.send_header("Connection", "keep-alive")  # 1.0 clients assume close otherwise
        self.end_headers()
        self.wfile.write(body)
        self.last_active = time.monotonic()

    def buffered_input(self):
        """True when rfile already holds bytes (a pipelined request) or gets some now."""
        self.connection.settimeout(0.0)
        try:
            return bool(self.rfile.peek(1))  # b"" when nothing is buffered or readable
        except OSError:
            return True  # let handle_one_request() meet the error
        finally:
            self.connection.settimeout(self.timeout)

    def wait_for_request(self):
        """True when the next request (or EOF) is readable; False once a drain
        has found this connection idle for IDLE_GRACE. The grace covers a client
        that sent a request just as the drain began."""
        if self.buffered_input():
            return True
        srv, sock = self.server, self.connection
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not srv.draining.is_set():
            poller.register(srv.wake_r, select.POLLIN)  # readable once draining
            if any(fd == sock.fileno() for fd, _ in poller.poll()):
                return True
            poller.unregister(srv.wake_r)
        deadline = max(srv.drain_started, getattr(self, "last_active", 0.0)) + IDLE_GRACE
        while (left := deadline - time.monotonic()) > 0:
            if poller.poll(left * 1000):
                return True
        return False


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() then joins handlers: in-flight requests finish
    block_on_close = True

    def __init__(self, sock):
        self.address_family = sock.family
        super().__init__(sock.getsockname(), Handler, bind_and_activate=False)
        self.socket.close()  # the unbound socket TCPServer made; serve the inherited one
        self.socket = sock
        self.draining = threading.Event()
        self.drain_started = 0.0
        self.wake_r, self.wake_w = os.pipe()

    def handle_error(self, request, client_address):
        # A client leaving mid-response is normal; anything else gets one line.
        err = sys.exc_info()[1]
        if not isinstance(err, ConnectionError):
            log(f"error client={client_address} {type(err).__name__}: {err}")

    def begin_drain(self):
        self.drain_started = time.monotonic()
        self.draining.set()
        os.write(self.wake_w, b"x")  # wakes every connection waiting for a request
        # shutdown() waits for serve_forever(), which runs in this (the main) thread.
        threading.Thread(target=self.shutdown, daemon=True).start()


def main():
    sock = inherited_listener()
    if sock is None:
        sys.stderr.write("py_worker: no listening socket: run me under the supervisor (LISTEN_FDS)\n")
        return 2
    server = Server(sock)

    def on_sigterm(signum, frame):
        if server.draining.is_set():
            return log("drain continues signal=SIGTERM")
        log(f"drain start signal=SIGTERM threads={threading.active_count() - 1}")
        notify("STOPPING=1")
        server.begin_drain()

    signal.signal(signal.SIGTERM, on_sigterm)
    log(f"listening fd=3 addr={sock.getsockname()}")
    log(f"ready notify={notify('READY=1')}")
    started = time.monotonic()
    server.serve_forever(poll_interval=POLL_INTERVAL)
    server.server_close()  # closes our copy of fd 3, joins the handler threads
    log(f"drained drain_ms={int((time.monotonic() - server.drain_started) * 1000)} "
        f"uptime_s={time.monotonic() - started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

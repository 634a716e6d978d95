"""A tiny WSGI app for the gunicorn test: says which processes served the request.

gunicorn's arbiter is the process the supervisor starts (it takes LISTEN_FDS and sends
READY=1); the request is answered by one of its forked workers, so the body names both.
"""
import os


def app(environ, start_response):
    body = (f"pid={os.getpid()} ppid={os.getppid()} "
            f"gen={os.environ.get('SUPERVISOR_GENERATION', '?')}\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]

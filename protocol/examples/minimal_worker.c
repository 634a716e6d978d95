/* minimal_worker — the smallest worker that keeps the contract of
 * protocol/PROTOCOL.md: accept on the first inherited listener, answer every
 * connection with "pid=<pid>\n", say READY=1, and on SIGTERM stop and exit 0. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <supervisor/worker.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t draining = 0;

static void on_sigterm(int sig) { (void)sig; draining = 1; }

/* Reads the request head before answering: closing a socket with unread input
 * sends RST, which can destroy the response before the client reads it. */
static void serve(int fd, const char *resp, size_t len) {
    char buf[4096];
    ssize_t got;
    struct timeval tv = {5, 0}; /* a silent client must not stall the worker */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    do got = recv(fd, buf, sizeof buf, 0); /* SIGTERM must not drop a request in flight */
    while (got < 0 && errno == EINTR);
    if (got > 0) {
        (void)send(fd, resp, len, MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
        while (recv(fd, buf, sizeof buf, 0) > 0) {} /* until the client's FIN */
    }
    close(fd);
}

int main(void) {
    sv_listener ls[1];
    struct sigaction sa;
    char body[32], resp[128];
    int n = sv_listen_fds(ls, 1), len;
    if (n <= 0) {
        fprintf(stderr, "minimal_worker: no listening socket: run me under the supervisor (LISTEN_FDS)\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm; /* no SA_RESTART: a blocked accept() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    len = snprintf(body, sizeof body, "pid=%d\n", (int)getpid());
    len = snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len, body);
    sv_notify("READY=1");
    /* A SIGTERM landing between this test and accept() waits for one more
     * connection; a production worker closes that gap with ppoll or signalfd. */
    while (!draining) {
        int fd = accept(ls[0].fd, NULL, NULL);
        if (fd >= 0) {
            serve(fd, resp, (size_t)len);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* O_NONBLOCK is shared: a libuv generation may have set it. Wait, and
             * expect to lose some races to the other generations. */
            struct pollfd p = {ls[0].fd, POLLIN, 0};
            poll(&p, 1, -1);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            perror("minimal_worker: accept");
            return 1;
        }
    }
    return 0; /* exit closes only our copy of the listener; queued clients wait for the next worker */
}

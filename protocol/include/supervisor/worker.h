/* supervisor/worker.h — the worker side of the supervisor protocol, header-only,
 * C99 and C++, no dependencies. See protocol/PROTOCOL.md for the contract.
 *
 *   sv_listener ls[8];
 *   int n = sv_listen_fds(ls, 8);        // inherited listeners, or 0 / -errno
 *   ... start accepting on ls[i].fd ...
 *   sv_notify("READY=1");                // 1 sent, 0 not supervised, -errno
 *
 * Modelled on systemd's sd_listen_fds_with_names() and the self-contained
 * sd_notify() example in systemd's man pages: LISTEN_PID must name this very
 * process ("is this for us?"), and NOTIFY_SOCKET may be an abstract name (@…).
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SV_LISTEN_FDS_START = 3, SV_NAME_MAX = 256 };

typedef struct sv_listener {
    int fd;                  /* 3, 4, … in --listen order */
    char name[SV_NAME_MAX];  /* from LISTEN_FDNAMES, "unknown" when absent */
} sv_listener;

/* Parses a non-negative decimal that fits in a long; -1 when malformed. */
static inline long sv__parse_ulong(const char *s) {
    long v = 0;
    if (s == NULL || *s == '\0') return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (0x7fffffffL - (*s - '0')) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Fills out[0..max-1] with the listeners inherited through LISTEN_FDS.
 * Returns their count (which may exceed max; only max are filled), 0 when the
 * variables are absent or meant for another process (LISTEN_PID differs),
 * -EINVAL when they are malformed, -EBADF when a named fd is not open.
 * The fds are marked close-on-exec so that they do not leak into children. */
static inline int sv_listen_fds(sv_listener *out, int max) {
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    long pid, n, i;
    if (pid_s == NULL || fds_s == NULL) return 0;
    pid = sv__parse_ulong(pid_s);
    n = sv__parse_ulong(fds_s);
    if (pid <= 0 || n < 0 || n > 4096) return -EINVAL;
    if ((pid_t)pid != getpid()) return 0; /* is this for us? */
    for (i = 0; i < n; i++) {
        int fd = SV_LISTEN_FDS_START + (int)i;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0) return -EBADF;
        if (!(flags & FD_CLOEXEC)) (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        if (out != NULL && i < max) {
            size_t len = 0;
            out[i].fd = fd;
            strcpy(out[i].name, "unknown");
            if (names != NULL) { /* the i-th ':'-separated field */
                const char *p = names, *end;
                long k;
                for (k = 0; k < i && p != NULL; k++) {
                    p = strchr(p, ':');
                    if (p != NULL) p++;
                }
                if (p != NULL) {
                    end = strchr(p, ':');
                    len = end ? (size_t)(end - p) : strlen(p);
                    if (len > 0 && len < SV_NAME_MAX) {
                        memcpy(out[i].name, p, len);
                        out[i].name[len] = '\0';
                    }
                }
            }
        }
    }
    return (int)n;
}

/* Sends one sd_notify(3) datagram to the socket at `path` (a filesystem path,
 * or '@name' for an abstract socket). Returns 1 when sent, 0 when path is NULL
 * or empty, -errno on failure. */
static inline int sv_notify_to(const char *path, const char *state) {
    struct sockaddr_un sa;
    size_t len, state_len;
    socklen_t sa_len;
    int fd;
    ssize_t sent;
    if (path == NULL || path[0] == '\0') return 0;
    if (state == NULL) return -EINVAL;
    len = strlen(path);
    if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
    if (len >= sizeof(sa.sun_path)) return -E2BIG;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
    sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    state_len = strlen(state);
    do {
        sent = sendto(fd, state, state_len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, sa_len);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    close(fd);
    return (size_t)sent == state_len ? 1 : -EPROTO;
}

/* Sends one sd_notify(3) datagram ("READY=1", "STATUS=…\nREADY=1", …) to
 * NOTIFY_SOCKET. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset (not
 * supervised), -errno on failure. A leading '@' names an abstract socket. */
static inline int sv_notify(const char *state) {
    return sv_notify_to(getenv("NOTIFY_SOCKET"), state);
}

/* The generation number from SUPERVISOR_GENERATION (or Server::Starter's
 * SERVER_STARTER_GENERATION when run by start_server), or 0 when absent. */
static inline long sv_generation(void) {
    long g = sv__parse_ulong(getenv("SUPERVISOR_GENERATION"));
    if (g < 0) g = sv__parse_ulong(getenv("SERVER_STARTER_GENERATION"));
    return g < 0 ? 0 : g;
}

#ifdef __cplusplus
}
#endif

/* The --adopt-bind preload: a worker's bind() of an address the supervisor serves takes the
 * inherited listener instead (docs/ADOPT.md). Plain C and libc only: it lives inside
 * servers we know nothing about, so no C++ runtime, no exceptions, no allocation after
 * start-up, and nothing that is not async-signal-safe in close()/dup*()/fcntl()/accept().
 *
 * The listeners are non-blocking (the supervisor creates them so), and every worker sees
 * them as it asked to: O_NONBLOCK is emulated per fd (fcntl, ioctl FIONBIO) and a
 * blocking accept() on such an fd waits in poll() and retries. So the flag that every
 * generation shares never changes, and old blocking and new non-blocking generations (or
 * the reverse) serve side by side. */
/* Both fcntl and fcntl64 are defined here; with _FILE_OFFSET_BITS=64 (meson's default)
 * glibc's header renames fcntl to fcntl64, and the two would clash. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/adopt/adopt_match.h"
#include "supervisor/adopt/adopt_text.h"

#define EXPORT __attribute__((visibility("default")))

enum { kTableSize = 65536 };
enum view { kUntracked = 0, kBlocking = 1, kNonblocking = 2, kViewMask = 3, kShutBit = 4 };

static struct adopt_env g_env;
static int g_active;                      /* SUPERVISOR_ADOPT parsed */
static unsigned char g_view[kTableSize];  /* per fd: how the worker sees an fd holding our socket */

typedef int (*bind_fn)(int, const struct sockaddr*, socklen_t);
typedef int (*listen_fn)(int, int);
typedef int (*accept_fn)(int, struct sockaddr*, socklen_t*);
typedef int (*accept4_fn)(int, struct sockaddr*, socklen_t*, int);
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef int (*close_fn)(int);
typedef int (*shutdown_fn)(int, int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);

static bind_fn real_bind;
static listen_fn real_listen;
static accept_fn real_accept;
static accept4_fn real_accept4;
static fcntl_fn real_fcntl, real_fcntl64;
static ioctl_fn real_ioctl;
static close_fn real_close;
static shutdown_fn real_shutdown;
static dup_fn real_dup;
static dup2_fn real_dup2;
static dup3_fn real_dup3;

/* dlsym is not async-signal-safe: everything is resolved in the constructor; the lazy
 * path only serves calls from other libraries' constructors that run before ours. */
static void* resolve(void** slot, const char* name) {
    if (*slot == NULL) *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}
#define REAL(name) ((name##_fn)resolve((void**)&real_##name, #name))

static int tracked(int fd) { return fd >= 0 && fd < kTableSize && g_view[fd] != kUntracked; }

/* The fd's view, kBlocking or kNonblocking (tracked fds only). */
static int view_of(int fd) { return g_view[fd] & kViewMask; }

static void set_view(int fd, int view) {
    if (fd >= 0 && fd < kTableSize) g_view[fd] = (unsigned char)view;
}

/* Is fd one of the supervisor's listeners (entry i's inode)? */
static int holds_listener(int fd, int i) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && (unsigned long long)st.st_ino == g_env.inodes[i];
}

/* Does fd hold one of the supervisor's listeners, whatever its number? */
static int is_ours(int fd) {
    struct stat st;
    if (!g_active || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) return 0;
    for (int i = 0; i < g_env.count; i++)
        if ((unsigned long long)st.st_ino == g_env.inodes[i]) return 1;
    return 0;
}

static int default_view(void) { return g_env.view_nonblocking ? kNonblocking : kBlocking; }

/* An fd we did not see arrive (received over a unix socket, inherited through exec from
 * a process that adopted it) is tracked from the first time its O_NONBLOCK is touched, so
 * that nobody flips the shared flag. */
static void track_if_ours(int fd) {
    if (!tracked(fd) && fd >= 0 && fd < kTableSize && is_ours(fd)) set_view(fd, default_view());
}

static void say(const char* line) {
    /* One line, one write: the worker's stderr is the only channel we have. */
    ssize_t r = write(2, line, strlen(line));
    (void)r;
}

/* Removes our own file from LD_PRELOAD (scope=worker), keeping the user's entries. */
static void drop_from_preload(void) {
    Dl_info info;
    const char* preload = getenv("LD_PRELOAD");
    if (preload == NULL || dladdr((void*)&drop_from_preload, &info) == 0 || info.dli_fname == NULL) return;
    char out[4096];
    if (adopt_remove_preload_entry(preload, info.dli_fname, out, sizeof out) < 0) return;
    if (out[0] == '\0') unsetenv("LD_PRELOAD");
    else setenv("LD_PRELOAD", out, 1);
}

__attribute__((constructor)) static void adopt_init(void) {
    REAL(bind), REAL(listen), REAL(accept), REAL(accept4), REAL(fcntl), REAL(ioctl);
    REAL(close), REAL(shutdown), REAL(dup), REAL(dup2), REAL(dup3);
    real_fcntl64 = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl64");
    const char* text = getenv("SUPERVISOR_ADOPT");
    if (text == NULL) return;
    if (adopt_parse_env(text, &g_env) < 0) {
        say("supervisor-adopt: ignoring a malformed SUPERVISOR_ADOPT: bind() is not interposed\n");
        return;
    }
    g_active = 1;
    /* The inherited listeners on 3.., and in a program exec'd by an adopting one, the
     * fds it adopted onto (they keep their number across exec). */
    for (int fd = 0; fd < 1024; fd++) track_if_ours(fd);
    if (g_env.scope_worker) {
        unsetenv("SUPERVISOR_ADOPT");
        drop_from_preload();
    }
}

/* The listener entry serving req, or -1; *family_clash set when only a dual-stack
 * listener of the other family covers it. */
static int find_listener(const struct sockaddr* req, socklen_t len, int* family_clash) {
    *family_clash = -1;
    for (int i = 0; i < g_env.count; i++) {
        int fd = g_env.fds[i];
        if (!holds_listener(fd, i)) continue;
        struct sockaddr_storage la;
        socklen_t ll = sizeof la;
        if (getsockname(fd, (struct sockaddr*)&la, &ll) < 0) continue;
        int v6only = 0;
        socklen_t ol = sizeof v6only;
        if (la.ss_family == AF_INET6) getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
        int verdict = adopt_match((struct sockaddr*)&la, ll, v6only, req, len);
        if (verdict == ADOPT_MATCH) return i;
        if (verdict == ADOPT_FAMILY) *family_clash = i;
    }
    return -1;
}

/* A relative unix path is relative to the caller's directory: make it absolute. */
static socklen_t absolute_unix(const struct sockaddr* req, socklen_t len, struct sockaddr_un* out) {
    const struct sockaddr_un* un = (const struct sockaddr_un*)req;
    if (req->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) || un->sun_path[0] == '\0' ||
        un->sun_path[0] == '/')
        return 0;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return 0;
    size_t n = strnlen(un->sun_path, len - offsetof(struct sockaddr_un, sun_path));
    size_t c = strlen(cwd);
    if (c + 1 + n + 1 > sizeof out->sun_path) return 0;
    memset(out, 0, sizeof *out);
    out->sun_family = AF_UNIX;
    memcpy(out->sun_path, cwd, c);
    out->sun_path[c] = '/';
    memcpy(out->sun_path + c + 1, un->sun_path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + c + 1 + n + 1);
}

static int refuse_family(const struct sockaddr* req, socklen_t len) {
    char addr[128], line[512];
    adopt_format_addr(req, len, addr, sizeof addr);
    snprintf(line, sizeof line,
             "supervisor-adopt: bind %s not adopted: the supervisor serves this port on a dual-stack IPv6 "
             "listener and this is an IPv4 socket; give the supervisor --listen %s instead of a bare port\n",
             addr, addr);
    say(line);
    errno = EADDRINUSE;
    return -1;
}

/* dup3 the listener onto the caller's fd, keeping its close-on-exec and, as its view, its
 * O_NONBLOCK; the caller's own socket is closed by dup3. */
static int adopt_onto(int fd, int listener_fd) {
    int fdflags = REAL(fcntl)(fd, F_GETFD);
    int flflags = REAL(fcntl)(fd, F_GETFL);
    if (fdflags < 0 || flflags < 0) return -1;
    if (REAL(dup3)(listener_fd, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) return -1;
    set_view(fd, (flflags & O_NONBLOCK) ? kNonblocking : kBlocking);
    return 0;
}

EXPORT int bind(int fd, const struct sockaddr* addr, socklen_t len) {
    if (!g_active || addr == NULL || tracked(fd)) return REAL(bind)(fd, addr, len);
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) return REAL(bind)(fd, addr, len);
    struct sockaddr_un abs_un;
    socklen_t abs_len = absolute_unix(addr, len, &abs_un);
    const struct sockaddr* req = abs_len ? (const struct sockaddr*)&abs_un : addr;
    int clash;
    int i = find_listener(req, abs_len ? abs_len : len, &clash);
    if (i < 0) return clash >= 0 ? refuse_family(addr, len) : REAL(bind)(fd, addr, len);
    return adopt_onto(fd, g_env.fds[i]);
}

EXPORT int listen(int fd, int backlog) {
    /* Already listening, with the supervisor's backlog, which every generation shares. */
    if (tracked(fd)) return 0;
    return REAL(listen)(fd, backlog);
}

/* A blocking accept() on a non-blocking listener: wait for a connection, then try; another
 * process may take it first (EAGAIN), then wait again. A signal ends the wait with EINTR, as
 * it may end a blocking accept(). */
static int blocking_accept(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
    for (;;) {
        int r = REAL(accept4)(fd, addr, len, flags);
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return r;
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, -1) < 0) return -1;
    }
}

/* After shutdown() of its copy, a process sees what a shut-down listener gives. */
static int shut(int fd) {
    if (!(g_view[fd] & kShutBit)) return 0;
    errno = EINVAL;
    return 1;
}

EXPORT int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
    if (tracked(fd) && shut(fd)) return -1;
    if (tracked(fd) && view_of(fd) == kBlocking) return blocking_accept(fd, addr, len, flags);
    return REAL(accept4)(fd, addr, len, flags);
}

EXPORT int accept(int fd, struct sockaddr* addr, socklen_t* len) {
    if (tracked(fd) && shut(fd)) return -1;
    if (tracked(fd) && view_of(fd) == kBlocking) return blocking_accept(fd, addr, len, 0);
    return REAL(accept)(fd, addr, len);
}

/* shutdown(2) of a listening socket stops it listening, for every process that holds it:
 * the supervisor and every generation (servers call it when they stop, e.g. WEBrick).
 * On a listener fd it only marks this process's copy as shut. */
EXPORT int shutdown(int fd, int how) {
    if (tracked(fd)) {
        g_view[fd] |= kShutBit;
        return 0;
    }
    return REAL(shutdown)(fd, how);
}

/* F_GETFL/F_SETFL on a tracked fd: O_NONBLOCK is the fd's view, never the shared flag. */
static int fcntl_tracked(fcntl_fn real, int fd, int cmd, long arg) {
    if (cmd == F_GETFL) {
        int fl = real(fd, F_GETFL);
        if (fl < 0) return fl;
        return (fl & ~O_NONBLOCK) | (view_of(fd) == kNonblocking ? O_NONBLOCK : 0);
    }
    int fl = real(fd, F_GETFL);
    if (fl < 0) return fl;
    int r = real(fd, F_SETFL, (int)((arg & ~(long)O_NONBLOCK) | (fl & O_NONBLOCK)));
    if (r == 0) set_view(fd, (g_view[fd] & kShutBit) | ((arg & O_NONBLOCK) ? kNonblocking : kBlocking));
    return r;
}

static int fcntl_common(fcntl_fn real, int fd, int cmd, long arg) {
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (cmd == F_SETFL) track_if_ours(fd);
    if (tracked(fd) && (cmd == F_GETFL || cmd == F_SETFL)) return fcntl_tracked(real, fd, cmd, arg);
    int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && tracked(fd)) set_view(r, g_view[fd]);
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long); /* every fcntl argument is an int, a long or a pointer */
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl_common(real_fcntl64 != NULL ? real_fcntl64 : REAL(fcntl), fd, cmd, arg);
}

EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (request == FIONBIO) track_if_ours(fd);
    if (request == FIONBIO && tracked(fd) && arg != NULL) {
        set_view(fd, (g_view[fd] & kShutBit) | (*(const int*)arg ? kNonblocking : kBlocking));
        return 0;
    }
    return REAL(ioctl)(fd, request, arg);
}

EXPORT int close(int fd) {
    if (fd >= 0 && fd < kTableSize) g_view[fd] = kUntracked;
    return REAL(close)(fd);
}

EXPORT int dup(int fd) {
    int r = REAL(dup)(fd);
    if (r >= 0) set_view(r, tracked(fd) ? g_view[fd] : kUntracked);
    return r;
}

EXPORT int dup2(int fd, int to) {
    int r = REAL(dup2)(fd, to);
    if (r >= 0 && fd != to) set_view(r, tracked(fd) ? g_view[fd] : kUntracked);
    return r;
}

EXPORT int dup3(int fd, int to, int flags) {
    int r = REAL(dup3)(fd, to, flags);
    if (r >= 0) set_view(r, tracked(fd) ? g_view[fd] : kUntracked);
    return r;
}

/* Address matching and SUPERVISOR_ADOPT parsing for the --adopt-bind preload (pure C: no
 * allocation, no syscalls; shared by the preload, the unit tests and the fuzzer). */
#pragma once

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { ADOPT_MAX_FDS = 64 };

/* SUPERVISOR_ADOPT, as the supervisor sets it (docs/ADOPT.md):
 *   "fds=3:<inode>,4:<inode> view=blocking|nonblocking scope=all|worker"
 * Space-separated key=value fields; fds is required, view defaults to blocking and scope
 * to all. Every fd is an inherited listener; <inode> is its socket's inode (fstat), which
 * proves the fd still holds the supervisor's socket when bind() is called. */
struct adopt_env {
    int count;
    int fds[ADOPT_MAX_FDS];
    unsigned long long inodes[ADOPT_MAX_FDS];
    int view_nonblocking; /* how the listeners look to the worker: O_NONBLOCK as with --nonblocking */
    int scope_worker;     /* scope=worker: programs the worker execs do not get the preload */
};

/* Parses text into out. Returns 0, or -EINVAL for anything malformed (unknown key, bad
 * number, duplicate fd, more than ADOPT_MAX_FDS, no fds). */
int adopt_parse_env(const char* text, struct adopt_env* out);

enum adopt_verdict {
    ADOPT_NO = 0,      /* the listener does not serve this address: bind normally */
    ADOPT_MATCH = 1,   /* the listener serves every address the bind asks for: adopt it */
    ADOPT_FAMILY = -1  /* an IPv4 bind of a port served by a dual-stack IPv6 listener:
                          adopting would hand an IPv4 socket IPv6 peers; refuse and explain */
};

/* Does the listener bound at `listener` (v6only: its IPV6_V6ONLY) serve a bind() of `req`?
 * TCP: same port (never port 0), and the same address, or a wildcard listener of the same
 * family (0.0.0.0 serves every IPv4 address, [::] every IPv6 one and, when dual-stack,
 * IPv4 ones too: ADOPT_FAMILY for an IPv4 socket, ADOPT_MATCH for a v4-mapped IPv6 one).
 * Unix: the same path (abstract names: the same bytes). `req` paths must be absolute:
 * the caller resolves a relative one first. Lengths are checked: short addresses are
 * ADOPT_NO. */
int adopt_match(const struct sockaddr* listener, socklen_t listener_len, int v6only,
                const struct sockaddr* req, socklen_t req_len);

#ifdef __cplusplus
}
#endif

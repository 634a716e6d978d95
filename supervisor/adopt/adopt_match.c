/* Address matching and SUPERVISOR_ADOPT parsing for the --adopt-bind preload. */
#include "supervisor/adopt/adopt_match.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

/* Parses a decimal number of at most 20 digits ending at a delimiter; returns the end. */
static const char* parse_number(const char* p, unsigned long long max, unsigned long long* out) {
    unsigned long long v = 0;
    const char* start = p;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10) return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == start) return NULL;
    *out = v;
    return p;
}

static int field_is(const char* p, const char* end, const char* word) {
    size_t n = strlen(word);
    return (size_t)(end - p) == n && memcmp(p, word, n) == 0;
}

static int parse_fds(const char* p, const char* end, struct adopt_env* out) {
    while (p < end) {
        unsigned long long fd, ino;
        if (out->count == ADOPT_MAX_FDS) return -EINVAL;
        p = parse_number(p, 1u << 30, &fd);
        if (p == NULL || p >= end || *p != ':') return -EINVAL;
        p = parse_number(p + 1, ~0ULL, &ino);
        if (p == NULL || (p < end && *p != ',') || (p < end && p + 1 == end)) return -EINVAL;
        for (int i = 0; i < out->count; i++)
            if (out->fds[i] == (int)fd) return -EINVAL;
        out->fds[out->count] = (int)fd;
        out->inodes[out->count] = ino;
        out->count++;
        if (p < end) p++;
    }
    return out->count > 0 ? 0 : -EINVAL;
}

/* One "key=value" field in [p, end). */
static int parse_field(const char* p, const char* end, struct adopt_env* out, int* seen_fds) {
    const char* eq = memchr(p, '=', (size_t)(end - p));
    if (eq == NULL) return -EINVAL;
    const char* v = eq + 1;
    if (field_is(p, eq, "fds")) {
        if (*seen_fds) return -EINVAL;
        *seen_fds = 1;
        return parse_fds(v, end, out);
    }
    if (field_is(p, eq, "view")) {
        if (field_is(v, end, "blocking")) out->view_nonblocking = 0;
        else if (field_is(v, end, "nonblocking")) out->view_nonblocking = 1;
        else return -EINVAL;
        return 0;
    }
    if (field_is(p, eq, "scope")) {
        if (field_is(v, end, "all")) out->scope_worker = 0;
        else if (field_is(v, end, "worker")) out->scope_worker = 1;
        else return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

int adopt_parse_env(const char* text, struct adopt_env* out) {
    memset(out, 0, sizeof *out);
    int seen_fds = 0;
    const char* p = text;
    while (*p != '\0') {
        if (*p == ' ') {
            p++;
            continue;
        }
        const char* end = strchr(p, ' ');
        if (end == NULL) end = p + strlen(p);
        int r = parse_field(p, end, out, &seen_fds);
        if (r < 0) {
            memset(out, 0, sizeof *out);
            return r;
        }
        p = end;
    }
    if (!seen_fds) {
        memset(out, 0, sizeof *out);
        return -EINVAL;
    }
    return 0;
}

static const unsigned char kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int match_v4(const struct sockaddr_in* l, const struct sockaddr_in* r) {
    if (r->sin_port == 0 || l->sin_port != r->sin_port) return ADOPT_NO;
    if (l->sin_addr.s_addr == htonl(INADDR_ANY)) return ADOPT_MATCH;
    return l->sin_addr.s_addr == r->sin_addr.s_addr ? ADOPT_MATCH : ADOPT_NO;
}

static int match_v6(const struct sockaddr_in6* l, int v6only, const struct sockaddr_in6* r) {
    if (r->sin6_port == 0 || l->sin6_port != r->sin6_port) return ADOPT_NO;
    int l_any = IN6_IS_ADDR_UNSPECIFIED(&l->sin6_addr);
    int r_mapped = memcmp(r->sin6_addr.s6_addr, kV4MappedPrefix, sizeof kV4MappedPrefix) == 0;
    if (l_any) return r_mapped && v6only ? ADOPT_NO : ADOPT_MATCH;
    if (memcmp(&l->sin6_addr, &r->sin6_addr, sizeof l->sin6_addr) != 0) return ADOPT_NO;
    /* fe80::1%eth0 and fe80::1%eth1 are different addresses; 0 is "unspecified". */
    if (l->sin6_scope_id != 0 && r->sin6_scope_id != 0 && l->sin6_scope_id != r->sin6_scope_id) return ADOPT_NO;
    return ADOPT_MATCH;
}

/* An IPv4 bind against an IPv6 listener: only a dual-stack wildcard one serves it. */
static int match_v4_on_v6(const struct sockaddr_in6* l, int v6only, const struct sockaddr_in* r) {
    if (r->sin_port == 0 || l->sin6_port != r->sin_port) return ADOPT_NO;
    return IN6_IS_ADDR_UNSPECIFIED(&l->sin6_addr) && !v6only ? ADOPT_FAMILY : ADOPT_NO;
}

static int match_unix(const struct sockaddr_un* l, socklen_t l_len, const struct sockaddr_un* r, socklen_t r_len) {
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t ln = (size_t)l_len - off, rn = (size_t)r_len - off;
    if (ln == 0 || rn == 0) return ADOPT_NO; /* unnamed: autobind, nothing to serve */
    if (l->sun_path[0] == '\0' || r->sun_path[0] == '\0') {
        /* Abstract: the name is every byte of the address, NULs included. */
        return ln == rn && memcmp(l->sun_path, r->sun_path, ln) == 0 ? ADOPT_MATCH : ADOPT_NO;
    }
    /* Pathname: up to the first NUL (the length may or may not count it). */
    size_t lp = strnlen(l->sun_path, ln), rp = strnlen(r->sun_path, rn);
    return lp == rp && memcmp(l->sun_path, r->sun_path, lp) == 0 ? ADOPT_MATCH : ADOPT_NO;
}

int adopt_match(const struct sockaddr* listener, socklen_t listener_len, int v6only,
                const struct sockaddr* req, socklen_t req_len) {
    if (listener == NULL || req == NULL || listener_len < (socklen_t)sizeof(sa_family_t) ||
        req_len < (socklen_t)sizeof(sa_family_t))
        return ADOPT_NO;
    int lf = listener->sa_family, rf = req->sa_family;
    if (lf == AF_INET && rf == AF_INET && listener_len >= (socklen_t)sizeof(struct sockaddr_in) &&
        req_len >= (socklen_t)sizeof(struct sockaddr_in))
        return match_v4((const struct sockaddr_in*)listener, (const struct sockaddr_in*)req);
    if (lf == AF_INET6 && rf == AF_INET6 && listener_len >= (socklen_t)sizeof(struct sockaddr_in6) &&
        req_len >= (socklen_t)sizeof(struct sockaddr_in6))
        return match_v6((const struct sockaddr_in6*)listener, v6only, (const struct sockaddr_in6*)req);
    if (lf == AF_INET6 && rf == AF_INET && listener_len >= (socklen_t)sizeof(struct sockaddr_in6) &&
        req_len >= (socklen_t)sizeof(struct sockaddr_in))
        return match_v4_on_v6((const struct sockaddr_in6*)listener, v6only, (const struct sockaddr_in*)req);
    if (lf == AF_UNIX && rf == AF_UNIX && listener_len <= (socklen_t)sizeof(struct sockaddr_un) &&
        req_len <= (socklen_t)sizeof(struct sockaddr_un))
        return match_unix((const struct sockaddr_un*)listener, listener_len, (const struct sockaddr_un*)req, req_len);
    return ADOPT_NO;
}

/* Text helpers of the --adopt-bind preload. */
#include "supervisor/adopt/adopt_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

void adopt_format_addr(const struct sockaddr* addr, socklen_t len, char* buf, size_t size) {
    char ip[INET6_ADDRSTRLEN];
    snprintf(buf, size, "?");
    if (addr == NULL || len < (socklen_t)sizeof(sa_family_t)) return;
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in* a = (const struct sockaddr_in*)addr;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6* a = (const struct sockaddr_in6*)addr;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else if (addr->sa_family == AF_UNIX && len <= (socklen_t)sizeof(struct sockaddr_un)) {
        const struct sockaddr_un* a = (const struct sockaddr_un*)addr;
        size_t n = (size_t)len - offsetof(struct sockaddr_un, sun_path);
        if (n > 0 && a->sun_path[0] == '\0') snprintf(buf, size, "unix:@%.*s", (int)strnlen(a->sun_path + 1, n - 1), a->sun_path + 1);
        else snprintf(buf, size, "unix:%.*s", (int)strnlen(a->sun_path, n), a->sun_path);
    }
}

int adopt_remove_preload_entry(const char* preload, const char* path, char* out, size_t size) {
    size_t used = 0, plen = strlen(path);
    if (size == 0) return -ENOSPC;
    out[0] = '\0';
    const char* p = preload;
    while (*p != '\0') {
        size_t n = strcspn(p, ": ");
        if (n > 0 && !(n == plen && memcmp(p, path, n) == 0)) {
            size_t need = n + (used > 0 ? 1 : 0);
            if (used + need + 1 > size) return -ENOSPC;
            if (used > 0) out[used++] = ':';
            memcpy(out + used, p, n);
            used += n;
            out[used] = '\0';
        }
        p += n;
        if (*p != '\0') p++;
    }
    return 0;
}

/* Text helpers of the --adopt-bind preload (pure C, no allocation): addresses for its one
 * line on stderr, and LD_PRELOAD editing for scope=worker. */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock", "unix:@name"; "?" for anything else.
 * Always NUL-terminates buf (size > 0). */
void adopt_format_addr(const struct sockaddr* addr, socklen_t len, char* buf, size_t size);

/* LD_PRELOAD without the entries equal to `path` (entries are separated by ':' or ' ', as
 * ld.so reads them), joined by ':'. Returns 0, or -ENOSPC when out (size bytes) is too small. */
int adopt_remove_preload_entry(const char* preload, const char* path, char* out, size_t size);

#ifdef __cplusplus
}
#endif

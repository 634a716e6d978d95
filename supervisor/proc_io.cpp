// Reading /proc and another process's memory for the readiness probe.
#include "supervisor/proc_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace sv {
namespace {

constexpr size_t kMaxProcText = 64 * 1024;

} // namespace

UniqueFd open_proc_dir(int pid) {
    return UniqueFd(::open(("/proc/" + std::to_string(pid)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

std::optional<std::string> read_text(int dir, const char* path) {
    UniqueFd fd(::openat(dir, path, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    std::string out;
    char buf[4096];
    while (out.size() < kMaxProcText) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::optional<std::string> read_link(int dir, const char* path) {
    char buf[256];
    ssize_t n = ::readlinkat(dir, path, buf, sizeof buf);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

std::vector<int> list_numbers(int dir, const char* path) {
    std::vector<int> out;
    int fd = ::openat(dir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    DIR* d = ::fdopendir(fd);  // owns fd from here
    if (!d) {
        ::close(fd);
        return out;
    }
    while (struct dirent* e = ::readdir(d)) {
        int n = 0;
        const char* p = e->d_name;
        if (*p < '0' || *p > '9') continue;
        for (; *p >= '0' && *p <= '9' && n < 100000000; p++) n = n * 10 + (*p - '0');
        if (*p == '\0') out.push_back(n);
    }
    ::closedir(d);
    return out;
}

std::vector<std::byte> read_memory(int pid, uint64_t addr, size_t size) {
    std::vector<std::byte> buf(size);
    struct iovec local { buf.data(), size };
    struct iovec remote { reinterpret_cast<void*>(addr), size };
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
}

} // namespace sv

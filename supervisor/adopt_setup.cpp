// --adopt-bind at startup: the preload's location and the command's fitness for it.
#include "supervisor/adopt_setup.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "supervisor/listeners.h"
#include "supervisor/unique_fd.h"
#include "supervisor_adopt_paths.h"

namespace sv {

namespace {

constexpr const char* kInstead =
    "; run it without --adopt-bind and let it take the listener on fd 3 (LISTEN_FDS, or --compat)";

std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    std::string exe(buf, static_cast<size_t>(n));
    return exe.substr(0, exe.rfind('/'));
}

// PT_INTERP among the program headers of an ELF of class Ehdr/Phdr.
template <typename Ehdr, typename Phdr>
int has_interp(int fd) {
    Ehdr eh;
    if (::pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) || eh.e_phentsize != sizeof(Phdr)) return -1;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Phdr ph;
        off_t off = static_cast<off_t>(eh.e_phoff + i * sizeof(Phdr));
        if (::pread(fd, &ph, sizeof ph, off) != static_cast<ssize_t>(sizeof ph)) return -1;
        if (ph.p_type == PT_INTERP) return 1;
    }
    return 0;
}

// 1: a dynamically linked ELF, 0: a static one, -1: unreadable, 2: a #! script (*interp set).
int classify(const std::string& path, std::string* interp) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return -1;
    char head[256];
    ssize_t n = ::pread(fd.get(), head, sizeof head - 1, 0);
    if (n < 4) return -1;
    std::string text(head, static_cast<size_t>(n));
    if (text.rfind("#!", 0) == 0) {
        size_t start = text.find_first_not_of(" \t", 2);
        if (start == std::string::npos) return -1;
        *interp = text.substr(start, text.find_first_of(" \t\n", start) - start);
        return 2;
    }
    if (text.rfind("\x7f" "ELF", 0) != 0 || n < EI_NIDENT) return -1;
    return text[EI_CLASS] == ELFCLASS64 ? has_interp<Elf64_Ehdr, Elf64_Phdr>(fd.get())
                                        : has_interp<Elf32_Ehdr, Elf32_Phdr>(fd.get());
}

Result<Ok> check_file(const std::string& path, const std::string& what) {
    struct stat st{};
    if (::stat(path.c_str(), &st) < 0) return Error{errno, "--adopt-bind: cannot inspect " + what + ": " + std::strerror(errno)};
    if (st.st_mode & (S_ISUID | S_ISGID))
        return Error{EPERM, "--adopt-bind cannot enter " + what + ": it is set" + ((st.st_mode & S_ISUID) ? "uid" : "gid") +
                                ", and the dynamic linker ignores LD_PRELOAD for it" + kInstead};
    return Ok{};
}

} // namespace

Result<std::string> locate_adopt_library() {
    std::string dir = self_dir();
    if (dir.empty()) return Error{errno, std::string("--adopt-bind: cannot read /proc/self/exe: ") + std::strerror(errno)};
    const std::string candidates[] = {dir + "/" + kAdoptLibName, dir + "/" + kAdoptLibFromBindir + "/" + kAdoptLibName};
    for (const auto& c : candidates) {
        if (::access(c.c_str(), R_OK) != 0) continue;
        char real[PATH_MAX];
        std::string path = ::realpath(c.c_str(), real) != nullptr ? real : c;
        if (path.find_first_of(": ") != std::string::npos)
            return Error{EINVAL, "--adopt-bind: the library path " + path + " holds ':' or ' ', which LD_PRELOAD cannot carry"};
        return path;
    }
    return Error{ENOENT, "--adopt-bind: cannot find " + std::string(kAdoptLibName) + " (looked in " + candidates[0] +
                             " and " + candidates[1] + "): reinstall supervisor with its library"};
}

Result<Ok> check_adoptable(const std::string& path) {
    if (auto r = check_file(path, "'" + path + "'"); !r) return r;
    std::string interp;
    int kind = classify(path, &interp);
    if (kind == 2) {
        if (auto r = check_file(interp, "'" + path + "' (its interpreter " + interp + ")"); !r) return r;
        std::string inner;
        kind = classify(interp, &inner) == 0 ? 0 : 1;
        if (kind == 0)
            return Error{ENOEXEC, "--adopt-bind cannot enter '" + path + "': its interpreter " + interp +
                                      " is statically linked (no ELF interpreter), so LD_PRELOAD never loads" + kInstead};
    }
    if (kind == 0)
        return Error{ENOEXEC, "--adopt-bind cannot enter '" + path +
                                  "': it is statically linked (no ELF interpreter, e.g. a Go binary), so LD_PRELOAD never "
                                  "loads" + kInstead};
    return Ok{};
}

void make_listeners_nonblocking(const std::vector<Listener>& listeners) {
    for (const auto& l : listeners) {
        int fl = ::fcntl(l.fd.get(), F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(l.fd.get(), F_SETFL, fl | O_NONBLOCK);
    }
}

std::vector<unsigned long long> listener_inodes(const std::vector<Listener>& listeners) {
    std::vector<unsigned long long> out;
    for (const auto& l : listeners) {
        struct stat st{};
        out.push_back(::fstat(l.fd.get(), &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0);
    }
    return out;
}

} // namespace sv

// Command resolution: what execvp(3) would run for argv[0], and whether execve(2) can run
// it, checked before anything is bound so a typo is one plain line at startup.
#include "supervisor/command.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "supervisor/unique_fd.h"

namespace sv {

namespace {

bool is_executable_file(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Other formats may be registered with binfmt_misc (jars, wine, qemu): then only execve knows.
bool binfmt_misc_in_use() {
    DIR* dir = ::opendir("/proc/sys/fs/binfmt_misc");
    if (dir == nullptr) return false;
    bool used = false;
    while (dirent* e = ::readdir(dir)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && n != "register" && n != "status") used = true;
    }
    ::closedir(dir);
    return used;
}

// What execve(2) would reject in the file's first bytes, said plainly: a #! line naming a
// missing interpreter (execve's bare ENOENT reads as if the script itself were missing),
// or neither an ELF binary nor a script (ENOEXEC). Unreadable files are left to execve.
Result<std::string> check_exec_format(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return path;
    char head[256];
    ssize_t n = ::read(fd.get(), head, sizeof head - 1);
    if (n < 0) return path;
    std::string text(head, static_cast<size_t>(n));
    if (text.rfind("\x7f" "ELF", 0) == 0) return path;
    if (text.rfind("#!", 0) == 0) {
        size_t start = text.find_first_not_of(" \t", 2);
        if (start == std::string::npos) return Error{ENOEXEC, "cannot execute '" + path + "': empty #! line"};
        std::string interp = text.substr(start, text.find_first_of(" \t\n", start) - start);
        if (::access(interp.c_str(), X_OK) == 0) return path;
        int err = errno == ENOENT ? ENOENT : EACCES;
        return Error{err, "cannot execute '" + path + "': bad interpreter '" + interp + "' in its #! line: " + std::strerror(err)};
    }
    if (binfmt_misc_in_use()) return path;
    return Error{ENOEXEC, "cannot execute '" + path + "': " + std::strerror(ENOEXEC) + " (neither an ELF binary nor a #! script)"};
}

} // namespace

Result<std::string> resolve_command(const std::string& given, const std::string& path_env, const std::string& base_dir) {
    if (given.find('/') != std::string::npos) {
        const std::string name = given.front() != '/' && !base_dir.empty() ? base_dir + "/" + given : given;
        struct stat st{};
        int err = 0;
        if (::stat(name.c_str(), &st) < 0) err = errno;
        else if (S_ISDIR(st.st_mode)) err = EISDIR;
        else if (!S_ISREG(st.st_mode) || ::access(name.c_str(), X_OK) < 0) err = EACCES;
        if (err == 0) return check_exec_format(name);
        return Error{err, "cannot execute '" + name + "': " + std::strerror(err)};
    }
    bool found_not_executable = false;
    size_t start = 0;
    while (start <= path_env.size()) {
        size_t colon = path_env.find(':', start);
        std::string dir = path_env.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + given;
        if (is_executable_file(candidate)) return check_exec_format(candidate);
        if (::access(candidate.c_str(), F_OK) == 0) found_not_executable = true;
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    int err = found_not_executable ? EACCES : ENOENT;
    return Error{err, "cannot execute '" + given + "': " + std::strerror(err) + (err == ENOENT ? " (not found in PATH)" : "")};
}

} // namespace sv

// --user/--group → Credentials, looked up once at startup (the child only makes syscalls).
#include "supervisor/credentials.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "supervisor/parse.h"

namespace sv {

Result<Credentials> resolve_credentials(const std::string& user, const std::string& group) {
    Credentials c;
    if (!user.empty()) {
        passwd* pw = nullptr;
        if (auto n = parse_uint(user)) pw = ::getpwuid(static_cast<uid_t>(*n));
        else pw = ::getpwnam(user.c_str());
        if (pw == nullptr) return Error{0, "invalid --user '" + user + "': no such user"};
        c.uid = static_cast<int>(pw->pw_uid);
        c.gid = static_cast<int>(pw->pw_gid);
        c.user = pw->pw_name;
        c.home = pw->pw_dir;
        int n = 64;
        std::vector<gid_t> list(static_cast<size_t>(n));
        if (::getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n) < 0) {
            list.resize(static_cast<size_t>(n));
            ::getgrouplist(pw->pw_name, pw->pw_gid, list.data(), &n);
        }
        list.resize(static_cast<size_t>(n));
        c.groups.assign(list.begin(), list.end());
    }
    if (!group.empty()) {
        struct group* gr = nullptr;
        if (auto n = parse_uint(group)) gr = ::getgrgid(static_cast<gid_t>(*n));
        else gr = ::getgrnam(group.c_str());
        if (gr == nullptr) return Error{0, "invalid --group '" + group + "': no such group"};
        c.gid = static_cast<int>(gr->gr_gid);
        if (user.empty()) c.groups.clear();  // --group alone: no supplementary groups
    }
    return c;
}

} // namespace sv

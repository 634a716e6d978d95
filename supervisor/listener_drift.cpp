// Listener drift.
#include "supervisor/listener_drift.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace sv {

namespace {

bool has_path(const Listener& l) {
    return l.spec.kind == ListenSpec::Kind::Unix && !l.spec.path.empty() && l.spec.path[0] == '/';
}

std::string nonblock_text(const Listener& l, bool created_nonblocking) {
    if (created_nonblocking)
        return "listener drift name=" + l.spec.name + " addr=" + l.address +
               " O_NONBLOCK cleared by a worker (created non-blocking): servers that poll now block in accept()";
    return "listener drift name=" + l.spec.name + " addr=" + l.address +
           " O_NONBLOCK set by a worker (created blocking): older generations' blocking accept() now fails with EAGAIN";
}

std::string path_text(const Listener& l) {
    return "listener drift name=" + l.spec.name + " addr=" + l.address + " unix socket path " + l.spec.path +
           " was removed: new clients cannot connect; upgrade or restart to re-create it";
}

// Present and still the socket we bound (a stranger's file at the same path does not count).
bool path_intact(const Listener& l, DriftState::PerListener& s) {
    struct stat st{};
    if (::stat(l.spec.path.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode)) return false;
    if (s.inode == 0) s.inode = l.unix_inode != 0 ? l.unix_inode : st.st_ino;
    return st.st_ino == s.inode;
}

} // namespace

std::vector<DriftChange> check_drift(const std::vector<Listener>& listeners, DriftState& state) {
    std::vector<DriftChange> out;
    state.listeners.resize(listeners.size());
    for (size_t i = 0; i < listeners.size(); i++) {
        const Listener& l = listeners[i];
        auto& s = state.listeners[i];
        int fl = ::fcntl(l.fd.get(), F_GETFL);
        bool drift = fl >= 0 && ((fl & O_NONBLOCK) != 0) != state.created_nonblocking;
        if (drift != s.nonblock_drift) {
            s.nonblock_drift = drift;
            out.push_back({!drift, drift ? nonblock_text(l, state.created_nonblocking)
                                         : "listener drift gone name=" + l.spec.name + " addr=" + l.address +
                                               ": O_NONBLOCK is back as created"});
        }
        if (!has_path(l)) continue;
        bool missing = !path_intact(l, s);
        if (missing != s.path_drift) {
            s.path_drift = missing;
            out.push_back({!missing, missing ? path_text(l)
                                             : "listener drift gone name=" + l.spec.name + " addr=" + l.address +
                                                   ": unix socket path " + l.spec.path + " is ours again"});
        }
    }
    return out;
}

std::vector<std::string> current_drift(const std::vector<Listener>& listeners, const DriftState& state, size_t i) {
    std::vector<std::string> out;
    if (i >= listeners.size() || i >= state.listeners.size()) return out;
    if (state.listeners[i].nonblock_drift) out.push_back(nonblock_text(listeners[i], state.created_nonblocking));
    if (state.listeners[i].path_drift) out.push_back(path_text(listeners[i]));
    return out;
}

} // namespace sv

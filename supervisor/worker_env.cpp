// Worker environment construction.
#include "supervisor/worker_env.h"

#include <array>
#include <string_view>

namespace sv {

namespace {
constexpr int kFirstFd = 3;
}

bool is_managed_variable(const std::string& kv) {
    std::string_view key(kv);
    key = key.substr(0, key.find('='));
    constexpr std::array<std::string_view, 4> kExact{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NGINX"};
    for (auto k : kExact)
        if (key == k) return true;
    constexpr std::array<std::string_view, 4> kPrefixes{"NOTIFY_SOCKET", "SUPERVISOR_", "SERVER_STARTER_",
                                                        "EINHORN_"};
    for (auto p : kPrefixes)
        if (key.substr(0, p.size()) == p) return true;
    return false;
}

WorkerEnv build_worker_env(const WorkerEnvInput& in) {
    WorkerEnv env;
    for (const auto& kv : in.base)
        if (kv.find('=') != std::string::npos && !is_managed_variable(kv)) env.vars.push_back(kv);

    std::string names, starter, einhorn;
    for (size_t i = 0; i < in.listeners.size(); i++) {
        int fd = kFirstFd + static_cast<int>(i);
        if (i > 0) {
            names += ':';
            starter += ';';
            einhorn += ' ';
        }
        names += in.listeners[i].name;
        starter += in.listeners[i].address + "=" + std::to_string(fd);
        einhorn += std::to_string(fd);
    }
    const std::string gen = std::to_string(in.generation);
    env.vars.push_back("LISTEN_FDS=" + std::to_string(in.listeners.size()));
    env.listen_pid_index = env.vars.size();
    env.vars.push_back("LISTEN_PID=");
    env.vars.push_back("LISTEN_FDNAMES=" + names);
    env.vars.push_back("NOTIFY_SOCKET=" + in.notify_socket);
    env.vars.push_back("SUPERVISOR_GENERATION=" + gen);
    env.vars.push_back("SUPERVISOR_WORKER_INDEX=" + std::to_string(in.worker_index));
    if (in.compat.server_starter) {
        env.vars.push_back("SERVER_STARTER_PORT=" + starter);
        env.vars.push_back("SERVER_STARTER_GENERATION=" + gen);
    }
    if (in.compat.einhorn) {
        env.vars.push_back("EINHORN_FDS=" + einhorn);
        env.vars.push_back("EINHORN_FD_COUNT=" + std::to_string(in.listeners.size()));
        for (size_t i = 0; i < in.listeners.size(); i++)
            env.vars.push_back("EINHORN_FD_" + std::to_string(i) + "=" + std::to_string(kFirstFd + static_cast<int>(i)));
    }
    if (in.compat.nginx) {
        // nginx's binary-upgrade convention: "fd;fd;" (see ngx_add_inherited_sockets).
        std::string nginx;
        for (size_t i = 0; i < in.listeners.size(); i++) nginx += std::to_string(kFirstFd + static_cast<int>(i)) + ";";
        env.vars.push_back("NGINX=" + nginx);
    }
    return env;
}

} // namespace sv

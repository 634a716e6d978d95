// The worker's environment.
#include <doctest/doctest.h>

#include <algorithm>

#include "supervisor/worker_env.h"

using namespace sv;

namespace {
bool has(const WorkerEnv& env, const std::string& kv) {
    return std::find(env.vars.begin(), env.vars.end(), kv) != env.vars.end();
}
int count_key(const WorkerEnv& env, const std::string& key) {
    return static_cast<int>(std::count_if(env.vars.begin(), env.vars.end(),
                                          [&](const std::string& kv) { return kv.rfind(key + "=", 0) == 0; }));
}
} // namespace

TEST_CASE("systemd variables, ours replacing inherited ones") {
    WorkerEnvInput in;
    in.base = {"PATH=/usr/bin", "HOME=/root", "LISTEN_FDS=1", "LISTEN_PID=1", "LISTEN_FDNAMES=x",
               "NOTIFY_SOCKET=/run/systemd/notify", "SUPERVISOR_GENERATION=9", "EINHORN_FDS=7", "SERVER_STARTER_PORT=1=7",
               "NOEQUALS"};
    in.listeners = {{"http", "127.0.0.1:8080"}, {"admin", "/run/admin.sock"}};
    in.notify_socket = "@abc12";
    in.generation = 3;
    auto env = build_worker_env(in);
    CHECK(has(env, "PATH=/usr/bin"));
    CHECK(has(env, "HOME=/root"));
    CHECK_FALSE(has(env, "NOEQUALS"));
    CHECK(has(env, "LISTEN_FDS=2"));
    CHECK(has(env, "LISTEN_FDNAMES=http:admin"));
    CHECK(has(env, "NOTIFY_SOCKET=@abc12"));
    CHECK(has(env, "SUPERVISOR_GENERATION=3"));
    CHECK_EQ(env.vars[env.listen_pid_index], "LISTEN_PID=");
    for (const char* key : {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "SUPERVISOR_GENERATION",
                            "EINHORN_FDS", "SERVER_STARTER_PORT"}) {
        INFO(key);
        CHECK_EQ(count_key(env, key), 1);
    }
}

TEST_CASE("compatibility variables") {
    WorkerEnvInput in;
    in.listeners = {{"listen0", "8080"}, {"listen1", "[::1]:9090"}, {"listen2", "/tmp/s.sock"}};
    in.generation = 1;
    auto env = build_worker_env(in);
    CHECK(has(env, "SERVER_STARTER_PORT=8080=3;[::1]:9090=4;/tmp/s.sock=5"));
    CHECK(has(env, "SERVER_STARTER_GENERATION=1"));
    CHECK(has(env, "EINHORN_FDS=3 4 5"));
    CHECK(has(env, "EINHORN_FD_COUNT=3"));
    CHECK(has(env, "EINHORN_FD_0=3"));
    CHECK(has(env, "EINHORN_FD_2=5"));
}

TEST_CASE("managed variable names") {
    CHECK(is_managed_variable("LISTEN_FDS=1"));
    CHECK(is_managed_variable("NOTIFY_SOCKET=x"));
    CHECK(is_managed_variable("EINHORN_FD_3=x"));
    CHECK_FALSE(is_managed_variable("LISTEN=1"));
    CHECK_FALSE(is_managed_variable("LISTEN_FDS_EXTRA=1"));
    CHECK_FALSE(is_managed_variable("PATH=/bin"));
}

TEST_CASE("--compat selects the launcher variables; inherited ones are dropped regardless") {
    WorkerEnvInput in;
    in.base = {"NGINX=9;", "EINHORN_FDS=9", "SERVER_STARTER_PORT=1=9"};
    in.listeners = {{"a", "80"}, {"b", "/s"}};
    in.generation = 2;
    SUBCASE("none: systemd's only") {
        in.compat = Compat{false, false, false};
        auto env = build_worker_env(in);
        CHECK_EQ(count_key(env, "SERVER_STARTER_PORT"), 0);
        CHECK_EQ(count_key(env, "EINHORN_FDS"), 0);
        CHECK_EQ(count_key(env, "NGINX"), 0);
        CHECK(has(env, "LISTEN_FDS=2"));
    }
    SUBCASE("nginx") {
        in.compat = Compat{false, false, true};
        auto env = build_worker_env(in);
        CHECK(has(env, "NGINX=3;4;"));
        CHECK_EQ(count_key(env, "NGINX"), 1);
    }
}

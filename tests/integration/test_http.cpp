// Health and metrics: `ctl check` exit codes, the --http endpoint (/healthz, /readyz,
// /metrics parsed by Prometheus' own parser, /status, errors), --metrics-file, and hostile
// HTTP clients (slowloris, oversized heads, 10 000 connections) that change nothing for
// the workers.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness.h"

using namespace svtest;

namespace {

// The --http port from the `http listening addr=127.0.0.1:<port>` line; 0 if not logged in time.
int http_port(Supervised& sv) {
    auto m = sv.wait_log(R"(http listening addr=127\.0\.0\.1:(\d+))");
    return m ? std::stoi((*m)[1]) : 0;
}

std::vector<std::string> http_options(const Serving& f, std::vector<std::string> more = {}) {
    std::vector<std::string> o{"--control", f.control_socket(), "--http", "127.0.0.1:0"};
    o.insert(o.end(), more.begin(), more.end());
    return o;
}

// A non-blocking TCP connect to 127.0.0.1:port, started (not awaited); -1 when out of fds.
int start_connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Waits up to `seconds` for fd to be readable (data or EOF); then reads what there is.
std::string read_until_eof(int fd, double seconds) {
    std::string out;
    Stopwatch sw;
    while (sw.seconds() < seconds) {
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, 50);
        if (rc <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) out.append(buf, static_cast<size_t>(n));
        else if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
    }
    return out;
}

// Sends `bytes` on a fresh connection to the endpoint and reads the answer to EOF.
std::string raw_http(int port, const std::string& bytes, double seconds = 3.0) {
    int fd = start_connect(port);
    if (fd < 0) return "";
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, 2000);
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    std::string out = read_until_eof(fd, seconds);
    ::close(fd);
    return out;
}

// Requests to the worker's listener from a thread, until stopped: the workers' view of an attack.
struct WorkerLoad {
    explicit WorkerLoad(int port) : thread([this, port] {
        while (!stop) {
            std::string w;
            requests++;
            if (!get_ok(port, &w)) {
                failures++;
                if (why.empty()) why = w;
            }
        }
    }) {}
    ~WorkerLoad() { finish(); }
    void finish() {
        stop = true;
        if (thread.joinable()) thread.join();
    }
    std::atomic<bool> stop{false};
    std::atomic<unsigned> requests{0}, failures{0};
    std::string why;  // written by the thread only, read after finish()
    std::thread thread;
};

// The families /metrics must have, checked by prometheus_client's parser (Debian's
// python3-prometheus-client): it raises on anything it cannot read.
constexpr const char* kParseMetrics = R"(
import sys
from prometheus_client.parser import text_string_to_metric_families
names = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
need = ["supervisor_serving_generation", "supervisor_upgrades", "supervisor_last_upgrade_success",
        "supervisor_last_upgrade_timestamp_seconds", "supervisor_upgrade_duration_seconds",
        "supervisor_worker_restarts", "supervisor_workers", "supervisor_connections", "supervisor_build_info"]
missing = [n for n in need if n not in names]
if missing: sys.exit("missing families: " + " ".join(missing))
for f in names.values():
    for s in f.samples: print(s.name, ",".join(k + "=" + v for k, v in sorted(s.labels.items())), s.value)
)";

// Parses a metrics text with prometheus_client; the samples as "name labels value" lines.
RunOutcome parse_metrics(const TempDir& dir, const std::string& text) {
    REQUIRE(write_file(dir.file("metrics.txt"), text));
    REQUIRE(write_file(dir.file("parse.py"), kParseMetrics));
    std::string out_path = dir.file("parse.out");
    Process p({"/usr/bin/python3", dir.file("parse.py"), dir.file("metrics.txt")}, out_path);
    RunOutcome r;
    r.status = p.wait_exit(20.0);
    if (!r.status) p.signal(SIGKILL), p.wait_exit(5.0);
    r.code = exit_code_of(r.status);
    r.output = read_file(out_path);
    return r;
}

bool python_prometheus() { return system("/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null") == 0; }

} // namespace

TEST_CASE("ctl check and /readyz: serving (also after a failed upgrade), then stopping; 3 with no supervisor") {
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{1, "--drain-ms 60000 --ignore-term"}, {2, "--exit-code 1"}})));
    Supervised& sv = f.start({.options = http_options(f, {"--drain-timeout", "20s"})});
    int hp = http_port(sv);
    REQUIRE(hp > 0);
    auto ok = f.ctl({"check"});
    INFO("ctl output:\n", ok.output);
    CHECK_EQ(ok.code, 0);
    CHECK_EQ(ok.output, "serving gen=1 ready=1\n");

    auto failed = f.ctl({"upgrade"});
    CHECK_EQ(failed.code, 1);
    auto still = f.ctl({"check"});
    CHECK_EQ(still.code, 0);
    CHECK_EQ(still.output, "serving gen=1 ready=1\n");

    // gen 1 ignores the drain signal: the supervisor stays in `stopping` until the test ends.
    REQUIRE(sv.term());
    REQUIRE(sv.wait_log("stopping: draining"));
    auto stopping = f.ctl({"check"});
    INFO("ctl output:\n", stopping.output);
    CHECK_EQ(stopping.code, 1);
    CHECK_EQ(stopping.output, "not serving: stopping\n");
    // The same verdict over HTTP, for a load balancer: gen 1 is still ready, but we stop.
    auto r = http_get(hp, "/readyz");
    REQUIRE(r);
    CHECK_EQ(r->status, 503);
    CHECK_EQ(r->body, "not serving: stopping\n");
    CHECK_EQ(http_get(hp, "/healthz")->status, 200);
    REQUIRE(sv.proc().signal(SIGKILL));
    REQUIRE(sv.proc().wait_exit(3.0));
    auto gone = f.ctl({"check"});
    CHECK_EQ(gone.code, 3);
}

TEST_CASE("ctl check and /readyz while the first generation starts: 1 and 503, saying why") {
    Serving f;
    REQUIRE(write_script(f.script, fake_exec(f.dir, "--never-ready")));
    Supervised& sv = f.start({.options = http_options(f, {"--ready-timeout", "30s"}), .await = Serving::Await::Port});
    int hp = http_port(sv);
    REQUIRE(hp > 0);
    auto c = f.ctl({"check"});
    CHECK_EQ(c.code, 1);
    CHECK_EQ(c.output, "not serving: starting gen=1: no worker ready yet\n");
    auto r = http_get(hp, "/readyz");
    REQUIRE(r);
    CHECK_EQ(r->status, 503);
    CHECK_EQ(r->body, "not serving: starting gen=1: no worker ready yet\n");
    auto h = http_get(hp, "/healthz");
    REQUIRE(h);
    CHECK_EQ(h->status, 200);  // the loop answers: alive, if not ready
}

TEST_CASE("http: /healthz, /readyz, /status, /metrics (parsed by prometheus_client), errors; not inherited") {
    if (!python_prometheus()) {
        MESSAGE("skipped: /usr/bin/python3 has no prometheus_client (scripts/setup.sh --for-tests installs it)");
        return;
    }
    Serving f;
    REQUIRE(write_script(f.script, by_generation(f.dir, {{3, "--exit-code 1"}})));
    Supervised& sv = f.start({.options = http_options(f, {"--metrics-file", f.dir.file("m.prom")})});
    int hp = http_port(sv);
    REQUIRE(hp > 0);
    CHECK_EQ(wait_report(f.report(), f.w1, 3.0)["fds"], "0,1,2,3");  // the endpoint is not the worker's
    auto ready = http_get(hp, "/readyz");
    REQUIRE(ready);
    CHECK_EQ(ready->status, 200);
    CHECK_EQ(ready->body, "serving gen=1 ready=1\n");
    CHECK_EQ(ready->headers["connection"], "close");
    auto st = http_get(hp, "/status");
    REQUIRE(st);
    CHECK_EQ(st->headers["content-type"], "application/json");
    CHECK(st->body.find("\"pid\": " + std::to_string(f.w1)) != std::string::npos);

    REQUIRE(f.ctl({"upgrade"}).code == 0);   // gen 2: success
    REQUIRE(f.ctl({"upgrade"}).code == 1);   // gen 3 exits: failed, gen 2 serves
    auto m = http_get(hp, "/metrics");
    REQUIRE(m);
    CHECK_EQ(m->status, 200);
    CHECK_EQ(m->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    auto parsed = parse_metrics(f.dir, m->body);
    INFO("parser output:\n", parsed.output);
    REQUIRE_EQ(parsed.code, 0);
    CHECK(find_log_line(parsed.output, "^supervisor_serving_generation  2\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_upgrades_total result=success 1\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_upgrades_total result=failed 1\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_last_upgrade_success  0\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_upgrade_duration_seconds_count  2\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_workers state=ready 1\\.0$"));
    CHECK(find_log_line(parsed.output, "^supervisor_build_info version=\\S+ 1\\.0$"));
    // The metrics file follows, and parses too.
    CHECK(wait_until([&] { return read_file(f.dir.file("m.prom")).find("result=\"failed\"} 1") != std::string::npos; }, 3.0));
    CHECK_EQ(parse_metrics(f.dir, read_file(f.dir.file("m.prom"))).code, 0);

    SUBCASE("errors: 404, 405, 400, 431, 505") {
        CHECK_EQ(http_get(hp, "/")->status, 404);
        CHECK(raw_http(hp, "POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405 ", 0) == 0);
        CHECK(raw_http(hp, "HELLO\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
        CHECK(raw_http(hp, "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n").rfind("HTTP/1.1 431 ", 0) == 0);
        CHECK(raw_http(hp, "GET /healthz HTTP/2.0\r\n\r\n").rfind("HTTP/1.1 505 ", 0) == 0);
        std::string head = raw_http(hp, "HEAD /readyz HTTP/1.1\r\n\r\n");
        CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(head.substr(head.size() - 4) == "\r\n\r\n");  // no body
        CHECK_EQ(http_get(hp, "/healthz")->status, 200);
    }
}

TEST_CASE("http: unix:PATH endpoint, and a bad --http is one line and exit 2") {
    Serving f;
    std::string path = f.dir.file("http.sock");
    Supervised& sv = f.start({.options = {"--http", "unix:" + path}});
    REQUIRE(sv.wait_log("http listening addr=unix:"));
    auto r = http_get_unix(path, "/readyz");
    REQUIRE(r);
    CHECK_EQ(r->status, 200);
    expect_clean_stop(sv);
    CHECK_FALSE(file_exists(path));  // removed at exit

    for (const char* bad : {"9180", "localhost:9180", "127.0.0.1:99999", "name=127.0.0.1:1"}) {
        TempDir d;
        Process p({bins().supervisor, "--http", bad, "--", "true"}, d.file("log"));
        auto st = p.wait_exit(5.0);
        INFO("--http ", bad, ": ", p.log());
        CHECK_EQ(exit_code_of(st), 2);
        CHECK(p.log().find("--http") != std::string::npos);
    }
}

TEST_CASE("http: slowloris, oversized heads and 10 000 connections change nothing for the workers") {
    Serving f;
    Supervised& sv = f.start({.options = http_options(f)});
    int hp = http_port(sv);
    REQUIRE(hp > 0);
    rlimit rl{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rlimit want{std::min<rlim_t>(rl.rlim_max, 20000), rl.rlim_max};
    REQUIRE(setrlimit(RLIMIT_NOFILE, &want) == 0);
    struct Restore {
        rlimit rl;
        ~Restore() { setrlimit(RLIMIT_NOFILE, &rl); }
    } restore{rl};
    if (want.rlim_cur < 10500) {
        MESSAGE("skipped: RLIMIT_NOFILE hard limit ", rl.rlim_max, " < 10500");
        return;
    }
    WorkerLoad load(f.port);
    Stopwatch attack;

    // Slowloris: 100 heads that never end, a byte at a time. Below the cap, so others get in;
    // all are closed at the request timeout (5 s) with 408.
    std::vector<int> slow;
    for (int i = 0; i < 100; i++) slow.push_back(start_connect(hp));
    for (int round = 0; round < 3; round++)
        for (int fd : slow) (void)::send(fd, round == 0 ? "GET /readyz HTTP/1.1\r\n" : "X", round == 0 ? 22 : 1, MSG_NOSIGNAL);
    CHECK_EQ(http_get(hp, "/healthz")->status, 200);
    CHECK_EQ(f.ctl({"status"}).code, 0);
    // Oversized heads, meanwhile.
    for (int i = 0; i < 20; i++)
        CHECK(raw_http(hp, "GET / HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a')).rfind("HTTP/1.1 431 ", 0) == 0);
    std::string late = read_until_eof(slow.front(), 10.0);
    CHECK(late.rfind("HTTP/1.1 408 ", 0) == 0);
    for (int fd : slow) ::close(fd);

    // 10 000 connections at once: past the cap each gets 503 and is closed, the loop never blocks.
    std::vector<int> flood;
    for (int i = 0; i < 10000; i++) {
        int fd = start_connect(hp);
        if (fd >= 0) flood.push_back(fd);
    }
    CHECK_GE(flood.size(), 10000u);
    auto during = f.ctl({"status"}, 10.0);
    CHECK_EQ(during.code, 0);
    CHECK(sv.wait_log("http: clients at the cap \\(128\\)"));  // the flood went past the cap
    for (int fd : flood) ::close(fd);
    // Afterwards: the endpoint answers again (the flood's clients are gone or timed out).
    CHECK(wait_until([&] {
        auto r = http_get(hp, "/healthz", 1.0);
        return r && r->status == 200;
    }, 10.0));
    load.finish();
    INFO("first failure: ", load.why);
    MESSAGE("attack took ", attack.seconds(), " s; worker requests meanwhile: ", load.requests.load());
    CHECK_GT(load.requests.load(), 10u);
    CHECK_EQ(load.failures.load(), 0u);
    CHECK(sv.proc().alive());
}

TEST_CASE("connections per worker: ctl status (table and JSON), /metrics and the drain log, via sock_diag") {
    REQUIRE(have_program(bins().demo_worker));
    Serving f;
    Supervised& sv = f.start({.options = http_options(f, {"--drain-timeout", "10s"}), .command = {bins().demo_worker}});
    int hp = http_port(sv);
    REQUIRE(hp > 0);
    std::vector<int> held;
    for (int i = 0; i < 5; i++) held.push_back(start_connect(f.port));
    struct Closer {
        std::vector<int>& fds;
        ~Closer() {
            for (int fd : fds) ::close(fd);
        }
    } closer{held};
    // Accepted by the worker (not only queued by the kernel): then they are its connections.
    std::string last;
    CHECK(wait_until([&] {
        last = f.ctl({"status", "--json"}).output;
        return last.find("\"connections\": 5,") != std::string::npos;
    }, 5.0));
    INFO("status:\n", last);
    auto table = f.ctl({"status"});
    CHECK(find_log_line(table.output, "^1 +0 +" + std::to_string(f.w1) + " +ready .* 5 "));
    CHECK(find_log_line(table.output, "CONNS"));
    auto m = http_get(hp, "/metrics");
    REQUIRE(m);
    CHECK(find_log_line(m->body, "^supervisor_connections\\{generation=\"1\"\\} 5$"));
    // The upgrade drains gen 1 while the 5 connections are still open: the drain log says so.
    REQUIRE(f.ctl({"upgrade"}).code == 0);
    CHECK(sv.wait_log("draining gen=1 pid=" + std::to_string(f.w1) + " signal=SIGTERM timeout=10s connections=5"));
}

TEST_CASE("connections per worker on a unix listener (unix_diag)") {
    REQUIRE(have_program(bins().demo_worker));
    Serving f;
    std::string path = f.dir.file("app.sock");
    f.start({.options = {"--control", f.control_socket()}, .command = {bins().demo_worker},
             .listen = {"-l", "unix:" + path}, .await = Serving::Await::Ready});
    std::vector<net::Fd> held;
    for (int i = 0; i < 3; i++) held.push_back(net::connect_unix(path));
    for (const auto& fd : held) REQUIRE(fd.valid());
    std::string last;
    CHECK(wait_until([&] {
        last = f.ctl({"status", "--json"}).output;
        return last.find("\"connections\": 3,") != std::string::npos;
    }, 5.0));
    INFO("status:\n", last);
}

// loadclient — a small closed-loop HTTP/1.1 load generator that records a time series.
//
// wrk is the benchmark's headline load generator, but wrk cannot tell *when* a request
// failed (its Lua callbacks never see connect/read errors, and response() slows it down).
// This client keeps N connections busy (like `wrk -c N`), counts every attempt per
// interval as ok / connect error / read error / write error / timeout / non-2xx, and
// remembers which worker pid answered (X-Worker-Pid), so the benchmark can draw a
// timeline of an upgrade and count the generations that really served traffic.
//
//   loadclient --port P [--host 127.0.0.1] [--conns 32] [--duration 20] [--mode close|keepalive]
//              [--interval-ms 100] [--timeout-ms 2000] [--series FILE.csv]
//
// Prints one JSON object (totals, latency percentiles, pids) on stdout.
// Build: g++ -O2 -std=c++20 -o loadclient loadclient.cpp
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

enum Kind { kOk, kConnect, kRead, kWrite, kTimeout, kNon2xx, kKinds };
const char* const kKindNames[kKinds] = {"ok", "connect", "read", "write", "timeout", "non2xx"};

int64_t now_ns(clockid_t clock = CLOCK_MONOTONIC) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Options {
    std::string host = "127.0.0.1", series;
    int port = 0, conns = 32, interval_ms = 100, timeout_ms = 2000;
    double duration_s = 20;
    bool keepalive = true;
};

struct Conn {
    int fd = -1;
    enum State { kIdle, kConnecting, kWriting, kReading } state = kIdle;
    std::string in;
    size_t written = 0;
    int64_t started = 0;   // when the current request (attempt) began
    int64_t deadline = 0;
};

struct Client {
    Options o;
    int ep = -1;
    sockaddr_in addr{};
    std::string request;
    std::vector<Conn> conns;
    int64_t t0 = 0, end = 0;
    std::vector<std::array<uint64_t, kKinds>> buckets;
    std::vector<int64_t> stall_ns;     // per interval: longest time this client itself did not run
    uint64_t totals[kKinds] = {};
    std::vector<uint32_t> latency_us;  // successful requests only
    std::map<long, uint64_t> pids;     // X-Worker-Pid → responses
    std::map<long, std::pair<int64_t, int64_t>> pid_span;  // first and last response, ms since t0

    size_t bucket(int64_t at) {
        size_t b = size_t((at - t0) / (int64_t(o.interval_ms) * 1000000));
        if (b >= buckets.size()) {
            buckets.resize(b + 1, std::array<uint64_t, kKinds>{});
            stall_ns.resize(b + 1, 0);
        }
        return b;
    }

    void count(Kind k, int64_t at) {
        buckets[bucket(at)][k]++;
        totals[k]++;
    }

    // The loop never sleeps longer than 10 ms; a longer gap means this process was not
    // scheduled (a busy machine), which a reader of the timeline must not blame on the server.
    void note_gap(int64_t from, int64_t to) {
        int64_t gap = to - from - 10000000;
        if (gap <= 0) return;
        size_t b = bucket(to);
        stall_ns[b] = std::max(stall_ns[b], gap);
        max_stall_ns = std::max(max_stall_ns, gap);
    }
    int64_t max_stall_ns = 0;

    void close_fd(Conn& c) {
        if (c.fd >= 0) close(c.fd);  // also removes it from the epoll set
        c.fd = -1;
        c.state = Conn::kIdle;
        c.in.clear();
        c.written = 0;
    }

    void arm(Conn& c, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = &c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }

    // Starts a new attempt: a fresh connection when there is none.
    void begin(Conn& c, int64_t now) {
        c.started = now;
        c.deadline = now + int64_t(o.timeout_ms) * 1000000;
        c.in.clear();
        c.written = 0;
        if (c.fd >= 0) {
            c.state = Conn::kWriting;
            return write_some(c, now);
        }
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            perror("loadclient: socket");
            exit(1);
        }
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.ptr = &c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        c.state = Conn::kConnecting;
        if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            c.state = Conn::kWriting;
            return write_some(c, now);
        }
        if (errno != EINPROGRESS) fail(c, kConnect, now);
    }

    void fail(Conn& c, Kind k, int64_t now) {
        count(k, now);
        close_fd(c);
        if (now < end) begin(c, now);
    }

    void write_some(Conn& c, int64_t now) {
        while (c.written < request.size()) {
            ssize_t n = send(c.fd, request.data() + c.written, request.size() - c.written, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return arm(c, EPOLLOUT);
            if (n < 0) return fail(c, kWrite, now);
            c.written += size_t(n);
        }
        c.state = Conn::kReading;
        arm(c, EPOLLIN);
    }

    static long header_value(std::string_view head, std::string_view name, std::string_view* out) {
        size_t pos = 0;
        while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
            pos += 2;
            if (head.size() - pos > name.size() && strncasecmp(head.data() + pos, name.data(), name.size()) == 0 &&
                head[pos + name.size()] == ':') {
                size_t v = pos + name.size() + 1, e = head.find("\r\n", v);
                std::string_view val = head.substr(v, e == std::string_view::npos ? e : e - v);
                while (!val.empty() && val.front() == ' ') val.remove_prefix(1);
                *out = val;
                return 1;
            }
        }
        return 0;
    }

    void read_some(Conn& c, int64_t now) {
        char buf[16384];
        for (;;) {
            ssize_t n = recv(c.fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) return fail(c, kRead, now);  // reset, or EOF before a whole response
            c.in.append(buf, size_t(n));
            size_t head_end = c.in.find("\r\n\r\n");
            if (head_end == std::string::npos) continue;
            std::string_view head(c.in.data(), head_end + 2), v;
            size_t length = 0;
            if (header_value(head, "Content-Length", &v)) length = strtoul(std::string(v).c_str(), nullptr, 10);
            if (c.in.size() < head_end + 4 + length) continue;
            int status = head.size() > 12 ? atoi(std::string(head.substr(9, 3)).c_str()) : 0;
            bool server_close = header_value(head, "Connection", &v) && strncasecmp(v.data(), "close", 5) == 0;
            long pid = header_value(head, "X-Worker-Pid", &v) ? strtol(std::string(v).c_str(), nullptr, 10) : 0;
            if (status >= 200 && status < 300) {
                count(kOk, now);
                latency_us.push_back(uint32_t(std::min<int64_t>((now - c.started) / 1000, UINT32_MAX)));
                pids[pid]++;
                int64_t ms = (now - t0) / 1000000;
                auto it = pid_span.try_emplace(pid, ms, ms).first;
                it->second.second = ms;
            } else {
                count(kNon2xx, now);
            }
            if (!o.keepalive || server_close) close_fd(c);
            else c.state = Conn::kIdle;
            if (now < end) begin(c, now);
            else close_fd(c);
            return;
        }
    }

    void on_event(Conn& c, uint32_t events, int64_t now) {
        if (c.state == Conn::kConnecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) return fail(c, kConnect, now);
            c.state = Conn::kWriting;
            return write_some(c, now);
        }
        if (c.state == Conn::kWriting) return write_some(c, now);
        if (c.state == Conn::kReading) return read_some(c, now);
    }

    int run() {
        ep = epoll_create1(EPOLL_CLOEXEC);
        addr.sin_family = AF_INET;
        addr.sin_port = htons(uint16_t(o.port));
        if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
            fprintf(stderr, "loadclient: bad host %s\n", o.host.c_str());
            return 2;
        }
        request = "GET / HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) + "\r\n" +
                  (o.keepalive ? "" : "Connection: close\r\n") + "\r\n";
        conns.resize(size_t(o.conns));
        latency_us.reserve(1 << 22);
        int64_t start_epoch_ms = now_ns(CLOCK_REALTIME) / 1000000;
        t0 = now_ns();
        end = t0 + int64_t(o.duration_s * 1e9);
        for (Conn& c : conns) begin(c, t0);
        std::vector<epoll_event> evs(size_t(o.conns) + 8);
        int64_t next_sweep = t0, last_turn = t0;
        for (;;) {
            int64_t now = now_ns();
            bool busy = false;
            if (now >= next_sweep) {  // timeouts, every 10 ms
                for (Conn& c : conns) {
                    if (c.state != Conn::kIdle && now >= c.deadline) fail(c, kTimeout, now);
                    if (now >= end && c.state != Conn::kIdle && c.state != Conn::kReading) close_fd(c);
                    busy |= c.state != Conn::kIdle;
                }
                next_sweep = now + 10000000;
                if (now >= end && !busy) break;  // let the last requests finish (bounded by the timeout)
            }
            int n = epoll_wait(ep, evs.data(), int(evs.size()), 10);
            now = now_ns();
            note_gap(last_turn, now);  // our own work, the wait, and any time we were not running
            last_turn = now;
            for (int i = 0; i < n; i++) on_event(*static_cast<Conn*>(evs[size_t(i)].data.ptr), evs[size_t(i)].events, now);
        }
        double elapsed = double(end - t0) / 1e9;

        if (!o.series.empty()) {
            FILE* f = fopen(o.series.c_str(), "w");
            if (f == nullptr) {
                perror(o.series.c_str());
                return 1;
            }
            fprintf(f, "# start_epoch_ms=%lld interval_ms=%d\n# t_s", (long long)start_epoch_ms, o.interval_ms);
            for (const char* k : kKindNames) fprintf(f, ",%s", k);
            fprintf(f, ",failed,client_stall_ms\n");
            // Whole intervals of the run only: a last partial one would look like a drop.
            size_t complete = size_t((end - t0) / (int64_t(o.interval_ms) * 1000000));
            for (size_t b = 0; b < std::min(buckets.size(), complete); b++) {
                uint64_t failed = 0;
                for (int k = 1; k < kKinds; k++) failed += buckets[b][k];
                fprintf(f, "%.3f", double(b) * o.interval_ms / 1000.0);
                for (int k = 0; k < kKinds; k++) fprintf(f, ",%llu", (unsigned long long)buckets[b][k]);
                fprintf(f, ",%llu,%.1f\n", (unsigned long long)failed, double(stall_ns[b]) / 1e6);
            }
            fclose(f);
        }
        auto pct = [&](double p) -> double {
            if (latency_us.empty()) return 0;
            size_t i = std::min(latency_us.size() - 1, size_t(p * double(latency_us.size())));
            std::nth_element(latency_us.begin(), latency_us.begin() + long(i), latency_us.end());
            return latency_us[i] / 1000.0;
        };
        uint64_t failed = 0;
        for (int k = 1; k < kKinds; k++) failed += totals[k];
        printf("{\"start_epoch_ms\":%lld,\"duration_s\":%.3f,\"mode\":\"%s\",\"conns\":%d,", (long long)start_epoch_ms,
               elapsed, o.keepalive ? "keepalive" : "close", o.conns);
        for (int k = 0; k < kKinds; k++) printf("\"%s\":%llu,", kKindNames[k], (unsigned long long)totals[k]);
        printf("\"failed\":%llu,\"rps\":%.1f,\"client_max_stall_ms\":%.1f,", (unsigned long long)failed,
               totals[kOk] / elapsed, double(max_stall_ns) / 1e6);
        double p50 = pct(0.5), p99 = pct(0.99), p999 = pct(0.999), mx = pct(1.0);
        printf("\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},\"pids\":{", p50, p99, p999, mx);
        bool first = true;
        for (auto& [pid, n] : pids) {
            printf("%s\"%ld\":{\"responses\":%llu,\"first_ms\":%lld,\"last_ms\":%lld}", first ? "" : ",", pid,
                   (unsigned long long)n, (long long)pid_span[pid].first, (long long)pid_span[pid].second);
            first = false;
        }
        printf("}}\n");
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    Client cl;
    Options& o = cl.o;
    for (int i = 1; i < argc; i++) {
        std::string_view a(argv[i]);
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (v == nullptr) a = "--help";
        if (a == "--host") o.host = v;
        else if (a == "--port") o.port = atoi(v);
        else if (a == "--conns") o.conns = atoi(v);
        else if (a == "--duration") o.duration_s = atof(v);
        else if (a == "--mode") o.keepalive = std::string_view(v) != "close";
        else if (a == "--interval-ms") o.interval_ms = atoi(v);
        else if (a == "--timeout-ms") o.timeout_ms = atoi(v);
        else if (a == "--series") o.series = v;
        else {
            fprintf(stderr, "usage: loadclient --port P [--host H] [--conns N] [--duration S] [--mode close|keepalive]"
                            " [--interval-ms MS] [--timeout-ms MS] [--series FILE.csv]\n");
            return 2;
        }
        i++;
    }
    if (o.port <= 0 || o.conns <= 0 || o.interval_ms <= 0 || o.duration_s <= 0) {
        fprintf(stderr, "loadclient: --port, --conns, --interval-ms and --duration must be positive\n");
        return 2;
    }
    return cl.run();
}

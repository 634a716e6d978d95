// Resume state as JSON: every object is read through StrictFields (strict_fields.h),
// which takes each known key once, checks its type and range, and refuses any key left over.
#include "supervisor/resume_state.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "supervisor/strict_fields.h"

namespace sv {

namespace {

using json = nlohmann::json;
using Fields = StrictFields;

constexpr int64_t kMaxFd = 1 << 20;
constexpr int64_t kMaxPid = 1 << 22;  // pid_max's ceiling (PID_MAX_LIMIT)

const char* const kPhases[] = {"starting", "serving", "upgrading", "stopping", "stopped"};
const char* const kStates[] = {"starting", "ready", "draining", "failed"};
const char* const kTimerKinds[] = {"ready", "drain", "respawn", "watchdog"};

template <size_t N>
int index_of(const char* const (&names)[N], const std::string& s) {
    for (size_t i = 0; i < N; i++)
        if (s == names[i]) return static_cast<int>(i);
    return -1;
}

template <size_t N>
void enum_field(Fields& f, const char* key, const char* const (&names)[N], int* out) {
    std::string s;
    f.str(key, &s);
    if (!f.ok()) return;
    *out = index_of(names, s);
    if (*out < 0) f.fail(key, "is not one of the known values (\"" + s.substr(0, 32) + "\")");
}

// --- writing -------------------------------------------------------------------------

json worker_json(const Worker& w) {
    return {{"id", w.id}, {"gen", w.gen}, {"slot", w.slot}, {"pid", w.pid},
            {"state", kStates[static_cast<int>(w.state)]}, {"spawned_at_ms", w.spawned_at.count()},
            {"ready_at_ms", w.ready_at.count()}, {"drain_at_ms", w.drain_at.count()}, {"killed", w.killed},
            {"spoke", w.spoke}, {"notified", w.notified}, {"watched", w.watched}, {"seen", w.seen}, {"status", w.status}};
}

json machine_json(const MachineState& m) {
    json slots = json::array(), workers = json::array(), lingering = json::array();
    for (const auto& s : m.slots)
        slots.push_back({{"gen", s.gen}, {"backoff_next_ms", s.backoff_next.count()}, {"respawn_pending", s.respawn_pending}});
    for (const auto& w : m.workers) workers.push_back(worker_json(w));
    for (const auto& w : m.lingering) lingering.push_back(worker_json(w));
    return {{"phase", kPhases[static_cast<int>(m.phase)]}, {"slots", slots}, {"workers", workers},
            {"lingering", lingering}, {"next_gen", m.next_gen}, {"next_worker_id", m.next_worker_id},
            {"hung_total", m.hung_total}, {"booted", m.booted}, {"spawned_any", m.spawned_any},
            {"stop_at_ms", m.stop_at.count()}, {"now_ms", m.now.count()}};
}

json shell_json(const ResumeState& st) {
    json listeners = json::array(), contained = json::array(), timers = json::array();
    for (const auto& l : st.listeners)
        listeners.push_back({{"name", l.name}, {"address", l.address}, {"fd", l.fd}, {"unix_inode", l.unix_inode},
                             {"adopted", l.adopted}});
    for (const auto& c : st.contained) {
        json members = json::array();
        for (const auto& m : c.members) members.push_back({{"pid", m.pid}, {"start_time", m.start_time}});
        contained.push_back({{"pid", c.pid}, {"cgroup", c.cgroup}, {"start_time", c.start_time}, {"reaped", c.reaped},
                             {"members", members}});
    }
    for (const auto& t : st.timers)
        timers.push_back({{"kind", kTimerKinds[static_cast<int>(t.id.kind)]}, {"key", t.id.key}, {"remaining_ms", t.remaining.count()}});
    return {{"listeners", listeners}, {"contained", contained}, {"timers", timers}};
}

json counters_json(const CounterState& c) {
    json slots = json::array(), started = json::array();
    for (const auto& [slot, gen] : c.slot_gen) slots.push_back({{"slot", slot}, {"gen", gen}});
    for (const auto& [gen, at] : c.upgrade_started) started.push_back({{"gen", gen}, {"at_ms", at.count()}});
    return {{"upgrades_ok", c.upgrades_ok}, {"upgrades_failed", c.upgrades_failed}, {"worker_restarts", c.worker_restarts},
            {"hung_workers", c.hung_workers}, {"broken_invariants", c.broken_invariants}, {"duration_buckets", c.buckets},
            {"duration_sum_ms", c.duration_sum_ms}, {"slot_gens", slots}, {"newest_gen", c.newest_gen},
            {"upgrades_started", started}};
}

} // namespace

std::string serialize_resume_state(const ResumeState& st) {
    json j = shell_json(st);
    j["version"] = st.version;
    j["exe"] = st.exe;
    j["argv"] = st.argv;
    j["env"] = st.env;
    j["started_mono_ns"] = st.started_mono_ns;
    j["started_unix_ms"] = st.started_unix_ms;
    j["written_mono_ns"] = st.written_mono_ns;
    j["notify"] = {{"fd", st.notify_fd}, {"name", st.notify_name}, {"dir", st.notify_dir}};
    j["control"] = {{"fd", st.control_fd}, {"path", st.control_path}, {"inode", st.control_inode}, {"client_fd", st.client_fd}};
    j["pid_file"] = {{"fd", st.pid_file_fd}, {"path", st.pid_file_path}};
    j["containment"] = {{"base", st.containment_base}, {"description", st.containment_description}};
    j["leftovers"] = st.leftovers;
    j["broken_invariants"] = st.broken_invariants;
    j["last_upgrade"] = {{"present", st.has_last_upgrade}, {"gen", st.last_upgrade_gen}, {"ok", st.last_upgrade_ok},
                         {"reason", st.last_upgrade_reason}, {"at_unix_ms", st.last_upgrade_at_unix_ms}};
    if (st.version >= 2) {
        j["http"] = {{"fd", st.http_fd}, {"address", st.http_address}, {"inode", st.http_inode}};
        j["metrics"] = counters_json(st.counters);
    }
    j["machine"] = machine_json(st.machine);
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// --- reading -------------------------------------------------------------------------

namespace {

std::string item(const char* key, size_t i) { return std::string(key) + "[" + std::to_string(i) + "]"; }

Worker read_worker(const json& j, const std::string& where, std::string* err) {
    Worker w;
    Fields f(j, where, err);
    int state = 0;
    int64_t spawned = 0, ready = 0, drain = 0;
    f.u64("id", &w.id);
    f.u64("gen", &w.gen);
    f.integer("slot", &w.slot, 0, 1 << 16);
    f.integer("pid", &w.pid, 1, kMaxPid);
    enum_field(f, "state", kStates, &state);
    f.i64("spawned_at_ms", &spawned, 0, std::numeric_limits<int64_t>::max() / 2);
    f.i64("ready_at_ms", &ready, 0, std::numeric_limits<int64_t>::max() / 2);
    f.i64("drain_at_ms", &drain, 0, std::numeric_limits<int64_t>::max() / 2);
    f.boolean("killed", &w.killed);
    f.boolean("spoke", &w.spoke);
    f.boolean("notified", &w.notified);
    f.boolean("watched", &w.watched);
    f.str("seen", &w.seen);
    f.str("status", &w.status);
    f.finish();
    w.state = static_cast<WorkerState>(state);
    w.spawned_at = Millis{spawned};
    w.ready_at = Millis{ready};
    w.drain_at = Millis{drain};
    return w;
}

void read_workers(Fields& f, const char* key, std::vector<Worker>* out, std::string* err) {
    const json* a = f.array(key);
    for (size_t i = 0; a != nullptr && i < a->size() && err->empty(); i++)
        out->push_back(read_worker((*a)[i], f.path(item(key, i).c_str()), err));
}

void read_slots(Fields& f, std::vector<MachineState::Slot>* out, std::string* err) {
    const json* a = f.array("slots");
    for (size_t i = 0; a != nullptr && i < a->size() && err->empty(); i++) {
        Fields s((*a)[i], f.path(item("slots", i).c_str()), err);
        MachineState::Slot slot;
        s.u64("gen", &slot.gen);
        s.millis("backoff_next_ms", &slot.backoff_next);
        s.boolean("respawn_pending", &slot.respawn_pending);
        s.finish();
        out->push_back(slot);
    }
}

void read_machine(const json& j, MachineState* m, std::string* err) {
    Fields f(j, "machine", err);
    int phase = 0;
    enum_field(f, "phase", kPhases, &phase);
    m->phase = static_cast<Phase>(phase);
    read_slots(f, &m->slots, err);
    read_workers(f, "workers", &m->workers, err);
    read_workers(f, "lingering", &m->lingering, err);
    f.u64("next_gen", &m->next_gen);
    f.u64("next_worker_id", &m->next_worker_id);
    f.u64("hung_total", &m->hung_total);
    f.boolean("booted", &m->booted);
    f.boolean("spawned_any", &m->spawned_any);
    f.millis("stop_at_ms", &m->stop_at);
    f.millis("now_ms", &m->now);
    f.finish();
}

void read_listeners(Fields& f, ResumeState* st, std::string* err) {
    const json* a = f.array("listeners");
    for (size_t i = 0; a != nullptr && i < a->size() && err->empty(); i++) {
        Fields l((*a)[i], item("listeners", i), err);
        ResumeListener r;
        l.str("name", &r.name);
        l.str("address", &r.address);
        l.integer("fd", &r.fd, 3, kMaxFd);
        l.u64("unix_inode", &r.unix_inode);
        l.boolean("adopted", &r.adopted);
        l.finish();
        st->listeners.push_back(std::move(r));
    }
    if (err->empty() && st->listeners.empty()) f.fail("listeners", "is empty");
}

void read_contained(Fields& f, ResumeState* st, std::string* err) {
    const json* a = f.array("contained");
    for (size_t i = 0; a != nullptr && i < a->size() && err->empty(); i++) {
        Fields c((*a)[i], item("contained", i), err);
        ResumeContained r;
        c.integer("pid", &r.pid, 1, kMaxPid);
        c.str("cgroup", &r.cgroup);
        c.u64("start_time", &r.start_time);
        c.boolean("reaped", &r.reaped);
        const json* m = c.array("members");
        for (size_t k = 0; m != nullptr && k < m->size() && err->empty(); k++) {
            Fields mf((*m)[k], c.path(item("members", k).c_str()), err);
            ResumeContained::Member mem;
            mf.integer("pid", &mem.pid, 1, kMaxPid);
            mf.u64("start_time", &mem.start_time);
            mf.finish();
            r.members.push_back(mem);
        }
        c.finish();
        st->contained.push_back(std::move(r));
    }
}

void read_timers(Fields& f, ResumeState* st, std::string* err) {
    const json* a = f.array("timers");
    for (size_t i = 0; a != nullptr && i < a->size() && err->empty(); i++) {
        Fields t((*a)[i], item("timers", i), err);
        ResumeTimer r;
        int kind = 0;
        enum_field(t, "kind", kTimerKinds, &kind);
        r.id.kind = static_cast<TimerId::Kind>(kind);
        t.u64("key", &r.id.key);
        t.millis("remaining_ms", &r.remaining);
        t.finish();
        st->timers.push_back(r);
        st->machine.timers.push_back(r.id);
    }
}

void read_handles(Fields& f, const json& j, ResumeState* st, std::string* err) {
    f.take("notify", json::value_t::object);
    f.take("control", json::value_t::object);
    f.take("pid_file", json::value_t::object);
    f.take("containment", json::value_t::object);
    f.take("last_upgrade", json::value_t::object);
    if (!f.ok()) return;
    Fields n(j["notify"], "notify", err);
    n.integer("fd", &st->notify_fd, 3, kMaxFd);
    n.str("name", &st->notify_name);
    n.str("dir", &st->notify_dir);
    n.finish();
    Fields c(j["control"], "control", err);
    c.integer("fd", &st->control_fd, -1, kMaxFd);
    c.str("path", &st->control_path);
    c.u64("inode", &st->control_inode);
    c.integer("client_fd", &st->client_fd, -1, kMaxFd);
    c.finish();
    Fields p(j["pid_file"], "pid_file", err);
    p.integer("fd", &st->pid_file_fd, -1, kMaxFd);
    p.str("path", &st->pid_file_path);
    p.finish();
    Fields k(j["containment"], "containment", err);
    k.str("base", &st->containment_base);
    k.str("description", &st->containment_description);
    k.finish();
    Fields u(j["last_upgrade"], "last_upgrade", err);
    u.boolean("present", &st->has_last_upgrade);
    u.u64("gen", &st->last_upgrade_gen);
    u.boolean("ok", &st->last_upgrade_ok);
    u.str("reason", &st->last_upgrade_reason);
    u.i64("at_unix_ms", &st->last_upgrade_at_unix_ms, 0, std::numeric_limits<int64_t>::max());
    u.finish();
}

void read_counters(const json& j, CounterState* c, std::string* err) {
    Fields f(j, "metrics", err);
    f.u64("upgrades_ok", &c->upgrades_ok);
    f.u64("upgrades_failed", &c->upgrades_failed);
    f.u64("worker_restarts", &c->worker_restarts);
    f.u64("hung_workers", &c->hung_workers);
    f.u64("broken_invariants", &c->broken_invariants);
    const json* b = f.array("duration_buckets");
    if (b != nullptr && b->size() != c->buckets.size())
        f.fail("duration_buckets", "must hold " + std::to_string(c->buckets.size()) + " counts");
    for (size_t i = 0; b != nullptr && f.ok() && i < b->size(); i++) {
        if (!(*b)[i].is_number_unsigned()) f.fail("duration_buckets", "must hold counts only");
        else c->buckets[i] = (*b)[i].get<uint64_t>();
    }
    f.i64("duration_sum_ms", &c->duration_sum_ms, 0, std::numeric_limits<int64_t>::max() / 2);
    const json* s = f.array("slot_gens");
    for (size_t i = 0; s != nullptr && i < s->size() && err->empty(); i++) {
        Fields e((*s)[i], f.path(item("slot_gens", i).c_str()), err);
        int slot = 0;
        uint64_t gen = 0;
        e.integer("slot", &slot, 0, 1 << 16);
        e.u64("gen", &gen);
        e.finish();
        c->slot_gen[slot] = gen;
    }
    f.u64("newest_gen", &c->newest_gen);
    const json* u = f.array("upgrades_started");
    for (size_t i = 0; u != nullptr && i < u->size() && err->empty(); i++) {
        Fields e((*u)[i], f.path(item("upgrades_started", i).c_str()), err);
        uint64_t gen = 0;
        Millis at{0};
        e.u64("gen", &gen);
        e.millis("at_ms", &at);
        e.finish();
        c->upgrade_started[gen] = at;
    }
    f.finish();
}

// Version 2's fields: the --http listener and the counters.
void read_v2(Fields& f, const json& j, ResumeState* st, std::string* err) {
    f.take("http", json::value_t::object);
    f.take("metrics", json::value_t::object);
    if (!f.ok()) return;
    Fields h(j["http"], "http", err);
    h.integer("fd", &st->http_fd, -1, kMaxFd);
    h.str("address", &st->http_address);
    h.u64("inode", &st->http_inode);
    h.finish();
    if (err->empty()) read_counters(j["metrics"], &st->counters, err);
}

// Every fd named once: two roles on one fd would let one close pull the other.
std::string fd_problem(const ResumeState& st) {
    std::vector<int> fds{st.notify_fd};
    for (int fd : {st.control_fd, st.client_fd, st.pid_file_fd, st.http_fd})
        if (fd >= 0) fds.push_back(fd);
    for (const auto& l : st.listeners) fds.push_back(l.fd);
    std::sort(fds.begin(), fds.end());
    if (std::adjacent_find(fds.begin(), fds.end()) != fds.end()) return "an fd is named twice";
    if (st.client_fd >= 0 && st.control_fd < 0) return "control.client_fd without a control socket";
    if (st.argv.empty()) return "argv is empty";
    return "";
}

std::string version_problem(const json& j) {
    auto it = j.find("version");
    if (it == j.end() || !it->is_number_integer()) return "has no integer \"version\" (not a supervisor resume state?)";
    auto v = it->get<int64_t>();
    if (v > kResumeStateVersion)
        return "version " + std::to_string(v) + " is newer than this binary reads (" + std::to_string(kResumeStateVersion) +
               "): reexec into a binary at least as new as the running one";
    if (v < kResumeStateOldestVersion)
        return "version " + std::to_string(v) + " is older than this binary reads (" + std::to_string(kResumeStateOldestVersion) +
               "): no older format is carried forward";
    return "";
}

} // namespace

Result<ResumeState> parse_resume_state(std::string_view text) {
    if (text.size() > kResumeStateMaxBytes) return Error{EINVAL, "resume state: larger than 16 MiB"};
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Error{EINVAL, "resume state: not valid JSON (truncated?)"};
    if (!j.is_object()) return Error{EINVAL, "resume state: not a JSON object"};
    if (auto why = version_problem(j); !why.empty()) return Error{EPROTO, "resume state: " + why};
    ResumeState st;
    std::string err;
    Fields f(j, "", &err);
    f.integer("version", &st.version, kResumeStateOldestVersion, kResumeStateVersion);
    f.str("exe", &st.exe);
    f.strings("argv", &st.argv);
    f.strings("env", &st.env);
    f.i64("started_mono_ns", &st.started_mono_ns, 0, std::numeric_limits<int64_t>::max());
    f.i64("started_unix_ms", &st.started_unix_ms, 0, std::numeric_limits<int64_t>::max());
    f.i64("written_mono_ns", &st.written_mono_ns, 0, std::numeric_limits<int64_t>::max());
    read_listeners(f, &st, &err);
    read_contained(f, &st, &err);
    read_timers(f, &st, &err);
    read_handles(f, j, &st, &err);
    const json* left = f.array("leftovers");
    for (size_t i = 0; left != nullptr && i < left->size() && err.empty(); i++) {
        if (!(*left)[i].is_number_integer() || (*left)[i].get<int64_t>() <= 0 || (*left)[i].get<int64_t>() > kMaxPid)
            f.fail("leftovers", "must hold pids only");
        else st.leftovers.push_back((*left)[i].get<int>());
    }
    f.u64("broken_invariants", &st.broken_invariants);
    if (st.version >= 2) read_v2(f, j, &st, &err);
    if (f.take("machine", json::value_t::object) != nullptr) read_machine(j["machine"], &st.machine, &err);
    f.finish();
    if (err.empty()) err = fd_problem(st);
    if (!err.empty()) return Error{EINVAL, "resume state: " + err};
    return st;
}

} // namespace sv

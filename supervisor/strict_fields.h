// StrictFields: reads one JSON object field by field without ever throwing: each known
// key taken once with its type and range checked, any key left over refused. The first
// error wins and names the key's path ("machine.workers[0].pid is missing").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "supervisor/parse.h"

namespace sv {

class StrictFields {
public:
    using json = nlohmann::json;
    static constexpr size_t kMaxItems = 100'000;

    StrictFields(const json& j, std::string where, std::string* err) : j_(j), where_(std::move(where)), err_(err) {
        if (!j_.is_object()) fail("", "must be an object");
    }
    bool ok() const { return err_->empty(); }

    const json* take(const char* key, json::value_t want) {
        if (!ok()) return nullptr;
        auto it = j_.find(key);
        if (it == j_.end()) return fail(key, "is missing"), nullptr;
        seen_.insert(key);
        bool good = it->type() == want || (want == json::value_t::number_integer && it->is_number_unsigned());
        if (!good) return fail(key, std::string("must be ") + type_name(want)), nullptr;
        return &*it;
    }
    void i64(const char* key, int64_t* out, int64_t lo, int64_t hi) {
        const json* v = take(key, json::value_t::number_integer);
        if (v == nullptr) return;
        if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) return fail(key, "is out of range");
        int64_t x = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
        if (x < lo || x > hi) return fail(key, "is out of range");
        *out = x;
    }
    void u64(const char* key, uint64_t* out) {
        const json* v = take(key, json::value_t::number_integer);
        if (v == nullptr) return;
        if (!v->is_number_unsigned()) return fail(key, "must not be negative");
        *out = v->get<uint64_t>();
    }
    void integer(const char* key, int* out, int64_t lo, int64_t hi) {
        int64_t x = 0;
        i64(key, &x, lo, hi);
        if (ok()) *out = static_cast<int>(x);
    }
    void millis(const char* key, Millis* out) {
        int64_t x = 0;
        i64(key, &x, 0, std::numeric_limits<int64_t>::max() / 2);
        if (ok()) *out = Millis{x};
    }
    void boolean(const char* key, bool* out) {
        if (const json* v = take(key, json::value_t::boolean)) *out = v->get<bool>();
    }
    void str(const char* key, std::string* out) {
        if (const json* v = take(key, json::value_t::string)) *out = v->get<std::string>();
    }
    const json* array(const char* key) {
        const json* v = take(key, json::value_t::array);
        if (v != nullptr && v->size() > kMaxItems) return fail(key, "has too many items"), nullptr;
        return v;
    }
    void strings(const char* key, std::vector<std::string>* out) {
        const json* a = array(key);
        if (a == nullptr) return;
        for (const auto& e : *a) {
            if (!e.is_string()) return fail(key, "must hold strings only");
            out->push_back(e.get<std::string>());
        }
    }
    std::string path(const char* key) const { return where_.empty() ? key : where_ + "." + key; }
    // Refuses keys this binary does not know: they would carry meaning it would drop.
    void finish() {
        if (!ok()) return;
        for (auto it = j_.begin(); it != j_.end(); ++it)
            if (!seen_.count(it.key())) return fail(it.key().substr(0, 64).c_str(), "is not a field this binary knows");
    }
    void fail(const char* key, const std::string& what) {
        if (!ok()) return;
        std::string name = *key ? path(key) : (where_.empty() ? "the document" : where_);
        *err_ = name + " " + what;
    }

private:
    static const char* type_name(json::value_t t) {
        if (t == json::value_t::boolean) return "true or false";
        if (t == json::value_t::string) return "a string";
        if (t == json::value_t::array) return "an array";
        if (t == json::value_t::object) return "an object";
        return "an integer";
    }
    const json& j_;
    std::string where_;
    std::string* err_;
    std::set<std::string> seen_;
};

} // namespace sv

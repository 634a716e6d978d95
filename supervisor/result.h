// Result<T>: a value or an Error, for fallible functions (no exceptions).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sv {

// code is a positive errno for system errors, 0 for input errors.
struct Error {
    int code = 0;
    std::string what;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    const T& value() const& { return std::get<0>(v_); }
    const Error& error() const { return std::get<1>(v_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }

private:
    std::variant<T, Error> v_;
};

struct Ok {};

} // namespace sv

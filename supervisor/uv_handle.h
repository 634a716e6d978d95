// UvHandle<T>: owner of an initialised libuv handle. The memory is freed only in the
// close callback, as libuv requires (see libuv's handle.rst on uv_close).
#pragma once

#include <uv.h>

#include <utility>

namespace sv {

template <typename T>
class UvHandle {
public:
    UvHandle() = default;
    explicit UvHandle(T* initialised) : h_(initialised) {}
    ~UvHandle() { close(); }
    UvHandle(const UvHandle&) = delete;
    UvHandle& operator=(const UvHandle&) = delete;
    UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    UvHandle& operator=(UvHandle&& o) noexcept {
        if (this != &o) {
            close();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }

    T* get() const { return h_; }
    explicit operator bool() const { return h_ != nullptr; }

    void close() {
        auto* h = reinterpret_cast<uv_handle_t*>(std::exchange(h_, nullptr));
        if (h != nullptr && !uv_is_closing(h)) uv_close(h, [](uv_handle_t* x) { delete reinterpret_cast<T*>(x); });
    }

private:
    T* h_ = nullptr;
};

} // namespace sv

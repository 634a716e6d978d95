// Listeners into systemd's fd store.
#include "supervisor/fd_store.h"

#include <spdlog/spdlog.h>

#include <cstring>

namespace sv {

void store_listeners(const SystemdNotifier& systemd, const std::vector<Listener>& listeners,
                     const std::vector<std::string>& dropped) {
    if (!systemd.enabled()) return;
    for (const auto& name : dropped) {
        if (int rc = systemd.remove_stored_fds(name); rc < 0)
            spdlog::warn("fd store: cannot remove name={}: {}", name, std::strerror(-rc));
        else spdlog::info("fd store: removed name={} (no --listen names it)", name);
    }
    for (const auto& l : listeners) {
        if (l.adopted) continue;
        // systemd accepts it only with FileDescriptorStoreMax= set (0 by default); it says
        // so in its own log, the sendmsg(2) succeeds either way.
        if (int rc = systemd.store_fd(l.spec.name, l.fd.get()); rc < 0)
            spdlog::warn("fd store: cannot store name={} addr={}: {}; a crash of the supervisor will refuse connections",
                         l.spec.name, l.address, std::strerror(-rc));
        else spdlog::info("fd store: stored name={} addr={}", l.spec.name, l.address);
    }
}

} // namespace sv

// The fd store: under systemd without a socket unit, the listeners we bind are handed to
// systemd (FileDescriptorStoreMax=), which keeps them open across a crash of the
// supervisor and passes them back in LISTEN_FDS: clients wait in the kept accept queue.
#pragma once

#include <string>
#include <vector>

#include "supervisor/listeners.h"
#include "supervisor/systemd.h"

namespace sv {

// Drops the stored fds of names no --listen takes any more (`dropped`), then stores every
// listener we bound ourselves under its name. Adopted listeners are already held by
// systemd (its fd store or a socket unit) and are not sent again. Failures are logged
// (warn): without the store we still serve, only a crash then refuses connections.
void store_listeners(const SystemdNotifier& systemd, const std::vector<Listener>& listeners,
                     const std::vector<std::string>& dropped);

} // namespace sv

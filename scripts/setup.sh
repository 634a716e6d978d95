#!/usr/bin/env bash
# Installs what building and the demo need (Debian 12 packages only), and with --for-tests
# what the test suites need too; then configures the build directory. Safe to run again:
# it installs only what is missing.
#   scripts/setup.sh [--for-tests] [BUILD_DIR [MESON_OPTIONS...]]
set -euo pipefail
cd "$(dirname "$0")/.."

for_tests=0
[[ ${1:-} == --for-tests ]] && for_tests=1 && shift

packages=(meson ninja-build g++ pkg-config libuv1-dev libspdlog-dev libfmt-dev doctest-dev libcli11-dev nlohmann-json3-dev libhttp-parser-dev
          wrk curl python3 nodejs util-linux procps)
if ((for_tests)); then
  # A real systemd in a container, the pre-check and sd_notify clients of the hardening tests.
  packages+=(systemd systemd-container iproute2 bc haproxy ruby ruby-sd-notify python3-prometheus-client ansible-core)
  # The third-party servers the real-servers suite upgrades (tests/real_servers/packages.txt).
  while read -r p; do
    [[ -n $p && $p != \#* ]] && packages+=("$p")
  done < tests/real_servers/packages.txt
fi
# Node.js installed outside Debian's package (e.g. /usr/bin/node from elsewhere) is fine too.
if command -v node >/dev/null && ! dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed"; then
  packages=("${packages[@]/nodejs}")
fi
source scripts/lib/packages.sh
ensure_packages setup "${packages[@]}"

build=${1:-build}
shift || true
if [[ ! -f $build/build.ninja ]]; then
  if ! out=$(meson setup "$build" "$@" 2>&1); then
    echo "$out" | tail -20 >&2
    echo "setup: meson could not configure $build (full log: $build/meson-logs/meson-log.txt)" >&2
    exit 1
  fi
fi

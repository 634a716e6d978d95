#!/usr/bin/env bash
# Installs what building, testing and the demo need (Debian 12 packages only), then
# configures the build directory. Safe to run again: it installs only what is missing.
#   scripts/setup.sh [BUILD_DIR [MESON_OPTIONS...]]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build g++ pkg-config libuv1-dev libspdlog-dev libfmt-dev doctest-dev libcli11-dev nlohmann-json3-dev
          wrk curl python3 nodejs util-linux procps systemd)
# The third-party servers the real-servers suite upgrades (tests/real_servers/packages.txt).
while read -r p; do
  [[ -n $p && $p != \#* ]] && packages+=("$p")
done < tests/real_servers/packages.txt
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Node.js installed outside Debian's package (e.g. /usr/bin/node from another repo) is fine too.
if [[ " ${missing[*]} " == *" nodejs "* ]] && command -v node >/dev/null; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]} — run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as nginx and lighttpd would start a system service on port 80: the
  # tests run them themselves, so no service may start while we install (policy-rc.d).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  apt-get update -qq
  apt_status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/supervisor-setup-apt.log 2>&1 || apt_status=$?
  ((own_policy)) && rm -f "$policy"
  if ((apt_status != 0)); then
    tail -20 /tmp/supervisor-setup-apt.log >&2
    echo "setup: apt-get install failed (exit $apt_status); full log in /tmp/supervisor-setup-apt.log" >&2
    exit 1
  fi
fi

build=${1:-build}
shift || true
if [[ ! -f $build/build.ninja ]]; then
  if ! out=$(meson setup "$build" "$@" 2>&1); then
    echo "$out" | tail -20 >&2
    echo "setup: meson could not configure $build (full log: $build/meson-logs/meson-log.txt)" >&2
    exit 1
  fi
fi

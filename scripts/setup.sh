#!/usr/bin/env bash
# Installs what building, testing and the demo need (Debian 12 packages only), then
# configures the build directory. Safe to run again: it installs only what is missing.
#   scripts/setup.sh [BUILD_DIR [MESON_OPTIONS...]]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build g++ pkg-config libuv1-dev libspdlog-dev libfmt-dev doctest-dev libcli11-dev nlohmann-json3-dev
          wrk curl python3 nodejs util-linux procps systemd)
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
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

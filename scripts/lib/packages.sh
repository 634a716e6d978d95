# Sourced by the scripts: ensure_packages WHO PACKAGE... installs the Debian packages that
# are missing (as root; a clear line otherwise), with no system service started meanwhile.
ensure_packages() {
  local who=$1
  shift
  local missing=() p
  for p in "$@"; do
    [[ -n $p ]] || continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$who: missing packages: ${missing[*]} — run as root, or: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "$who: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as nginx and lighttpd would start a system service on port 80: the
  # tests run them themselves, so no service may start while we install (policy-rc.d).
  local policy=/usr/sbin/policy-rc.d own_policy=0 status=0 log
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  log=$(mktemp)
  { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 || status=$?
  ((own_policy)) && rm -f "$policy"
  if ((status != 0)); then
    tail -20 "$log" >&2
    echo "$who: apt-get install ${missing[*]} failed (exit $status)" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan) and runs each for
# a bounded time, then prints executions, corpus size and crashes per target.
#   scripts/fuzz.sh [--seconds N] [--runs N] [TARGET...]   (default: 60 s each, every target)
# --runs N stops a target after N executions (or --seconds, whichever comes first).
# --fast: no ASan/UBSan, -O2 (about ten times the executions; for long campaigns that
# count executions; the properties are still checked, memory errors are not).
# Targets: listen_spec parse notify_message control_request status_table cli machine proc_files
# task_syscall epoll_fdinfo socket_link pollfds fd_set proc_stat resume_state http_request sock_diag adopt.
# Exits 1 if any target crashed: the input is saved as build-fuzz/artifacts/<target>/crash-*;
# copy it to tests/fuzz/regressions/<target>/ so the normal test run replays it forever.
# Installs clang and libFuzzer (libclang-rt-14-dev) with apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
runs=-1
fast=0
targets=()
while (($#)); do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --fast) fast=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz: --seconds must be a positive number" >&2; exit 2; }
[[ $runs =~ ^-?[0-9]+$ ]] || { echo "fuzz: --runs must be a number" >&2; exit 2; }
all=(listen_spec parse notify_message control_request status_table cli machine proc_files
     task_syscall epoll_fdinfo socket_link pollfds fd_set proc_stat resume_state http_request sock_diag adopt)
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -f tests/fuzz/fuzz_$t.cpp ]] || { echo "fuzz: unknown target '$t' (${all[*]})" >&2; exit 2; }
done

out=build-fuzz
((fast)) && out=build-fuzz-fast
mkdir -p "$out/obj"
cxx=${CXX_FUZZ:-clang++}

# clang with libFuzzer: Debian 12 has it in clang-14 + libclang-rt-14-dev.
probe() {
  printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
    >"$out/probe.cpp"
  command -v "$cxx" >/dev/null && "$cxx" -fsanitize=fuzzer,address,undefined "$out/probe.cpp" -o "$out/probe" 2>/dev/null
}
need_pkgs=()
probe || need_pkgs+=(clang libclang-rt-14-dev)
for p in libfmt-dev nlohmann-json3-dev libcli11-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  source scripts/lib/packages.sh
  ensure_packages fuzz "${need_pkgs[@]}"
  probe || { echo "fuzz: $cxx cannot build a libFuzzer binary even after installing ${need_pkgs[*]}" >&2; exit 1; }
fi

# The pure sources (pure_lib in meson.build: no libuv, no syscalls), instrumented once,
# in an archive: each target pulls in only what it calls.
# The version header meson writes (configure_file), made the same way here.
version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" meson.build | head -1)
sed "s/@VERSION@/${version:-unknown}/" supervisor/version.h.in >"$out/supervisor_version.h.new"
cmp -s "$out/supervisor_version.h.new" "$out/supervisor_version.h" 2>/dev/null || mv "$out/supervisor_version.h.new" "$out/supervisor_version.h"
rm -f "$out/supervisor_version.h.new"
flags=(-std=c++20 -g -O1 -D_GNU_SOURCE -I. -I"$out" -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)
((fast)) && flags=(-std=c++20 -g -O2 -D_GNU_SOURCE -I. -I"$out")
mapfile -t sources < <(sed -n "/^pure_lib = static_library/,/)/s/.*'\(supervisor\/[a-z_]*\.cpp\)'.*/\1/p" meson.build)
((${#sources[@]})) || { echo "fuzz: cannot find pure_lib's sources in meson.build" >&2; exit 1; }
objs=()
for src in "${sources[@]}"; do
  o=$out/obj/$(basename "$src" .cpp).o
  if [[ ! -f $o || $src -nt $o || -n $(find supervisor -name '*.h' -newer "$o" -print -quit) ]]; then
    "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$o"
  fi
  objs+=("$o")
done
# The --adopt-bind preload's pure C (adopt_match_lib in meson.build), in the same archive.
cc=${CC_FUZZ:-clang}
cflags=("${flags[@]/-std=c++20/-std=c11}")
for src in supervisor/adopt/adopt_match.c supervisor/adopt/adopt_text.c; do
  o=$out/obj/$(basename "$src" .c).o
  if [[ ! -f $o || $src -nt $o || supervisor/adopt/adopt_match.h -nt $o || supervisor/adopt/adopt_text.h -nt $o ]]; then
    "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$o"
  fi
  objs+=("$o")
done
rm -f "$out/libsv_pure.a"
ar rcs "$out/libsv_pure.a" "${objs[@]}"

declare -A execs rate corpus_n status
crashed=0
for t in "${targets[@]}"; do
  bin=$out/fuzz_$t
  echo "== fuzz $t: build"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "tests/fuzz/fuzz_$t.cpp" "$out/libsv_pure.a" -lfmt -lhttp_parser -o "$bin"
  # The working corpus grows across runs under build-fuzz/; the committed seeds and every
  # past crash are read too (libFuzzer writes new inputs to the first directory only).
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  seeds=(tests/fuzz/corpus/$t)
  [[ -d tests/fuzz/regressions/$t ]] && seeds+=(tests/fuzz/regressions/$t)
  dict=()
  [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  # The machine's inputs are event sequences: 256 bytes is ~120 events, plenty to reach
  # every phase, and short inputs keep the executions per second high.
  max_len=8192
  [[ $t == machine ]] && max_len=256
  echo "== fuzz $t: run ${seconds}s"
  set +e
  "$bin" "${dict[@]}" -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" "$out/corpus/$t" "${seeds[@]}" \
    >"$out/$t.log" 2>&1
  rc=$?
  set -e
  execs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
  rate[$t]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log" | tail -1)
  corpus_n[$t]=$(find "$out/corpus/$t" -type f | wc -l)
  if ((rc == 0)); then
    status[$t]=ok
  else
    crashed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out/$t.log" | tail -1)
    status[$t]="CRASH ${artifact:-(see $out/$t.log)}"
    if [[ -n $artifact && -d tests/fuzz/regressions/$t ]]; then
      for known in tests/fuzz/regressions/$t/*; do
        cmp -s "$artifact" "$known" && status[$t]="CRASH on the known regression input $known (not fixed yet)" && break
      done
    fi
    grep -m5 -E 'ERROR|SUMMARY|property violated|terminate called|what\(\)' "$out/$t.log" | sed 's/^/    /' || true
  fi
done

echo
printf '%-16s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus result
for t in "${targets[@]}"; do
  printf '%-16s %8s %12s %10s %8s  %s\n' "$t" "$seconds" "${execs[$t]:-?}" "${rate[$t]:-?}" "${corpus_n[$t]}" "${status[$t]}"
done
if ((crashed)); then
  echo "fuzz: crash found: reproduce with build-fuzz/fuzz_<target> <file>; keep the input as tests/fuzz/regressions/<target>/<name>"
  exit 1
fi

#!/bin/sh
# README command 2: install what is missing, build, and run the whole test
# suite twice: a normal build (with -Werror) and an ASan+UBSan build.
# Set FUZZ_SECONDS=N to also run every libFuzzer target for N seconds.
set -eu
cd "$(dirname "$0")/.."
EXTRA=""
[ "${FUZZ_SECONDS:-0}" != 0 ] && EXTRA="clang libclang-rt-14-dev"
CUSTOS_EXTRA_PKGS="$EXTRA" sh scripts/deps.sh
JOBS=$(nproc)
status=0

run_suite() { # DIR CMAKE_ARGS...
  dir=$1; shift
  cmake -S . -B "$dir" -DWERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS" >/dev/null 2>"$dir.build.log" || { cat "$dir.build.log"; exit 1; }
  echo "== ctest in $dir ($*)"
  (cd "$dir" && ctest -j3 --timeout 600 --output-on-failure) > "$dir.ctest.log" 2>&1 || status=1
  grep -E "tests passed|tests failed" "$dir.ctest.log" || true
  [ $status = 0 ] || sed -n '/The following tests FAILED/,$p' "$dir.ctest.log"
}

run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON

if [ "${FUZZ_SECONDS:-0}" != 0 ]; then
  sh tests/fuzz/run.sh "$FUZZ_SECONDS" || status=1
fi
exit $status

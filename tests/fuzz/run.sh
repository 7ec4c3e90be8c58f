#!/bin/sh
# Builds every libFuzzer target with clang + ASan/UBSan and runs each for
# SECONDS (default 20) on a scratch copy of its corpus, one per core at a time; prints the executions
# run per target.  A crash fails the run: save the reproducer printed by
# libFuzzer into tests/fuzz/corpus/<target>/ so ctest replays it forever.
set -eu
SECONDS_EACH=${1:-20}
cd "$(dirname "$0")/../.."
BUILD=build-fuzz
CC=clang cmake -S . -B $BUILD -DFUZZ=ON -DSANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build $BUILD -j"$(nproc)" >/dev/null 2>$BUILD.log || { cat $BUILD.log; exit 1; }
status=0
printf '%-24s %12s %8s\n' target executions result
# One target: its table row in $BUILD/NAME.row, non-zero on a crash.
fuzz_one() { # NAME
  name=$1
  rm -f "$BUILD/$name.row"
  corpus=tests/fuzz/corpus/${name#fuzz_}
  scratch=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$scratch"/
  if ASAN_OPTIONS=detect_leaks=1 "./$BUILD/$name" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -artifact_prefix="$BUILD/$name-" "$scratch" > "$BUILD/$name.out" 2>&1; then
    result=ok
  else
    result=CRASH
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/$name.out" | tail -n1)
  printf '%-24s %12s %8s\n' "$name" "${execs:-?}" "$result" > "$BUILD/$name.row"
  rm -rf "$scratch"
  [ "$result" = ok ]
}
# As many targets at once as there are cores (each fuzzer is one process).
JOBS=$(nproc)
pids=""
trap 'kill $pids 2>/dev/null' INT TERM
names=$(for src in tests/fuzz/fuzz_*.c; do basename "$src" .c; done)
set -- $names
while [ $# -gt 0 ]; do
  batch=""
  i=0
  while [ $# -gt 0 ] && [ $i -lt "$JOBS" ]; do
    fuzz_one "$1" & batch="$batch $!:$1"
    pids="$pids $!"
    shift; i=$((i + 1))
  done
  for job in $batch; do
    name=${job#*:}
    if ! wait "${job%%:*}"; then
      status=1
      cat "$BUILD/$name.row" 2>/dev/null || printf '%-24s %12s %8s\n' "$name" "?" CRASH
      tail -n 30 "$BUILD/$name.out" 2>/dev/null || true
    else
      cat "$BUILD/$name.row"
    fi
  done
done
exit $status

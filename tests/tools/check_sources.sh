#!/usr/bin/env bash
# check_sources: every .c file outside tests/ is listed in CMakeLists.txt.
# The source lists are explicit: a file that is added but not listed would
# silently not be built (its functions missing, or worse, an old copy of
# them elsewhere in use).   check_sources.sh SOURCE_DIR
set -u
src=$1
cd "$src" || exit 2
missing=0
while IFS= read -r f; do
  grep -qF "$f" CMakeLists.txt || { echo "FAIL: $f is not listed in CMakeLists.txt"; missing=$((missing + 1)); }
done < <(find common proto server client -name '*.c' | sort)
if [ "$missing" -gt 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "ok - every .c outside tests/ is in a source list"
echo "1 passed, 0 failed"

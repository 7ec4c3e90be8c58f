#!/usr/bin/env bash
# Disk full (ENOSPC, not LMDB's map limit): a write that cannot land is
# answered "disk full" with the storage path, the server log says so, and
# once space is freed writes succeed again by themselves, with a log line
# saying so.  Every acknowledged write survives.  Needs a small tmpfs
# (mount -t tmpfs): skipped (77) where mounting is not permitted.
. "$(dirname "$0")/lib.sh"
SMALL="$WORK/small"
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=3m,mode=0700 custos-test "$SMALL" 2>"$WORK/mount.err"; then
  echo "SKIPPED: cannot mount a tmpfs for the disk-full test: $(cat "$WORK/mount.err")" >&2
  exit 77
fi
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; umount "$SMALL" 2>/dev/null || umount -l "$SMALL"; cleanup' EXIT

mkdir -p "$SMALL/data"
wait_for() { # SECONDS cmd...: retries cmd until it succeeds
  local limit=$1; shift; local k
  for k in $(seq 1 $(( limit * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
# The map (64 MiB) is much larger than the filesystem (3 MiB): the
# filesystem fills first (ENOSPC), not the map (MDB_MAP_FULL).
start_server a
sed -i "s|path = \"$WORK/a/data\";|path = \"$SMALL/data\"; map_size_mb = 64;|" "$WORK/a/custos.conf"
stop_server a
start_server a
init_server a 1 1
unseal_with a 1
# 600 KiB of filler to free later.
dd if=/dev/zero of="$SMALL/filler" bs=1k count=600 2>/dev/null || true

val=$(head -c 40000 /dev/zero | tr '\0' 'x')
: > "$WORK/acked"
full=0
for k in $(seq 1 200); do
  if cli a kv put "big/k$k" v="$val" >/dev/null 2>"$WORK/put.err"; then
    echo "$k" >> "$WORK/acked"
  else
    full=1; break
  fi
done
[ "$full" = 1 ] || fail "200 puts of 40 KB fit in a 3 MiB filesystem?"
grep -qi "disk full" "$WORK/put.err" || fail "answer on a full disk: $(cat "$WORK/put.err") (want 'disk full')"
grep -q "$SMALL/data" "$WORK/put.err" || fail "answer on a full disk does not name the path: $(cat "$WORK/put.err")"
pass "full filesystem answered: $(cat "$WORK/put.err")"
wait_for 5 grep -qi "disk full" "$WORK/a.log" || fail "nothing about the full disk in the server log"
pass "server log: $(grep -m1 -i 'disk full' "$WORK/a.log" | cut -c1-200)"

rm -f "$SMALL/filler"
put_ok() { cli a kv put after/free v=1 >/dev/null 2>&1; }
wait_for 20 put_ok || fail "writes still fail after space was freed: $(cli a kv put after/free v=1 2>&1)"
wait_for 5 grep -q "writes succeed again" "$WORK/a.log" || fail "no log line when writes succeed again"
pass "space freed: writes succeed again by themselves ($(grep -m1 'writes succeed again' "$WORK/a.log" | cut -c1-160))"

for k in $(cat "$WORK/acked"); do
  [ "$(cli a kv get "big/k$k" --field v 2>/dev/null | cut -c1-5)" = xxxxx ] || fail "acknowledged big/k$k lost"
done
stop_server a
start_server a
unseal_with a 1
for k in $(cat "$WORK/acked"); do
  [ "$(cli a kv get "big/k$k" --field v 2>/dev/null | cut -c1-5)" = xxxxx ] || fail "acknowledged big/k$k lost after restart"
done
pass "every acknowledged write ($(wc -l < "$WORK/acked")) intact, also after a restart"

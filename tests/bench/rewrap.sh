#!/bin/sh
# rewrap.sh: rewrap throughput and what a running rewrap costs foreground
# requests, on one standalone custosd (127.0.0.1, TLS, durable commits).
#
#   sh tests/bench/rewrap.sh [--values N] [--duration S] [--conns C] [--build DIR] [--keep]
#
# A benchmark, never a test: it prints figures and exits 0 whatever they
# are; non-zero only when it could not measure.
#
#   1. builds custos (RelWithDebInfo, build-bench/) unless --build DIR names
#      a build with custosd, custos and custos-bench;
#   2. stores N values (default 100,000; 256 bytes; custos-bench's
#      populate of bench/k0000000...), then rotates: all N are under term 1;
#   3. twice: idle GET and PUT for S seconds (default 5) each, C connections
#      (default 16), pipeline 1, over the first 1,000 keys (their populate
#      rewrites those 1,000 under the new term; the rest stay old), then
#      `custos operator rewrap` at the default rate with the same GET and
#      PUT runs while it runs (checked still running at the end of each),
#      then waits for it: throughput = values moved / time; then rotates;
#   4. idle once more, then a rewrap at --rate 1000000 (as fast as the
#      commit path takes it) with the same runs during it;
#   5. prints one table: ops/s, p50, p99, p99.9 per run, and values/s.
# Idle and loaded runs alternate back to back so both meet the same
# neighbours on a shared box.
# Every figure carries the 1-minute load average (the box is shared).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=100000
DUR=5
CONNS=16
BUILD=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --values) N=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "rewrap.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
PORT=19700
WORK=$(mktemp -d /tmp/custos-rewrap-bench-XXXXXX)
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $PIDS; do wait "$p" 2>/dev/null || true; done
  [ "$KEEP" = 1 ] && echo "work dir kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
log() { printf '== %s\n' "$*" >&2; }
die() { echo "rewrap.sh: $*" >&2; exit 1; }
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\)\"\{0,1\}[,}].*/\1/p" | head -1; }
la() { cut -d" " -f1 /proc/loadavg; }
now() { date +%s.%N; }

if [ -z "$BUILD" ]; then
  BUILD="$ROOT/build-bench"
  log "building custos in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" >"$WORK/cmake.log" 2>&1 && cmake --build "$BUILD" -j2 >>"$WORK/cmake.log" 2>&1 ||
    { tail -30 "$WORK/cmake.log" >&2; die "build failed"; }
fi
CUSTOSD="$BUILD/custosd"
CUSTOS="$BUILD/custos"
CBENCH="$BUILD/custos-bench"
[ -x "$CUSTOSD" ] && [ -x "$CUSTOS" ] && [ -x "$CBENCH" ] || die "no custosd/custos/custos-bench in $BUILD"

sh "$ROOT/deploy/gen-certs.sh" "$WORK/tls" >/dev/null 2>&1 || die "gen-certs.sh failed"
mkdir -p "$WORK/data"
cat >"$WORK/custos.conf" <<EOF
storage = { path = "$WORK/data"; map_size_mb = 4096; };
listener = {
  address = "127.0.0.1:$PORT";
  tls_cert_file = "$WORK/tls/server.crt";
  tls_key_file = "$WORK/tls/server.key";
  idle_timeout = "1h";
};
log_level = "warn";
EOF
"$CUSTOSD" --config "$WORK/custos.conf" >"$WORK/custosd.log" 2>&1 &
PIDS="$PIDS $!"
export CUSTOS_ADDR="127.0.0.1:$PORT" CUSTOS_CACERT="$WORK/tls/ca.crt"
i=0
until "$CUSTOS" status >/dev/null 2>&1 || [ $? = 2 ]; do
  i=$((i + 1)); [ $i -lt 200 ] || die "custosd did not start: $(tail -5 "$WORK/custosd.log")"; sleep 0.05
done
INIT=$("$CUSTOS" operator init --key-shares 1 --key-threshold 1 --format json)
KEY=$(printf '%s' "$INIT" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
CUSTOS_TOKEN=$(printf '%s' "$INIT" | jget root_token)
export CUSTOS_TOKEN
"$CUSTOS" operator unseal "$KEY" >/dev/null || die "cannot unseal"

cbench() {
  out=$("$CBENCH" --format json "$@" 2>"$WORK/cbench.err") || {
    cat "$WORK/cbench.err" >&2; echo "$out" >&2; die "custos-bench $* reported errors"; }
  echo "$out"
}
status_field() { "$CUSTOS" operator rewrap --status --format json | jget "$1"; }

log "storing $N values (256 bytes)"
P=$(cbench --connections 50 --pipeline 8 --op get --keys "$N" --requests 1 --value-size 256)
log "populated: $(echo "$P" | jget populate_s) s"
"$CUSTOS" operator rotate >/dev/null || die "rotate"

ROWS="$WORK/rows"
: >"$ROWS"
measure() { # PHASE: a GET run and a PUT run
  for op in get put; do
    r=$(cbench --connections "$CONNS" --pipeline 1 --op "$op" --keys 1000 --duration "$DUR" --value-size 256)
    printf '%-28s %-4s %10s %9s %9s %9s  load %s\n' "$1" "$op" "$(echo "$r" | jget ops_per_sec)" \
      "$(echo "$r" | jget p50_ms)" "$(echo "$r" | jget p99_ms)" "$(echo "$r" | jget p999_ms)" "$(la)" >>"$ROWS"
    case $1 in idle*) ;; *)
      st=$(status_field state)
      [ "$st" = running ] || printf '%-28s (the rewrap was %s at the end of this run: not all of it overlapped)\n' "" "$st" >>"$ROWS" ;;
    esac
  done
}

rewrap_phase() { # LABEL RATE_ARGS...
  label=$1; shift
  "$CUSTOS" operator rewrap "$@" >/dev/null || die "rewrap $*"
  t0=$(now)
  log "$label: GET and PUT during the rewrap"
  measure "$label"
  "$CUSTOS" operator rewrap --status --wait >/dev/null 2>&1 || die "rewrap --wait"
  t1=$(now)
  total=$(status_field total)
  secs=$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')
  vps=$(echo "$total $t1 $t0" | awk '{printf "%.0f", $1 / ($2 - $3)}')
  printf '%-28s rewrap of %s values in %s s: %s values/s (load %s)\n' "$label" "$total" "$secs" "$vps" "$(la)" >>"$ROWS"
}

# Idle and during alternate, back to back, so both see the same neighbours.
for round in 1 2; do
  [ "$round" = 1 ] || "$CUSTOS" operator rotate >/dev/null || die "rotate"
  log "round $round: idle"
  measure "idle ($round)"
  rewrap_phase "rewrap default rate ($round)"
done
"$CUSTOS" operator rotate >/dev/null || die "rotate"
log "idle before the fast rewrap"
measure "idle (3)"
rewrap_phase "rewrap --rate 1000000" --rate 1000000

"$CUSTOS" operator key-status --verify >"$WORK/ks.txt" || die "key-status --verify: $(cat "$WORK/ks.txt")"
printf '\nrewrap.sh: %s values, %s connections, pipeline 1, 256-byte values, %s s per run, %s cores\n' \
  "$N" "$CONNS" "$DUR" "$(nproc)"
printf '%-28s %-4s %10s %9s %9s %9s\n' phase op "ops/s" "p50 ms" "p99 ms" "p99.9 ms"
cat "$ROWS"
echo
grep -E "Full scan" "$WORK/ks.txt" || true

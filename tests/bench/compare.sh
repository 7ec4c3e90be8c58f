#!/bin/sh
# compare.sh: custos side by side with redis and etcd, on 127.0.0.1, TLS everywhere.
#
#   sh tests/bench/compare.sh [--quick] [--duration S] [--terms N] [--idle N] [--keep]
#
# A benchmark, never a test: it prints figures and exits 0 whatever they are.
# It exits non-zero only when it could not measure (a server would not start,
# a load generator reported errors, ...).
#
# What it does, in one run:
#   1. installs what is missing (redis-server redis-tools etcd-server
#      etcd-client wrk openssl lmdb-utils) with apt-get;
#   2. builds custos in Release (build-bench/);
#   3. makes certificates with deploy/gen-certs.sh (one CA for everyone);
#   4. starts a fresh custosd (config file, data directory on disk),
#      initializes it with one share and unseals it;
#   5. same workloads everywhere: 50 connections, 256-byte values, 100k keys,
#      GET (keys pre-populated) and durable PUT (fsync before the answer):
#        custos: custos-bench (client/bench)
#        redis:  redis-benchmark --tls -c 50 -d 256 -r 100000 -t get|set
#                GET against a redis without persistence (keys pre-populated
#                with redis-cli --pipe), SET against a redis with
#                --appendonly yes --appendfsync always
#        etcd:   wrk against etcd 3.4's JSON gateway (tests/bench/etcd_*.lua),
#                keys pre-populated with curl (transactions of 100 puts)
#      plus, for custos and redis: GET with 16 requests pipelined per
#      connection (custos-bench --pipeline 16 / redis-benchmark -P 16);
#      custos GET and PUT with the audit log on (a second custosd, same
#      workload) next to the figures without it; and the 3-node cluster's
#      durable PUT next to standalone (tests/bench/cluster_put.sh);
#   6. custos only: rotate time with 0 and with 100k stored entries, unseal
#      time with a keyring of N terms (default 10,000), server RSS per idle
#      TLS connection at 10,000 connections, storage overhead per secret.
#   7. prints one table, then the custos-only figures.
# Everything it starts is stopped by PID on exit (trap).  Ports 19000-19999.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR="$ROOT/tests/bench"
DUR=10
TERMS=10000
IDLE=10000
KEYS=100000
CONNS=50
VSIZE=256
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DUR=3; TERMS=1000; IDLE=2000; shift ;;
    --duration) DUR=$2; shift 2 ;;
    --terms) TERMS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

P_CUSTOS=19200
P_CUSTOS_AUDIT=19201
P_REDIS=19300
P_REDIS_AOF=19301
P_ETCD=19400
P_ETCD_PEER=19401

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- set-up
need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
command -v etcdctl >/dev/null 2>&1 || need="$need etcd-client"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v mdb_stat >/dev/null 2>&1 || need="$need lmdb-utils"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v curl >/dev/null 2>&1 || need="$need curl"
if [ -n "$need" ]; then
  log "installing:$need"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

# On disk, not tmpfs: durable writes must really reach a disk.
WORK=$(mktemp -d /var/tmp/custos-compare.XXXXXX)
PIDS=""
cleanup() {
  for p in $PIDS; do
    kill "$p" 2>/dev/null || true
  done
  for p in $PIDS; do
    # wait only works for our children; poll for the others.
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until something listens on 127.0.0.1:$1 (bash for /dev/tcp).
if ! command -v bash >/dev/null 2>&1; then die "bash is needed"; fi
wait_port() {
  bash -c 'i=0; while ! (exec 3<>/dev/tcp/127.0.0.1/'"$1"') 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.05; done' ||
    die "nothing listens on port $1 ($2); see $WORK/*.log"
}

# jget KEY < json: the value of a number/bool/string field of a flat object.
jget() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\)\"\{0,1\}[,}].*/\1/p" | head -1; }

log "building custos (Release) in build-bench/"
cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 ||
  { cat "$WORK/cmake.log" >&2; die "cmake failed"; }
cmake --build "$ROOT/build-bench" -j2 >>"$WORK/cmake.log" 2>&1 ||
  { tail -30 "$WORK/cmake.log" >&2; die "build failed"; }
CUSTOSD="$ROOT/build-bench/custosd"
CUSTOS="$ROOT/build-bench/custos"
CBENCH="$ROOT/build-bench/custos-bench"

log "certificates (deploy/gen-certs.sh)"
sh "$ROOT/deploy/gen-certs.sh" "$WORK/tls" >/dev/null
CA="$WORK/tls/ca.crt"
CRT="$WORK/tls/server.crt"
KEY="$WORK/tls/server.key"

# Idle connections: every side needs a file descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- custosd
log "starting custosd on 127.0.0.1:$P_CUSTOS (data in $WORK/custos)"
mkdir -p "$WORK/custos"
cat >"$WORK/custos.conf" <<EOF
storage = { path = "$WORK/custos"; map_size_mb = 8192; };
listener = {
  address = "127.0.0.1:$P_CUSTOS";
  tls_cert_file = "$CRT";
  tls_key_file = "$KEY";
  max_connections = 20000;
  max_connections_per_address = 20000;
  idle_timeout = "1h";
};
log_level = "warn";
EOF
"$CUSTOSD" --config "$WORK/custos.conf" >"$WORK/custosd.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
wait_port $P_CUSTOS custosd
export CUSTOS_ADDR="127.0.0.1:$P_CUSTOS" CUSTOS_CACERT="$CA"
INIT=$("$CUSTOS" operator init --key-shares 1 --key-threshold 1 --format json)
UNSEAL_KEY=$(printf '%s' "$INIT" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
CUSTOS_TOKEN=$(printf '%s' "$INIT" | jget root_token)
export CUSTOS_TOKEN
[ -n "$UNSEAL_KEY" ] && [ -n "$CUSTOS_TOKEN" ] || die "custos operator init: unexpected output"
"$CUSTOS" operator unseal "$UNSEAL_KEY" >/dev/null || die "cannot unseal custosd"

# cbench ARGS...: runs custos-bench with JSON output, fails on errors.
cbench() {
  out=$("$CBENCH" --format json "$@" 2>"$WORK/cbench.err") || {
    cat "$WORK/cbench.err" >&2; echo "$out" >&2; die "custos-bench $* reported errors"; }
  echo "$out"
}

# The 1-minute load average: the box is shared, so every figure carries it.
la() { cut -d" " -f1 /proc/loadavg; }

ms_of() { printf '%s' "$1" | jget "$2"; }

# ---------------------------------------------------------------- custos: rotate on empty store
log "custos: rotate x20 with 0 entries"
R0=$(cbench --connections 1 --pipeline 1 --requests 20 --op rotate)

# ---------------------------------------------------------------- custos: GET / PUT
log "custos: GET, $CONNS connections, ${DUR}s (after populating $KEYS keys)"
LA_CG=$(la)
CG=$(cbench --connections $CONNS --duration "$DUR" --op get --keys $KEYS --value-size $VSIZE)
log "custos: durable PUT, $CONNS connections, ${DUR}s"
LA_CP=$(la)
CP=$(cbench --connections $CONNS --duration "$DUR" --op put --keys $KEYS --value-size $VSIZE)

log "custos: GET, $CONNS connections x 16 pipelined, ${DUR}s"
LA_CGP=$(la)
CGP=$(cbench --connections $CONNS --pipeline 16 --duration "$DUR" --op get --keys $KEYS --value-size $VSIZE)

# ---------------------------------------------------------------- custos with the audit log
log "custos with the audit log on 127.0.0.1:$P_CUSTOS_AUDIT"
mkdir -p "$WORK/custos-audit"
sed -e "s|$WORK/custos\"|$WORK/custos-audit\"|" -e "s|127.0.0.1:$P_CUSTOS|127.0.0.1:$P_CUSTOS_AUDIT|" \
  "$WORK/custos.conf" > "$WORK/custos-audit.conf"
echo "audit = { file = \"$WORK/custos-audit/audit.log\"; };" >> "$WORK/custos-audit.conf"
"$CUSTOSD" --config "$WORK/custos-audit.conf" >"$WORK/custosd-audit.log" 2>&1 &
APID=$!
PIDS="$PIDS $APID"
wait_port $P_CUSTOS_AUDIT custosd-audit
AINIT=$(CUSTOS_ADDR=127.0.0.1:$P_CUSTOS_AUDIT "$CUSTOS" operator init --key-shares 1 --key-threshold 1 --format json)
AKEY=$(printf '%s' "$AINIT" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
ATOKEN=$(printf '%s' "$AINIT" | jget root_token)
CUSTOS_ADDR=127.0.0.1:$P_CUSTOS_AUDIT "$CUSTOS" operator unseal "$AKEY" >/dev/null || die "cannot unseal the audited custosd"
acbench() { CUSTOS_ADDR=127.0.0.1:$P_CUSTOS_AUDIT CUSTOS_TOKEN=$ATOKEN cbench "$@"; }
log "custos (audit on): GET, $CONNS connections, ${DUR}s"
LA_AG=$(la)
AG=$(acbench --connections $CONNS --duration "$DUR" --op get --keys $KEYS --value-size $VSIZE)
log "custos (audit on): durable PUT, $CONNS connections, ${DUR}s"
LA_AP=$(la)
AP=$(acbench --connections $CONNS --duration "$DUR" --op put --keys $KEYS --value-size $VSIZE)
kill $APID; wait $APID 2>/dev/null || true

# ---------------------------------------------------------------- custos: storage overhead
ENTRIES=$(mdb_stat -s data "$WORK/custos" | sed -n 's/^ *Entries: *//p')
PAGES=$(mdb_stat -s data "$WORK/custos" | awk '/Branch pages|Leaf pages|Overflow pages/ {s += $3} END {print s}')
PSIZE=$(mdb_stat -e "$WORK/custos" | sed -n 's/^ *Page size: *//p')
FILE_BYTES=$(stat -c %s "$WORK/custos/data.mdb")

# ---------------------------------------------------------------- custos: rotate with data
log "custos: rotate x20 with $ENTRIES entries"
R1=$(cbench --connections 1 --pipeline 1 --requests 20 --op rotate)

# ---------------------------------------------------------------- custos: idle connections
log "custos: $IDLE idle TLS connections"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
RSS0=$(rss $CPID)
"$CBENCH" --connections-only "$IDLE" --hold 600 --format json >"$WORK/hold.out" 2>"$WORK/hold.err" &
HPID=$!
PIDS="$PIDS $HPID"
i=0
until grep -q holding "$WORK/hold.err"; do
  kill -0 $HPID 2>/dev/null || { cat "$WORK/hold.err" >&2; die "custos-bench --connections-only failed"; }
  sleep 0.2
done
sleep 1
RSS1=$(rss $CPID)
HELD=$(sed -n 's/.*holding \([0-9]*\) connections.*/\1/p' "$WORK/hold.err")
kill $HPID 2>/dev/null || true
wait $HPID 2>/dev/null || true

# ---------------------------------------------------------------- custos: unseal with N terms
CUR=$("$CUSTOS" status --format json | jget term)
MORE=$((TERMS - CUR))
log "custos: rotating to $TERMS terms ($MORE rotations, one at a time: key changes are exclusive)"
T0=$(date +%s.%N)
[ "$MORE" -le 0 ] || cbench --connections 1 --pipeline 1 --requests "$MORE" --op rotate >/dev/null
T1=$(date +%s.%N)
RN=$(cbench --connections 1 --pipeline 1 --requests 10 --op rotate)
UNSEALS=""
for i in 1 2 3; do
  cbench --connections 1 --requests 1 --op seal >/dev/null
  U=$(cbench --connections 1 --requests 1 --op unseal --unseal-key "$UNSEAL_KEY")
  UNSEALS="$UNSEALS $(ms_of "$U" max_ms)"
done
"$CUSTOS" status --format json | grep -q '"sealed":false' || die "custosd did not unseal"
TERMS_NOW=$("$CUSTOS" status --format json | jget term)

# ---------------------------------------------------------------- redis
REDIS_TLS="--tls-cert-file $CRT --tls-key-file $KEY --tls-ca-cert-file $CA --tls-auth-clients no"
log "redis: GET (no persistence) on $P_REDIS"
mkdir -p "$WORK/redis" "$WORK/redis-aof"
# shellcheck disable=SC2086
redis-server --port 0 --tls-port $P_REDIS $REDIS_TLS --save '' --appendonly no \
  --dir "$WORK/redis" --daemonize no --logfile "$WORK/redis.log" &
RPID=$!
PIDS="$PIDS $RPID"
wait_port $P_REDIS redis
# Every key redis-benchmark -r may ask for (key:000000000000 .. key:000000099999).
awk -v n=$KEYS -v vs=$VSIZE 'BEGIN { v = sprintf("%*s", vs, ""); gsub(/ /, "x", v);
  for (i = 0; i < n; i++) { k = sprintf("key:%012d", i);
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, vs, v } }' >"$WORK/redis-fill.txt"
redis-cli --tls --cacert "$CA" -h 127.0.0.1 -p $P_REDIS --pipe <"$WORK/redis-fill.txt" >"$WORK/redis-fill.log" 2>&1 ||
  { cat "$WORK/redis-fill.log" >&2; die "redis fill failed"; }
RKEYS=$(redis-cli --tls --cacert "$CA" -h 127.0.0.1 -p $P_REDIS dbsize)
[ "$RKEYS" = "$KEYS" ] || die "redis holds $RKEYS keys, wanted $KEYS"

# rbench PORT TEST: one redis-benchmark run of ~DUR seconds; prints "ops p99".
rbench() {
  # Size -n so the run lasts about DUR seconds at ~60k/s (redis-benchmark
  # has no duration option); the rate is what it measures, not the count.
  n=$(( $3 * DUR ))
  redis-benchmark --tls --cacert "$CA" -h 127.0.0.1 -p "$1" -c $CONNS -d $VSIZE -r $KEYS \
    -n "$n" -t "$2" ${RBENCH_EXTRA:-} --csv 2>"$WORK/rbench.err" | tail -1 | tr -d '"' |
    awk -F, '{print $2, $7}'
}
LA_RG=$(la)
RG=$(rbench $P_REDIS get 60000)
LA_RGP=$(la)
RGP=$(RBENCH_EXTRA="-P 16" rbench $P_REDIS get 400000)
kill $RPID; wait $RPID 2>/dev/null || true

log "redis: durable SET (appendonly yes, appendfsync always) on $P_REDIS_AOF"
# shellcheck disable=SC2086
redis-server --port 0 --tls-port $P_REDIS_AOF $REDIS_TLS --save '' --appendonly yes \
  --appendfsync always --dir "$WORK/redis-aof" --daemonize no --logfile "$WORK/redis-aof.log" &
RPID2=$!
PIDS="$PIDS $RPID2"
wait_port $P_REDIS_AOF redis-aof
LA_RS=$(la)
RS=$(rbench $P_REDIS_AOF set 20000)
kill $RPID2; wait $RPID2 2>/dev/null || true

# ---------------------------------------------------------------- etcd
log "etcd: starting on https://127.0.0.1:$P_ETCD"
etcd --name bench --data-dir "$WORK/etcd" \
  --listen-client-urls "https://127.0.0.1:$P_ETCD" --advertise-client-urls "https://127.0.0.1:$P_ETCD" \
  --cert-file "$CRT" --key-file "$KEY" \
  --listen-peer-urls "http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCD_PEER" \
  --initial-cluster "bench=http://127.0.0.1:$P_ETCD_PEER" --log-level error >"$WORK/etcd.log" 2>&1 &
EPID=$!
PIDS="$PIDS $EPID"
wait_port $P_ETCD etcd
i=0
until ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$P_ETCD" --cacert "$CA" endpoint health >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || die "etcd not healthy; see $WORK/etcd.log"; sleep 0.1
done
export BENCH_LUA_DIR="$BENCH_DIR" BENCH_KEYS=$KEYS BENCH_VALUE_SIZE=$VSIZE
# wrkrun SCRIPT SECONDS: prints the RESULT line's fields.
wrkrun() {
  wrk -t2 -c$CONNS -d"$2"s --timeout 10s -s "$BENCH_DIR/$1" "https://127.0.0.1:$P_ETCD" >"$WORK/wrk.out" 2>&1 ||
    { cat "$WORK/wrk.out" >&2; die "wrk $1 failed"; }
  grep '^RESULT' "$WORK/wrk.out"
}
log "etcd: populating $KEYS keys (transactions of 100 puts, one curl process)"
# Keys key000000..: base64 of "key" is "a2V5", then two 3-digit groups of 4
# base64 characters each (computed in awk: no base64 process per key).
VAL64=$(head -c $VSIZE /dev/zero | tr '\0' v | base64 -w0)
awk -v n=$KEYS -v per=100 -v url="https://127.0.0.1:$P_ETCD/v3/kv/txn" -v ca="$CA" -v val="$VAL64" 'BEGIN {
  A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for (d = 0; d < 1000; d++) {
    s = sprintf("%03d", d); x = (48 + substr(s, 1, 1)) * 65536 + (48 + substr(s, 2, 1)) * 256 + 48 + substr(s, 3, 1)
    t[d] = substr(A, int(x / 262144) % 64 + 1, 1) substr(A, int(x / 4096) % 64 + 1, 1) substr(A, int(x / 64) % 64 + 1, 1) substr(A, x % 64 + 1, 1)
  }
  for (i = 0; i < n; i += per) {
    if (i > 0) print "next"
    printf "url = \"%s\"\ncacert = \"%s\"\nheader = \"Content-Type: application/json\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\n", url, ca
    body = "{\\\"success\\\":["
    for (j = i; j < i + per && j < n; j++)
      body = body (j > i ? "," : "") "{\\\"requestPut\\\":{\\\"key\\\":\\\"a2V5" t[int(j / 1000)] t[j % 1000] "\\\",\\\"value\\\":\\\"" val "\\\"}}"
    printf "data = \"%s]}\"\n", body
  } }' >"$WORK/etcd-fill.cfg"
BAD=$(curl -s -K "$WORK/etcd-fill.cfg" | grep -vc '^200$' || true)
[ "$BAD" = 0 ] || die "etcd fill: $BAD transactions failed"
ECOUNT=$(ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$P_ETCD" --cacert "$CA" get "" --from-key --limit 1 -w json |
  sed -n 's/.*"count":\([0-9]*\).*/\1/p')
[ "${ECOUNT:-0}" -ge "$KEYS" ] || die "etcd holds ${ECOUNT:-0} keys, wanted $KEYS"
log "etcd: range (GET), ${DUR}s"
LA_EG=$(la)
EG=$(wrkrun etcd_range.lua "$DUR")
log "etcd: durable put, ${DUR}s"
LA_EP=$(la)
EP=$(wrkrun etcd_put.lua "$DUR")
for r in "$EG" "$EP"; do
  e=$(echo "$r" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
  [ "$e" = 0 ] || die "wrk reported $e errors: $r"
done
kill $EPID; wait $EPID 2>/dev/null || true
kv() { echo "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }

# ---------------------------------------------------------------- 3-node cluster
log "custos: 3-node cluster durable PUT next to standalone (tests/bench/cluster_put.sh)"
LA_CL=$(la)
CUSTOSD="$CUSTOSD" CUSTOS="$CUSTOS" BENCH="$CBENCH" bash "$BENCH_DIR/cluster_put.sh" "$DUR" "$CONNS" \
  >"$WORK/cluster.out" 2>"$WORK/cluster.err" || { cat "$WORK/cluster.err" >&2; die "cluster_put.sh failed"; }

# ---------------------------------------------------------------- report
CG_OPS=$(ms_of "$CG" ops_per_sec); CG_P99=$(ms_of "$CG" p99_ms)
CP_OPS=$(ms_of "$CP" ops_per_sec); CP_P99=$(ms_of "$CP" p99_ms)
CGP_OPS=$(ms_of "$CGP" ops_per_sec); CGP_P99=$(ms_of "$CGP" p99_ms)
AG_OPS=$(ms_of "$AG" ops_per_sec); AG_P99=$(ms_of "$AG" p99_ms)
AP_OPS=$(ms_of "$AP" ops_per_sec); AP_P99=$(ms_of "$AP" p99_ms)
RGP_OPS=${RGP% *}; RGP_P99=${RGP#* }
RG_OPS=${RG% *}; RG_P99=${RG#* }
RS_OPS=${RS% *}; RS_P99=${RS#* }
EG_OPS=$(kv "$EG" ops_per_sec); EG_P99=$(kv "$EG" p99_ms)
EP_OPS=$(kv "$EP" ops_per_sec); EP_P99=$(kv "$EP" p99_ms)

echo
echo "custos vs redis vs etcd: 127.0.0.1, TLS, $CONNS connections, ${VSIZE}-byte values, $KEYS keys, ${DUR}s runs, $(nproc) cores"
awk -v cg="$CG_OPS" -v cgp="$CG_P99" -v cp="$CP_OPS" -v cpp="$CP_P99" \
    -v rg="$RG_OPS" -v rgp="$RG_P99" -v rs="$RS_OPS" -v rsp="$RS_P99" \
    -v eg="$EG_OPS" -v egp="$EG_P99" -v ep="$EP_OPS" -v epp="$EP_P99" \
    -v l1="$LA_CG" -v l2="$LA_RG" -v l3="$LA_EG" -v l4="$LA_CP" -v l5="$LA_RS" -v l6="$LA_EP" 'BEGIN {
  f = "| %-28s | %-12s | %9.0f | %7.2f | %12s | %11s | %5s |\n"
  printf "| %-28s | %-12s | %9s | %7s | %12s | %11s | %5s |\n", "system", "op", "ops/s", "p99 ms", "custos/redis", "custos/etcd", "load"
  printf "|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------------", "--------------", "----------:", "--------:", "-------------:", "------------:", "------:"
  printf f, "custos", "GET", cg, cgp, sprintf("%.2fx", cg / rg), sprintf("%.2fx", cg / eg), l1
  printf f, "redis (no persistence)", "GET", rg, rgp, "", "", l2
  printf f, "etcd 3.4 (JSON gateway)", "GET (range)", eg, egp, "", "", l3
  printf f, "custos", "durable PUT", cp, cpp, sprintf("%.2fx", cp / rs), sprintf("%.2fx", cp / ep), l4
  printf f, "redis (appendfsync always)", "durable SET", rs, rsp, "", "", l5
  printf f, "etcd 3.4 (JSON gateway)", "durable put", ep, epp, "", "", l6
}'
echo "(load: the 1-minute load average when the run started; the box is shared, figures under load are low)"
echo
awk -v cgp="$CGP_OPS" -v cgpp="$CGP_P99" -v rgp="$RGP_OPS" -v rgpp="$RGP_P99" -v l1="$LA_CGP" -v l2="$LA_RGP" \
    -v ag="$AG_OPS" -v agp="$AG_P99" -v ap="$AP_OPS" -v app="$AP_P99" -v cg="$CG_OPS" -v cp="$CP_OPS" \
    -v l3="$LA_AG" -v l4="$LA_AP" 'BEGIN {
  f = "| %-34s | %9.0f | %7.2f | %-26s | %5s |\n"
  printf "| %-34s | %9s | %7s | %-26s | %5s |\n", "row", "ops/s", "p99 ms", "ratio", "load"
  printf "|%s|%s|%s|%s|%s|\n", "------------------------------------", "----------:", "--------:", "----------------------------", "------:"
  printf f, "custos GET, 16 pipelined", cgp, cgpp, sprintf("%.2fx redis -P 16", cgp / rgp), l1
  printf f, "redis GET, -P 16", rgp, rgpp, "", l2
  printf f, "custos GET, audit log on", ag, agp, sprintf("%.2fx of audit off", ag / cg), l3
  printf f, "custos durable PUT, audit log on", ap, app, sprintf("%.2fx of audit off", ap / cp), l4
}'
echo
echo "3-node cluster on this machine (tests/bench/cluster_put.sh, load $LA_CL at the start):"
cat "$WORK/cluster.out"
echo
echo "custos only:"
printf '  populate %s keys (pipelined PUTs): %s s\n' "$KEYS" "$(ms_of "$CG" populate_s)"
printf '  custos-bench CPU: GET %s%%, PUT %s%% of one core\n' "$(ms_of "$CG" client_cpu_pct)" "$(ms_of "$CP" client_cpu_pct)"
printf '  rotate, 0 entries (20 rotations):      p50 %s ms, max %s ms\n' "$(ms_of "$R0" p50_ms)" "$(ms_of "$R0" max_ms)"
printf '  rotate, %s entries (20 rotations): p50 %s ms, max %s ms\n' "$ENTRIES" "$(ms_of "$R1" p50_ms)" "$(ms_of "$R1" max_ms)"
printf '  rotate, %s terms:                  p50 %s ms, max %s ms\n' "$TERMS" "$(ms_of "$RN" p50_ms)" "$(ms_of "$RN" max_ms)"
printf '  %s rotations back to back: %s s\n' "$MORE" "$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.1f", b - a}')"
printf '  unseal (last share -> unsealed) with %s terms: %s ms (3 runs)\n' "$TERMS_NOW" "$UNSEALS"
awk -v a="$RSS0" -v b="$RSS1" -v n="$HELD" 'BEGIN {
  printf "  idle TLS connections: %d held, server RSS %.1f -> %.1f MiB, %.1f KiB per connection\n", n, a/1024, b/1024, (b-a)/n }'
awk -v f="$FILE_BYTES" -v p="$PAGES" -v ps="$PSIZE" -v e="$ENTRIES" -v vs=$VSIZE 'BEGIN {
  raw = vs + 14 + 1   # value + path "bench/k0000000" + field name "v"
  printf "  storage: %d entries, data.mdb %.1f MiB = %.0f B/entry; pages in use %.0f B/entry; raw %d B/entry (x%.2f file, x%.2f pages)\n",
    e, f/1048576, f/e, p*ps/e, raw, f/e/raw, p*ps/e/raw }'

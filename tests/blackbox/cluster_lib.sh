# Helpers for the cluster black-box tests: N custosd processes on 127.0.0.1
# (ports 21000-28999) forming one raft cluster over mutually authenticated
# TLS, with certificates from deploy/cluster/gen-cluster-certs.sh.  Sourced
# after lib.sh (which kills every PID in PIDS on exit).
NODES=${NODES:-3}

# A block of 20 ports per test, claimed atomically with a lock directory so
# that cluster tests running in parallel never share ports; a lock left by
# a test that died is reclaimed once its owner is gone.
claim_port_block() {
  local k base lock owner
  for k in $(seq 0 399); do
    base=$(( 21000 + (($$ + k * 37) % 400) * 20 ))
    lock="/tmp/custos-ports-$base"
    if mkdir "$lock" 2>/dev/null; then
      echo $$ > "$lock/pid"; CLUSTER_PORT_LOCK=$lock; CBASE=$base; return 0
    fi
    owner=$(cat "$lock/pid" 2>/dev/null || true)
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      rm -rf "$lock"
      if mkdir "$lock" 2>/dev/null; then
        echo $$ > "$lock/pid"; CLUSTER_PORT_LOCK=$lock; CBASE=$base; return 0
      fi
    fi
  done
  fail "no free block of cluster ports"
}
if [ -z "${CBASE:-}" ]; then
  claim_port_block
  trap 'cleanup; rm -rf "$CLUSTER_PORT_LOCK"' EXIT
fi
api_port() { echo $(( CBASE + ($1 - 1) * 3 )); }
raft_port() { echo $(( CBASE + ($1 - 1) * 3 + 1 )); }

make_cluster_certs() {
  [ -f "$WORK/ctls/ca.crt" ] && return 0
  local names="" i
  for i in $(seq 1 $(( NODES > 5 ? NODES : 5 ))); do names="$names n$i"; done
  sh "$ROOT_DIR/deploy/cluster/gen-cluster-certs.sh" "$WORK/ctls" $names n9 >/dev/null 2>&1 \
    || fail "gen-cluster-certs.sh failed"
}

# write_node_config I [extra cluster lines]: n$I's configuration, listing every member.
write_node_config() {
  local i=$1; shift
  local dir="$WORK/n$i" peers="" j audit=""
  # AUDIT=1: every node writes an audit log to $WORK/nI/audit.log.
  [ -n "${AUDIT:-}" ] && audit="audit = { file = \"$dir/audit.log\"; };"
  mkdir -p "$dir/data"
  for j in $(seq 1 "$NODES"); do
    [ "$j" = "$i" ] && continue
    peers="$peers${peers:+,}
    { node_id = \"n$j\"; address = \"127.0.0.1:$(raft_port "$j")\"; api_address = \"127.0.0.1:$(api_port "$j")\"; }"
  done
  cat > "$dir/custos.conf" <<CONF
storage  = { path = "$dir/data"; ${STORAGE_EXTRA:-} };
listener = {
  address       = "127.0.0.1:$(api_port "$i")";
  tls_cert_file = "$WORK/ctls/n$i.crt";
  tls_key_file  = "$WORK/ctls/n$i.key";
  handshake_timeout = "2s";
};
log_level = "${LOG_LEVEL:-info}";
${SEAL_EXTRA:-}
$audit
cluster = {
  node_id       = "n$i";
  address       = "127.0.0.1:$(raft_port "$i")";
  api_address   = "127.0.0.1:$(api_port "$i")";
  tls_cert_file = "$WORK/ctls/n$i.crt";
  tls_key_file  = "$WORK/ctls/n$i.key";
  tls_ca_file   = "$WORK/ctls/ca.crt";
  election_timeout  = ${ELECTION_MS:-1000};
  heartbeat_timeout = ${HEARTBEAT_MS:-100};
  poll_interval     = ${POLL_MS:-1000};
  snapshot_threshold = ${SNAP_THRESHOLD:-1024};
  snapshot_trailing  = ${SNAP_TRAILING:-128};
  peers = ( $peers );
  $*
};
CONF
}

# start_node I: starts (or restarts) n$I and waits until it answers status.
start_node() {
  local i=$1
  make_cluster_certs
  [ -f "$WORK/n$i/custos.conf" ] || write_node_config "$i"
  "$CUSTOSD" --config "$WORK/n$i/custos.conf" >>"$WORK/n$i.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "NPID_$i=$pid"
  local k
  for k in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      # libraft needs O_DIRECT + kernel AIO on the data directory's
      # filesystem (ext4, xfs, tmpfs).  Where the test machine's /tmp cannot
      # do that, the cluster tests cannot run at all: report a skip (77),
      # loudly, rather than a failure of custos.
      if grep -q "Async I/O\|io_setup\|O_DIRECT" "$WORK/n$i.log" 2>/dev/null; then
        echo "SKIPPED: libraft cannot use $WORK on this filesystem: $(grep -m1 -i 'raft' "$WORK/n$i.log")" >&2
        exit 77
      fi
      fail "custosd n$i exited at start"
    fi
    if ncli "$i" status >/dev/null 2>&1 || [ $? -eq 2 ]; then return 0; fi
    sleep 0.05
  done
  fail "custosd n$i did not answer"
}

stop_node() { # I [SIGNAL]
  local pid; pid=$(eval echo "\${NPID_$1:-}")
  [ -n "$pid" ] || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  local k
  for k in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "custosd n$1 did not stop"
  wait "$pid" 2>/dev/null || true
  eval "NPID_$1="
}

# ncli I args...: the real CLI against n$I.
ncli() {
  local i=$1; shift
  CUSTOS_ADDR="127.0.0.1:$(api_port "$i")" CUSTOS_CACERT="$WORK/ctls/ca.crt" CUSTOS_TOKEN="${TOKEN:-}" \
    timeout 20 "$CUSTOS" "$@"
}

node_status() { ncli "$1" status --format json 2>/dev/null || true; }

# rotate_wait I: one rotation through the active n$I, returning once its
# term is active (staged activation: once every voter holds it, or after
# seal.max_activation_delay; docs/ha.md).
rotate_wait() { ncli "$1" operator rotate --wait >/dev/null; }
ha_mode() { node_status "$1" | json ha_mode; }

# active_node: the index of the node reporting ha_mode active (waits up to $1 s).
active_node() {
  local limit=${1:-10} k i
  for k in $(seq 1 $(( limit * 20 ))); do
    for i in $(seq 1 "$NODES"); do
      [ -n "$(eval echo "\${NPID_$i:-}")" ] || continue
      [ "$(ha_mode "$i")" = active ] && { echo "$i"; return 0; }
    done
    sleep 0.05
  done
  return 1
}

# wait_for SECONDS cmd...: retries cmd until it succeeds.
wait_for() {
  local limit=$1; shift
  local k
  for k in $(seq 1 $(( limit * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# init_cluster I N T: init through node I; shares in $WORK/cluster.keys, TOKEN set.
init_cluster() {
  # RETRY (exit 3: no leader at this instant, nothing was done) is retried.
  local try rc
  for try in $(seq 1 100); do
    set +e
    ncli "$1" operator init --key-shares "${2:-3}" --key-threshold "${3:-2}" --format json \
      > "$WORK/cluster.init" 2>"$WORK/cluster.init.err"
    rc=$?
    set -e
    [ "$rc" = 3 ] || break
    sleep 0.2
  done
  [ "$rc" = 0 ] || fail "cluster init failed (exit $rc): $(cat "$WORK/cluster.init" "$WORK/cluster.init.err")"
  json_array unseal_keys_hex < "$WORK/cluster.init" > "$WORK/cluster.keys"
  TOKEN=$(json root_token < "$WORK/cluster.init")
  [ -n "$TOKEN" ] || fail "no root token"
}
ckey() { sed -n "$1p" "$WORK/${KEYFILE:-cluster.keys}"; }

is_initialized() { [ "$(node_status "$1" | json initialized)" = true ]; }
is_unsealed() { [ "$(node_status "$1" | json sealed)" = false ]; }

# unseal_node I idx...: submit shares to n$I (waits for it to see the init first).
unseal_node() {
  local i=$1; shift
  wait_for 10 is_initialized "$i" || fail "n$i never saw the cluster initialized"
  local k
  for k in "$@"; do ncli "$i" operator unseal "$(ckey "$k")" >/dev/null 2>&1 || true; done
  is_unsealed "$i" || fail "n$i still sealed after shares $*"
}

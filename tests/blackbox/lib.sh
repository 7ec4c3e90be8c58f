# Shared helpers for the black-box tests: real custosd processes on
# 127.0.0.1 with real certificates and LMDB directories, driven through the
# real custos CLI.  Every process started here is killed by PID on exit.
set -euo pipefail

: "${CUSTOSD:?set CUSTOSD to the custosd binary}"
: "${CUSTOS:?set CUSTOS to the custos binary}"
TESTS_DIR=${TESTS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ROOT_DIR=$(cd "$TESTS_DIR/.." && pwd)

WORK=$(mktemp -d /tmp/custos-bb-XXXXXX)
PIDS=()
unset CUSTOS_ADDR CUSTOS_CACERT CUSTOS_TOKEN CUSTOS_FORMAT CUSTOS_CLIENT_CERT CUSTOS_CLIENT_KEY

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done; exit 1; }
pass() { echo "ok - $*"; }

# A port derived from the PID, so parallel tests rarely collide; start_server
# retries with another one if the bind fails.
# (30000-44999: clear of the cluster tests' 21000-28999.)
next_port() { echo $(( 30000 + (RANDOM * 7 + $$) % 15000 )); }

make_certs() {
  [ -f "$WORK/tls/ca.crt" ] && return 0
  mkdir -p "$WORK/tls"
  sh "$ROOT_DIR/deploy/gen-certs.sh" "$WORK/tls" >/dev/null 2>&1 || fail "gen-certs.sh failed"
}

# write_config NAME PORT [extra config lines]
write_config() {
  local name=$1 port=$2; shift 2
  mkdir -p "$WORK/$name/data"
  cat > "$WORK/$name/custos.conf" <<CONF
storage  = { path = "$WORK/$name/data"; };
listener = {
  address       = "127.0.0.1:$port";
  tls_cert_file = "$WORK/tls/server.crt";
  tls_key_file  = "$WORK/tls/server.key";
  handshake_timeout = "2s";
  ${LISTENER_EXTRA:-}
};
log_level = "debug";
$*
CONF
}

# start_server NAME [extra config lines]: starts (or restarts) custosd NAME;
# sets PORT_<NAME>, PID_<NAME>; waits until it answers status.
start_server() {
  local name=$1; shift
  make_certs
  local port try
  port=$(eval echo "\${PORT_$name:-}")
  for try in 1 2 3 4 5; do
    [ -n "$port" ] || port=$(next_port)
    [ -f "$WORK/$name/custos.conf" ] && [ -z "$*" ] && grep -q "127.0.0.1:$port" "$WORK/$name/custos.conf" \
      || write_config "$name" "$port" "$@"
    local before=0
    [ -f "$WORK/$name.log" ] && before=$(wc -l < "$WORK/$name.log")
    "$CUSTOSD" --config "$WORK/$name/custos.conf" >>"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid PORT_$name=$port"
    local i
    for i in $(seq 1 600); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if tail -n "+$((before + 1))" "$WORK/$name.log" 2>/dev/null | grep -q "custosd listening on 127.0.0.1:$port"; then
        return 0
      fi
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -q "cannot listen" "$WORK/$name.log" || fail "custosd $name did not start"
    port=""
  done
  fail "custosd $name: no free port"
}

stop_server() { # NAME [SIGNAL]
  local pid; pid=$(eval echo "\$PID_$1")
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "custosd $1 did not stop"
  wait "$pid" 2>/dev/null || true
}

# cli NAME args...: the real CLI against server NAME (token from $TOKEN).
cli() {
  local name=$1; shift
  local port; port=$(eval echo "\$PORT_$name")
  CUSTOS_ADDR="127.0.0.1:$port" CUSTOS_CACERT="$WORK/tls/ca.crt" CUSTOS_TOKEN="${TOKEN:-}" \
    timeout 20 "$CUSTOS" ${CLI_EXTRA:-} "$@"
}

# json FIELD: a top-level scalar from a one-line JSON object on stdin.
json() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | head -n1 | tr -d '"'; }
# json_array FIELD: the string items of a top-level array, one per line.
json_array() { sed -n "s/.*\"$1\":\[\([^]]*\)\].*/\1/p" | tr ',' '\n' | tr -d '"' | sed '/^$/d'; }

expect_exit() { # CODE cmd...
  local want=$1; shift
  set +e; "$@" >"$WORK/out" 2>"$WORK/err"; local got=$?; set -e
  [ "$got" = "$want" ] || fail "expected exit $want, got $got: $* ($(cat "$WORK/err"))"
}
expect_err() { # SUBSTRING cmd...  (exit 1 and stderr contains substring)
  local want=$1; shift
  expect_exit 1 "$@"
  grep -q "^Error: " "$WORK/err" || fail "stderr lacks 'Error: ': $(cat "$WORK/err")"
  grep -qi -- "$want" "$WORK/err" || fail "expected error '$want', got: $(cat "$WORK/err")"
}

# init_server NAME [N T]: init, store the shares in $WORK/NAME.keys and the
# root token in TOKEN.
init_server() {
  local name=$1 n=${2:-5} t=${3:-3}
  cli "$name" operator init --key-shares "$n" --key-threshold "$t" --format json > "$WORK/$name.init" \
    || fail "init failed"
  json_array unseal_keys_hex < "$WORK/$name.init" > "$WORK/$name.keys"
  TOKEN=$(json root_token < "$WORK/$name.init")
  [ "$(wc -l < "$WORK/$name.keys")" = "$n" ] || fail "init returned the wrong number of keys"
  [ -n "$TOKEN" ] || fail "no root token"
}

key() { sed -n "$2p" "$WORK/$1.keys"; }   # key NAME INDEX(1-based)

unseal_with() { # NAME idx...
  local name=$1; shift
  local i
  for i in "$@"; do cli "$name" operator unseal "$(key "$name" "$i")" >/dev/null 2>&1 || true; done
  cli "$name" status >/dev/null 2>&1 || fail "$name still sealed after shares $*"
}

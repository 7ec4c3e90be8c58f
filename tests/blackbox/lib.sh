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
# retries with another one if the bind fails.  From 29000 (clear of the
# cluster tests' 21000-28999) up to the kernel's ephemeral range, where the
# source port of any connection a parallel test opens could already sit
# (a dev server once failed "address already in use" on 44786).
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${EPHEMERAL_LOW:-0}" -gt 30000 ] 2>/dev/null || EPHEMERAL_LOW=45000
next_port() { echo $(( 29000 + (RANDOM * 7 + $$) % (EPHEMERAL_LOW - 29000) )); }

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
    timeout "${CLI_TIMEOUT:-20}" "$CUSTOS" ${CLI_EXTRA:-} "$@"
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

# ---- raw frames: hand-built protobuf for inputs the CLI cannot produce
# (embedded NUL bytes, invalid UTF-8, more fields than the CLI takes,
# pipelined requests).  Everything is hex so NUL bytes survive bash.

pb_varint() { # N -> hex varint
  local n=$1 out=""
  while [ "$n" -ge 128 ]; do out+=$(printf '%02x' $(( (n & 127) | 128 ))); n=$(( n >> 7 )); done
  printf '%s%02x' "$out" "$n"
}
pb_hex() { printf '%s' "$1" | xxd -p | tr -d '\n'; }              # text -> hex
pb_bytes() { printf '%s%s%s' "$(pb_varint $(( ($1 << 3) | 2 )))" "$(pb_varint $(( ${#2} / 2 )))" "$2"; } # FIELD HEX
pb_str() { pb_bytes "$1" "$(pb_hex "$2")"; }                        # FIELD TEXT
pb_uint() { printf '%s%s' "$(pb_varint $(( $1 << 3 )))" "$(pb_varint "$2")"; } # FIELD N
# raw_request ID OP_FIELD OP_BODY_HEX: a Request with $TOKEN (if any).
raw_request() {
  local tok=""
  [ -n "${TOKEN:-}" ] && tok=$(pb_str 2 "$TOKEN")
  printf '%s%s%s' "$(pb_uint 1 "$1")" "$tok" "$(pb_bytes "$2" "$3")"
}
raw_frame() { printf '%08x%s' $(( ${#1} / 2 )) "$1"; }               # BODY_HEX -> frame hex

# raw_send NAME FRAME_HEX...: sends the frames in one write over TLS to
# server NAME and prints one line per response frame:
#   id=N code=C result=R message=TEXT
# The server must run with a short idle_timeout (it closes the connection
# once every response is out, which ends the read; no fixed sleeps).
raw_send() {
  local name=$1; shift
  local port; port=$(eval echo "\$PORT_$name")
  local hex
  hex=$(printf '%s' "$@" | xxd -r -p | timeout 30 openssl s_client -connect "127.0.0.1:$port" \
        -CAfile "$WORK/tls/ca.crt" -quiet 2>/dev/null | xxd -p | tr -d '\n' || true)
  while [ "${#hex}" -ge 8 ]; do
    local len=$(( 16#${hex:0:8} ))
    raw_decode "${hex:8:len*2}"
    hex=${hex:8+len*2}
  done
}

# pb_read HEX POS: the varint at hex offset POS into PB_V, the next offset into PB_POS.
pb_read() {
  local h=$1 p=$2 v=0 s=0 b
  while :; do
    b=$(( 16#${h:p:2} )); p=$(( p + 2 ))
    v=$(( v | ((b & 127) << s) )); s=$(( s + 7 ))
    [ "$b" -lt 128 ] && break
  done
  PB_V=$v PB_POS=$p
}
# raw_decode HEX: one Response body as "id=N code=C result=R message=TEXT".
raw_decode() {
  local h=$1 p=0 id=0 code=0 result=0 msg="" tag len sub q t2 l2
  while [ "$p" -lt "${#h}" ]; do
    pb_read "$h" "$p"; tag=$PB_V; p=$PB_POS
    case $(( tag & 7 )) in
      0) pb_read "$h" "$p"; p=$PB_POS; [ $(( tag >> 3 )) = 1 ] && id=$PB_V ;;
      2) pb_read "$h" "$p"; len=$PB_V; p=$PB_POS; sub=${h:p:len*2}; p=$(( p + len * 2 ))
         if [ $(( tag >> 3 )) = 2 ]; then
           q=0
           while [ "$q" -lt "${#sub}" ]; do
             pb_read "$sub" "$q"; t2=$PB_V; q=$PB_POS
             if [ $(( t2 & 7 )) = 0 ]; then
               pb_read "$sub" "$q"; q=$PB_POS; [ $(( t2 >> 3 )) = 1 ] && code=$PB_V
             else
               pb_read "$sub" "$q"; l2=$PB_V; q=$PB_POS
               [ $(( t2 >> 3 )) = 2 ] && msg=$(printf '%s' "${sub:q:l2*2}" | xxd -r -p | tr -c '[:print:]' '.')
               q=$(( q + l2 * 2 ))
             fi
           done
         else
           result=$(( tag >> 3 ))
         fi ;;
      *) echo "undecodable response"; return 0 ;;
    esac
  done
  echo "id=$id code=$code result=$result message=$msg"
}

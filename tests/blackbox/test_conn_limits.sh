#!/usr/bin/env bash
# Connection caps of the API listener (all over 127.0.0.0/8: openssl
# s_client -bind gives a second client address, 127.0.0.2):
#  - connections still in their TLS handshake are capped per address and in
#    total: an address holding its handshake slots with silent TCP
#    connections is refused more, while another address is served;
#  - the per-address cap defaults to a sixteenth of max_connections, so one
#    address cannot take every slot.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || fail "openssl missing"

# tls_from ADDR PORT: a TLS handshake from ADDR; prints what s_client said.
tls_from() {
  echo | timeout 10 openssl s_client -bind "$1:0" -connect "127.0.0.1:$2" \
    -CAfile "$WORK/tls/ca.crt" -verify_return_error -brief 2>&1 || true
}
established() { tls_from "$1" "$2" | grep -q "CONNECTION ESTABLISHED"; }
RAW=()
raw_open() { local fd; exec {fd}<>"/dev/tcp/127.0.0.1/$1"; RAW+=("$fd"); }
raw_close() { local fd; for fd in "${RAW[@]}"; do exec {fd}>&-; done; RAW=(); }
count_log() { grep -c -- "$2" "$WORK/$1.log" || true; }
served() { local out; out=$(cli "$1" status --format json 2>/dev/null || true); [[ $out == *'"initialized"'* ]]; }

# ---- handshakes per address -----------------------------------------------
LISTENER_EXTRA='max_connections = 160; max_handshakes_per_address = 2;' start_server a
P=$PORT_a
raw_open "$P"; raw_open "$P"        # two silent connections: no ClientHello
sleep 0.3
served a && fail "127.0.0.1 served a 3rd connection beside 2 silent ones in the handshake"
grep -q "limit of 2 connections in the TLS handshake per address reached" "$WORK/a.log" \
  || fail "no log line for the handshake cap"
established 127.0.0.2 "$P" || fail "another address was refused while 127.0.0.1 held its handshake slots"
pass "an address is capped at 2 connections in the handshake; another address is served"
raw_close
wait_ok() { local i; for i in $(seq 1 100); do served a && return 0; sleep 0.1; done; return 1; }
wait_ok || fail "127.0.0.1 still refused after its silent connections closed"
pass "the slots come back when the silent connections close"

# ---- per-address default: max_connections / 16 = 10 ---------------------------
HELD=()
for i in $(seq 1 10); do
  before=$(count_log a "TLS established")
  openssl s_client -connect "127.0.0.1:$P" -CAfile "$WORK/tls/ca.crt" -quiet </dev/null >/dev/null 2>&1 &
  HELD+=($!); PIDS+=($!)
  for j in $(seq 1 100); do [ "$(count_log a "TLS established")" -gt "$before" ] && break; sleep 0.05; done
done
sleep 0.3
served a && fail "127.0.0.1 served an 11th connection (default per-address cap 160/16 = 10)"
grep -q "limit of 10 connections per address reached" "$WORK/a.log" \
  || fail "no per-address refusal at the default of max_connections/16"
established 127.0.0.2 "$P" || fail "another address was refused while 127.0.0.1 held 10 connections"
pass "one address holds at most max_connections/16 = 10 of 160 connections; another is served"
for p in "${HELD[@]}"; do kill "$p" 2>/dev/null || true; done
stop_server a

# ---- handshakes in total ----------------------------------------------------
LISTENER_EXTRA='max_handshakes = 3; max_handshakes_per_address = 8;' start_server b
P=$PORT_b
raw_open "$P"; raw_open "$P"; raw_open "$P"
sleep 0.3
out=$(tls_from 127.0.0.2 "$P")
echo "$out" | grep -q "CONNECTION ESTABLISHED" && fail "a 4th handshake was accepted over max_handshakes = 3"
grep -q "limit of 3 connections in the TLS handshake reached" "$WORK/b.log" \
  || fail "no log line for the total handshake cap"
raw_close
for i in $(seq 1 100); do established 127.0.0.2 "$P" && break; sleep 0.1; done
established 127.0.0.2 "$P" || fail "handshakes still refused after the silent connections closed"
pass "at most max_handshakes = 3 connections in the handshake in total"
kill -0 "$PID_b" || fail "server died"

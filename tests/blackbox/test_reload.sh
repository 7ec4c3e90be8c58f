#!/usr/bin/env bash
# SIGHUP reloads the API listener's certificate and key: the served
# certificate's serial changes without a restart, a connection opened
# before the reload goes on, and a bad new certificate (missing file,
# garbage, key not matching) is refused with a log line while the old one
# is still served.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "SKIPPED: openssl not installed" >&2; exit 77; }

wait_log() { # PATTERN: waits until the log has one more line matching it than before
  local want=$(( $(grep -c -- "$1" "$WORK/a.log" || true) + 1 )) k
  kill -HUP "$PID_a"
  for k in $(seq 1 100); do
    [ "$(grep -c -- "$1" "$WORK/a.log" || true)" -ge "$want" ] && return 0
    sleep 0.05
  done
  fail "no '$1' in the log after SIGHUP"
}
serial() {
  openssl s_client -connect "127.0.0.1:$PORT_a" -showcerts </dev/null 2>/dev/null \
    | openssl x509 -noout -serial
}

start_server a
s1=$(serial)
[ -n "$s1" ] || fail "no certificate served"
# An open connection across the reload (it must go on on the old config).
( sleep 4 ) | openssl s_client -connect "127.0.0.1:$PORT_a" >"$WORK/long.out" 2>&1 &
LONG=$!; PIDS+=("$LONG")
sleep 0.5

sh "$ROOT_DIR/deploy/gen-certs.sh" "$WORK/tls" >/dev/null 2>&1 || fail "reissuing the certificate"
wait_log "TLS certificate and key reloaded"
s2=$(serial)
[ -n "$s2" ] && [ "$s2" != "$s1" ] || fail "served serial after SIGHUP: '$s2' (before: '$s1')"
cli a status >/dev/null 2>&1 || [ $? = 2 ] || fail "the CLI cannot talk to the server after the reload"
kill -0 "$PID_a" || fail "server died"
pass "SIGHUP: served certificate $s1 -> $s2 without a restart"
wait "$LONG" 2>/dev/null || true
grep -q "BEGIN CERTIFICATE\|Server certificate" "$WORK/long.out" || fail "connection opened before the reload failed"
pass "a connection opened before the reload was served"

cp "$WORK/tls/server.crt" "$WORK/good.crt"; cp "$WORK/tls/server.key" "$WORK/good.key"
# Garbage certificate.
echo "not a certificate" > "$WORK/tls/server.crt"
wait_log "new TLS certificate refused"
[ "$(serial)" = "$s2" ] || fail "garbage certificate: serial now $(serial)"
pass "garbage certificate refused, old one served: $(grep 'refused' "$WORK/a.log" | tail -1 | cut -c1-160)"
# Missing certificate.
rm -f "$WORK/tls/server.crt"
wait_log "new TLS certificate refused"
[ "$(serial)" = "$s2" ] || fail "missing certificate: serial now $(serial)"
pass "missing certificate refused, old one served"
# Key that does not match the certificate.
cp "$WORK/good.crt" "$WORK/tls/server.crt"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/tls/server.key" 2>/dev/null
wait_log "does not match"
[ "$(serial)" = "$s2" ] || fail "mismatched key: serial now $(serial)"
pass "key not matching the certificate refused, old one served"
# Good again.
cp "$WORK/good.key" "$WORK/tls/server.key"
wait_log "TLS certificate and key reloaded"
[ "$(serial)" = "$s2" ] || fail "after restoring: serial $(serial)"
cli a status >/dev/null 2>&1 || [ $? = 2 ] || fail "CLI after restoring"
kill -0 "$PID_a" || fail "server died"
pass "valid pair again: reloaded, still serving"

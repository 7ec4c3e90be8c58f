#!/usr/bin/env bash
# Hostile input: garbage, oversized, truncated and malformed frames, a
# non-TLS client, a stalled handshake.  Each gets a clear error or a close,
# never a crash or a hang, and the server serves the next client.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl missing"
start_server a
init_server a 1 1
cli a operator unseal "$(key a 1)" >/dev/null
PORT=$PORT_a

# tls_send BYTES(printf format): send over a real TLS connection, print what
# came back (the protobuf error message is readable text inside).
tls_send() {
  { printf "$1"; sleep 1; } | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
      -CAfile "$WORK/tls/ca.crt" -quiet 2>/dev/null | tr -c '[:print:]' '.' || true
}
alive() { cli a status >/dev/null || fail "server not serving after: $1"; kill -0 "$PID_a" || fail "server died after: $1"; }

# An HTTP request is the HTTP API's now (docs/http-api.md); other garbage
# is still read as a frame length.
out=$(tls_send 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
echo "$out" | grep -q '^HTTP/1.1 404 .*{"errors":\[\]}' || fail "HTTP request: no HTTP answer ($out)"
out=$(tls_send 'get / http/1.1\r\nHost: x\r\n\r\n')
echo "$out" | grep -q "exceeds the limit" || fail "garbage: no frame-limit error ($out)"
alive "garbage"; pass "garbage bytes over TLS: error, close (an HTTP request: an HTTP answer)"

out=$(tls_send '\x00\x10\x00\x01')
echo "$out" | grep -q "exceeds the limit" || fail "oversized frame: no error ($out)"
alive "oversized frame"; pass "frame over the pre-auth limit refused before reading it"

out=$(tls_send '\x00\x00\x00\x20\x08\x01\x12')
alive "truncated frame"; pass "truncated frame then close"

out=$(tls_send '\x00\x00\x00\x06\xff\xff\xff\xff\xff\xff')
echo "$out" | grep -q "not a valid protobuf" || fail "garbage protobuf: no error ($out)"
alive "garbage protobuf"; pass "valid frame, garbage protobuf: bad request"

out=$(tls_send '\x00\x00\x00\x00')
echo "$out" | grep -q "no operation" || fail "empty frame: no error ($out)"
alive "empty frame"; pass "empty frame: bad request"

# A request with an unknown oneof field number is a request with no op.
out=$(tls_send '\x00\x00\x00\x04\xfa\x3f\x00\x00')
alive "unknown field"; pass "unknown fields"

# Non-TLS client: plain bytes to the TLS port.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'hello, this is not TLS\r\n\r\n' >&3
timeout 5 cat <&3 >/dev/null || true
exec 3>&- 3<&-
alive "non-TLS client"; pass "non-TLS client refused"

# Stalled handshake: connect, send nothing; closed after handshake_timeout (2 s).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
start=$(date +%s)
timeout 10 cat <&3 >/dev/null || true
took=$(( $(date +%s) - start ))
exec 3>&- 3<&-
[ "$took" -le 8 ] || fail "stalled handshake held for ${took}s"
alive "stalled handshake"; pass "stalled handshake closed after ${took}s"

# Half a TLS record, then silence.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf '\x16\x03\x01\x02\x00\x01' >&3
timeout 10 cat <&3 >/dev/null || true
exec 3>&- 3<&-
alive "partial TLS record"; pass "partial TLS record then silence"

# Many hostile connections at once, then a normal client.
for i in $(seq 1 30); do (tls_send '\xff\xff\xff\xff' >/dev/null &) ; done
for i in $(seq 1 30); do (printf 'junk' | timeout 3 bash -c "cat > /dev/tcp/127.0.0.1/$PORT" 2>/dev/null &) ; done
sleep 2
alive "a burst of hostile clients"
cli a kv put after/burst v=1 >/dev/null && [ "$(cli a kv get after/burst --field v)" = 1 ] || fail "kv after burst"
pass "a burst of 60 hostile connections, then normal service"

grep -q "exceeds the limit\|too large\|oversized" "$WORK/a.log" || fail "no log line for an oversized frame"
grep -qi "handshake" "$WORK/a.log" || fail "no log line for handshake failures"
pass "hostile input is logged"

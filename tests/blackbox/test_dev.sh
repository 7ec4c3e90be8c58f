#!/usr/bin/env bash
# custosd --dev: fresh data directory, self-signed certificate, one share,
# initialized and unsealed, and it prints what a user needs.
. "$(dirname "$0")/lib.sh"

port=$(next_port)
"$CUSTOSD" --dev --dev-listen "127.0.0.1:$port" > "$WORK/dev.out" 2> "$WORK/dev.log" &
PIDS+=($!); pid=$!
for i in $(seq 1 100); do grep -q "CUSTOS_TOKEN" "$WORK/dev.out" 2>/dev/null && break; sleep 0.05; done
grep -q "^ *export CUSTOS_ADDR=127.0.0.1:$port$" "$WORK/dev.out" || fail "no CUSTOS_ADDR line: $(cat "$WORK/dev.out")"
grep -q "Unseal Key: " "$WORK/dev.out" || fail "no unseal key printed"
eval "$(grep 'export CUSTOS_' "$WORK/dev.out")"
[ -f "$CUSTOS_CACERT" ] || fail "CA cert file missing"
openssl x509 -in "$CUSTOS_CACERT" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:127.0.0.1" \
  || fail "dev certificate lacks IP SAN 127.0.0.1"
timeout 10 "$CUSTOS" status >/dev/null || fail "dev server not unsealed"
timeout 10 "$CUSTOS" kv put dev/x v=1 >/dev/null || fail "kv put on dev server"
[ "$(timeout 10 "$CUSTOS" kv get dev/x --field v)" = 1 ] || fail "kv get on dev server"
CUSTOS_ADDR="localhost:$port" timeout 10 "$CUSTOS" status >/dev/null || fail "DNS SAN localhost"
pass "dev server: exports work, IP and DNS SANs verify"
# The unseal key works after a seal.
ukey=$(sed -n 's/^Unseal Key: //p' "$WORK/dev.out")
timeout 10 "$CUSTOS" operator seal >/dev/null
set +e; timeout 10 "$CUSTOS" status >/dev/null; rc=$?; set -e
[ "$rc" = 2 ] || fail "status after seal should exit 2, got $rc"
timeout 10 "$CUSTOS" operator unseal "$ukey" >/dev/null || fail "unseal with the printed key"
pass "seal and unseal with the printed key"
kill -TERM "$pid"; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "dev server ignored SIGTERM"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" = 0 ] || fail "dev server exit code $rc after SIGTERM"
datadir=$(sed -n 's/^Data directory: \([^ ]*\).*/\1/p' "$WORK/dev.out"); rm -rf "$datadir"
pass "SIGTERM: exit 0"

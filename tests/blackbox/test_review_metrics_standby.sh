#!/usr/bin/env bash
# Review finding (session 4): a standby answered GET /v1/sys/metrics (and
# the protobuf metrics op) with a redirect to the active, like a data
# request.  Prometheus follows redirects by default, so every standby was
# scraped as the active: a standby that sealed itself (or was restarted
# and never unsealed) still showed custos_sealed 0 and
# custos_ha_mode{mode="active"}, and no standby's own raft view could be
# seen.  Telemetry is per node: every member answers it itself, sealed or
# not (unauthenticated when configured; with a token, checked as
# anywhere: on a sealed node that is the sealed error, as standalone).
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50}
SEAL_EXTRA='telemetry = { unauthenticated_metrics_access = true; };'
. "$(dirname "$0")/cluster_lib.sh"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json 2>/dev/null | sed -n 's/.*\"active_address\":\"\([^\"]*\)\".*/\1/p')\" != '' ]" \
  || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
S=1; [ "$S" = "$A" ] && S=2
C="curl -sS --max-time 10 --cacert $WORK/ctls/ca.crt"
code() { $C -o "$WORK/b" -w '%{http_code}' "$@"; }
UA="https://127.0.0.1:$(api_port "$A")" US="https://127.0.0.1:$(api_port "$S")"

[ "$(code "$UA/v1/sys/metrics")" = 200 ] || fail "active metrics: $(cat "$WORK/b")"
grep -q '^custos_ha_mode{mode="active"} 1$' "$WORK/b" || fail "active's mode: $(grep ha_mode "$WORK/b")"
[ "$(code "$US/v1/sys/metrics")" = 200 ] || fail "standby metrics (no token): $(cat "$WORK/b")"
grep -q '^custos_ha_mode{mode="standby"} 1$' "$WORK/b" || fail "standby's mode: $(grep ha_mode "$WORK/b")"
grep -q '^custos_sealed 0$' "$WORK/b" || fail "unsealed standby's seal gauge"
[ "$(code -H "X-Vault-Token: $TOKEN" "$US/v1/sys/metrics")" = 200 ] || fail "standby metrics (token): $(cat "$WORK/b")"
grep -q '^custos_ha_mode{mode="standby"} 1$' "$WORK/b" || fail "standby's mode with a token"
[ "$(code -H "X-Vault-Token: not-a-token" "$US/v1/sys/metrics")" = 403 ] || fail "bad token on a standby: $(cat "$WORK/b")"
pass "a standby serves its own metrics (no token, a token; a bad token refused)"

# A standby restarted (so sealed): its own gauge says so, and it is not
# redirected to the active's view.
stop_node "$S"
start_node "$S"
[ "$(code "$US/v1/sys/metrics")" = 200 ] || fail "sealed standby metrics: $(cat "$WORK/b")"
grep -q '^custos_sealed 1$' "$WORK/b" || fail "sealed standby reports: $(grep custos_sealed "$WORK/b")"
# Data requests are still redirected.
[ "$(code -H "X-Vault-Token: $TOKEN" "$US/v1/secret/x")" != 200 ] || fail "a sealed standby served data"
unseal_node "$S" 1 2
pass "a sealed standby reports custos_sealed 1 itself"

grep -i "sanitizer\|runtime error" "$WORK"/n*.log && fail "sanitizer report"
pass "no sanitizer report"

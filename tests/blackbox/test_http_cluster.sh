#!/usr/bin/env bash
# The HTTP API on a 3-node cluster: a standby's sys/health is 429 (200 with
# standbyok, standbycode overrides), sys/leader names the active, and a
# standby answers requests it does not serve with a 307 to the active's API
# address, which curl -L follows; sys/storage/raft/configuration.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50}
. "$(dirname "$0")/cluster_lib.sh"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json 2>/dev/null | sed -n 's/.*\"active_address\":\"\([^\"]*\)\".*/\1/p')\" != '' ]" \
  || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
S=1; [ "$S" = "$A" ] && S=2
pass "cluster up: n$A active, n$S a standby"

C="curl -sS --cacert $WORK/ctls/ca.crt"
code() { $C -o "$WORK/b" -D "$WORK/h" -w '%{http_code}' "$@"; }
UA="https://127.0.0.1:$(api_port "$A")" US="https://127.0.0.1:$(api_port "$S")"
[ "$(code "$UA/v1/sys/health")" = 200 ] || fail "active health: $(cat "$WORK/b")"
[ "$(code "$US/v1/sys/health")" = 429 ] || fail "standby health: $(cat "$WORK/b")"
grep -q '"standby":true' "$WORK/b" || fail "standby body: $(cat "$WORK/b")"
[ "$(code "$US/v1/sys/health?standbyok=true")" = 200 ] || fail "standbyok"
[ "$(code "$US/v1/sys/health?standbycode=472")" = 472 ] || fail "standbycode"
pass "health: active 200, standby 429, standbyok 200, standbycode"

$C "$US/v1/sys/leader" | grep -q "\"is_self\":false.*\"leader_address\":\"https://127.0.0.1:$(api_port "$A")\"" \
  || fail "standby leader: $($C "$US/v1/sys/leader")"
$C "$UA/v1/sys/leader" | grep -q '"ha_enabled":true,"is_self":true' || fail "active leader"
pass "sys/leader on both"

[ "$(code -X PUT -H "X-Vault-Token: $TOKEN" -d '{"v":"1"}' "$UA/v1/secret/app/x")" = 204 ] || fail "put on active"
[ "$(code -H "X-Vault-Token: $TOKEN" "$US/v1/secret/app/x?a=b")" = 307 ] || fail "standby get: $(cat "$WORK/b")"
loc=$(tr -d '\r' < "$WORK/h" | sed -n 's/^Location: //p')
[ "$loc" = "$UA/v1/secret/app/x?a=b" ] || fail "Location: $loc"
$C -L -H "X-Vault-Token: $TOKEN" "$US/v1/secret/app/x" | grep -q '"data":{"v":"1"}' || fail "curl -L through the 307"
pass "a standby redirects (307, Location on the active, query kept); curl -L follows"

b=$($C -H "X-Vault-Token: $TOKEN" "$UA/v1/sys/storage/raft/configuration")
[ "$(echo "$b" | grep -o '"node_id"' | wc -l)" = 3 ] && [ "$(echo "$b" | grep -o '"leader":true' | wc -l)" = 1 ] \
  || fail "raft configuration: $b"
[ "$(code "$UA/v1/sys/storage/raft/configuration")" = 403 ] || fail "raft configuration without a token"
pass "sys/storage/raft/configuration: 3 servers, one leader; 403 without a token"

#!/usr/bin/env bash
# A standby that misses an upgrade window seals itself with a clear log
# line, never crashes and never serves with a stale keyring; unsealed again
# it loads the whole keyring from its replica and follows.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50 AUDIT=1
# The frozen standby holds the staged term back for 2 s, then it activates
# without it and its upgrade key goes.
SEAL_EXTRA='seal = { upgrade_key_ttl = "2s"; max_activation_delay = "2s"; };'
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
S=$(( A % 3 + 1 ))
ncli "$A" kv put before/miss v=1 >/dev/null

# Freeze the standby (it keeps its unsealed keyring at term 1) while the
# active rotates and the upgrade key expires.
kill -STOP "$(eval echo "\$NPID_$S")"
ncli "$A" operator rotate >/dev/null || fail "rotate with one standby frozen"
ncli "$A" kv put after/miss v=2 >/dev/null
wait_for 15 sh -c "! mdb_dump -s data -p '$WORK/n$A/data' 2>/dev/null | grep -q 'core/upgrade/'" \
  || fail "the upgrade key did not expire"
kill -CONT "$(eval echo "\$NPID_$S")"

wait_for 15 grep -q "missed the keyring upgrade to term 2" "$WORK/n$S.log" \
  || fail "standby n$S did not report the missed upgrade"
grep -q "unseal this node again" "$WORK/n$S.log" || fail "log line does not tell operators what to do"
kill -0 "$(eval echo "\$NPID_$S")" || fail "standby crashed"
out=$(node_status "$S")
echo "$out" | grep -q '"sealed":true' || fail "standby still unsealed with a stale keyring: $out"
pass "a standby that missed the upgrade window sealed itself, with a clear log line"

# Sealing itself ran the same teardown as every seal (issue 10, finding 10):
# the audit HMAC key is gone, so the share submitted next is logged as
# "unavailable", not hashed with a key the sealed node should not hold.
ncli "$S" operator unseal "$(ckey 1)" >/dev/null 2>&1 || true
last=$(grep '"type":"request".*"operation":"unseal"' "$WORK/n$S/audit.log" | tail -n 1)
[ -n "$last" ] || fail "the unseal request is not in n$S's audit log"
echo "$last" | grep -q '"hmac-sha256:unavailable"' \
  || fail "self-sealed n$S still hashes with its audit key: $last"
echo "$last" | grep -q 'hmac-sha256:[0-9a-f]\{64\}' && fail "self-sealed n$S logged a keyed hash: $last"
pass "self-seal wiped the audit HMAC key like a seal request does"

unseal_node "$S" 1 2
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port "$S") CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"term\":2'" \
  || fail "unsealed again, n$S does not report term 2: $(node_status "$S")"
# It can take over and decrypt both terms.
stop_node "$A" KILL
A2=$(active_node 15) || fail "no active after the kill"
[ "$(ncli "$A2" kv get before/miss --field v)" = 1 ] && [ "$(ncli "$A2" kv get after/miss --field v)" = 2 ] \
  || fail "data of both terms not readable on the new active n$A2"
pass "unsealed again it follows the cluster and can take over (n$A2 active, both terms readable)"

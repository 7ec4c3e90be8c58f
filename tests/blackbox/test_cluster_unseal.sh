#!/usr/bin/env bash
# One unseal ceremony for a whole cluster (`operator unseal --cluster`): a
# 3-node cluster restarted in full is unsealed by one set of shares given to
# ONE node, which relays each share over the cluster's mutual TLS to the
# other members; each member combines on its own (its own nonce and
# progress).  Also: a member that is not sealed ignores a relayed share; a
# share of another key set is refused and relays nothing; a member relaying
# garbage, a share of another key set or a share under another node's name
# (cluster_probe holding a member's certificate), and a non-member relaying
# a real share (n9: cluster CA, no member) are refused and advance nothing;
# a share sent to a node directly and relayed to it at the same moment
# counts once; and with cluster.relay_unseal = false a node neither relays
# nor accepts relayed shares.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"
PROBE=${CLUSTER_PROBE:?set CLUSTER_PROBE to the cluster_probe binary}

cd "$WORK"
probe_as() { local n=$1; shift; timeout 30 "$PROBE" --ca "$WORK/ctls/ca.crt" --cert "$WORK/ctls/$n.crt" --key "$WORK/ctls/$n.key" "$@"; }
raft_addr() { echo "127.0.0.1:$(raft_port "$1")"; }
progress() { node_status "$1" | json progress; }
all_sealed() { for i in 1 2 3; do [ "$(node_status "$i" | json sealed)" = true ] || return 1; done; }
restart_all() {
  for i in 1 2 3; do stop_node "$i"; done
  for i in 1 2 3; do start_node "$i"; done
  for i in 1 2 3; do wait_for 10 is_initialized "$i" || fail "n$i not initialized after restart"; done
  all_sealed || fail "a node is unsealed right after a full restart"
}

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
ncli 1 kv put app/x v=1 >/dev/null || fail "kv put"
pass "3-node cluster initialized (3 shares, threshold 2) and unsealed"

# ---- full restart; one set of shares to one node -------------------------------
restart_all
ncli 2 operator unseal --cluster "$(ckey 1)" --format json > r1.json || [ $? = 2 ] || fail "unseal --cluster 1: $(cat r1.json)"
grep -q '"node_id":"n1"' r1.json && grep -q '"node_id":"n3"' r1.json || fail "relayed list: $(cat r1.json)"
for i in 1 2 3; do [ "$(progress "$i")" = 1 ] || fail "n$i progress $(progress "$i") after one relayed share"; done
# Nonces are per node: each member runs its own unseal.
n1=$(node_status 1 | json nonce); n3=$(node_status 3 | json nonce)
[ -n "$n1" ] && [ "$n1" != "$n3" ] || fail "nonces n1=$n1 n3=$n3"
ncli 2 operator unseal --cluster "$(ckey 3)" > r2.txt || fail "unseal --cluster 2"
grep -q "Relayed to n1: unsealed" r2.txt && grep -q "Relayed to n3: unsealed" r2.txt || fail "table output: $(cat r2.txt)"
for i in 1 2 3; do wait_for 5 is_unsealed "$i" || fail "n$i sealed after the cluster ceremony"; done
A=$(active_node 10) || fail "no active after the cluster unseal"
[ "$(ncli "$A" kv get app/x --field v)" = 1 ] || fail "data after the cluster unseal"
grep -q "unsealed by a share relayed by node n2" "$WORK/n1.log" || fail "n1 did not log the relayed unseal"
for i in 1 2 3; do grep -qF "$(ckey 1)" "$WORK/n$i.log" && fail "a share reached n$i's log"; done
pass "full restart: 2 shares given to n2 with --cluster unseal all 3 nodes (own nonce, own progress per node)"

# ---- unsealed members ignore; a bad share relays nothing -----------------------
ncli 1 operator unseal --cluster "$(ckey 2)" --format json > r3.json || fail "unseal --cluster on unsealed nodes"
grep -q '"sealed":true' r3.json && fail "a relayed share to unsealed members: $(cat r3.json)"
bad=$(ckey 1 | sed 's/^./f/; s/^ff/0f/')
[ "$bad" != "$(ckey 1)" ] || bad=$(ckey 1 | sed 's/^./0/')
# An unsealed node does not look at an unseal share, but relays only one of the key set.
before=$(grep -c "relayed to" "$WORK/n1.log" || true)
expect_err "not part of the current key set" ncli 1 operator unseal --cluster "$bad"
expect_err "must be 33 bytes" ncli 1 operator unseal --cluster 00ff
[ "$(grep -c "relayed to" "$WORK/n1.log" || true)" = "$before" ] || fail "an unsealed node relayed a bad share"
restart_all
expect_err "not part of the current key set" ncli 2 operator unseal --cluster "$bad"
for i in 1 2 3; do [ "$(progress "$i")" = 0 ] || fail "a refused share advanced n$i"; done
pass "unsealed members ignore a relayed share; a share not in the key set is refused and relays nothing"

# ---- hostile relays over the side channel -------------------------------------
# n1's own certificate (a member) relaying garbage, a foreign share, and a
# share in n3's name; n9 (cluster CA, not a member) relaying a real share.
out=$(probe_as n1 unseal "$(raft_addr 2)" n1 00ff00ff)
echo "$out" | grep -q "error=.*share must be" || fail "garbage share: $out"
out=$(probe_as n1 unseal "$(raft_addr 2)" n1 "$(printf 'ab%.0s' $(seq 1 33))")
echo "$out" | grep -q "error=share is not part of the current key set" || fail "foreign share: $out"
out=$(probe_as n1 unseal "$(raft_addr 2)" n3 "$(ckey 1)")
echo "$out" | grep -q "refused: node_id is not the node of your certificate" || fail "share in another's name: $out"
out=$(probe_as n9 unseal "$(raft_addr 2)" n9 "$(ckey 1)")
echo "$out" | grep -q "refused: not a member" || fail "non-member relay: $out"
out=$(probe_as n1 legacy "$(raft_addr 2)" "$(printf '\x92\x09\x05garbage')")
[ "$(progress 2)" = 0 ] || fail "a hostile relay advanced n2: progress $(progress 2)"
ncli 2 status >/dev/null 2>&1 || [ $? = 2 ] || fail "n2 died"
# A member's real share, relayed by a member (what a real relay is) counts.
out=$(probe_as n1 unseal "$(raft_addr 2)" n1 "$(ckey 1)")
echo "$out" | grep -q "reply unseal node=n2 sealed=1 progress=1/2 error=$" || fail "member relay: $out"
pass "hostile relays (garbage, a foreign share, another node's name, a non-member) refused, progress untouched; a member's relay counts"

# ---- a relay racing a direct unseal -------------------------------------------
restart_all
( ncli 3 operator unseal "$(ckey 2)" >/dev/null 2>&1 || true ) &
p1=$!
( ncli 1 operator unseal --cluster "$(ckey 2)" >/dev/null 2>&1 || true ) &
p2=$!
wait "$p1" "$p2"
[ "$(progress 3)" = 1 ] || fail "the same share direct and relayed: n3 progress $(progress 3)"
ncli 1 operator unseal --cluster "$(ckey 3)" >/dev/null || fail "second share"
for i in 1 2 3; do wait_for 5 is_unsealed "$i" || fail "n$i sealed after the race round"; done
pass "the same share sent to n3 directly and relayed to it at once counts once; the next share unseals every node"

# Two holders at the same instant, to the same node: both relays run.
restart_all
rc1=0; rc2=0
ncli 1 operator unseal --cluster "$(ckey 1)" >c1.out 2>&1 & q1=$!
ncli 1 operator unseal --cluster "$(ckey 3)" >c2.out 2>&1 & q2=$!
wait "$q1" || rc1=$?
wait "$q2" || rc2=$?
[ "$rc1" != 1 ] && [ "$rc1" != 3 ] && [ "$rc2" != 1 ] && [ "$rc2" != 3 ] || fail "concurrent relays: $rc1 $rc2: $(cat c1.out c2.out)"
for i in 1 2 3; do wait_for 5 is_unsealed "$i" || fail "n$i sealed after two concurrent --cluster shares"; done
pass "two holders relaying through one node at the same instant: both relays run, every node unseals"

# ---- over HTTP: sys/unseal with "cluster": true --------------------------------
if command -v curl >/dev/null; then
  restart_all
  hu() { curl -sS --cacert "$WORK/ctls/ca.crt" -X PUT -d "$2" "https://127.0.0.1:$(api_port "$1")/v1/sys/unseal"; }
  out=$(hu 1 "{\"key\":\"$(ckey 1)\",\"cluster\":true}")
  echo "$out" | grep -q '"relayed":\[{"node_id":"n2","delivered":true,"sealed":true,"progress":1' || fail "HTTP cluster unseal: $out"
  out=$(hu 1 "{\"key\":\"$(ckey 2)\",\"cluster\":true}")
  for i in 1 2 3; do wait_for 5 is_unsealed "$i" || fail "n$i sealed after the HTTP cluster unseal: $out"; done
  pass "HTTP PUT sys/unseal {\"cluster\":true}: the same relay, 'relayed' in the answer"
fi

# ---- relay disabled -------------------------------------------------------------
for i in 1 2 3; do stop_node "$i"; done
write_node_config 1 "relay_unseal = false;"
write_node_config 2 "relay_unseal = false;"
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_for 10 is_initialized "$i" || fail "n$i not initialized"; done
expect_err "relay is disabled\|relay_unseal is off" ncli 1 operator unseal --cluster "$(ckey 1)"
[ "$(progress 1)" = 0 ] || fail "n1 counted a share it refused to relay"
ncli 3 operator unseal --cluster "$(ckey 1)" --format json > r4.json || [ $? = 2 ] || fail "unseal --cluster via n3"
grep -q 'relay_unseal is off on node n2' r4.json || fail "n2 accepted a relayed share: $(cat r4.json)"
[ "$(progress 2)" = 0 ] || fail "n2 (relay off) progress $(progress 2)"
[ "$(progress 3)" = 1 ] || fail "n3 progress $(progress 3)"
pass "cluster.relay_unseal = false: the node refuses to relay (nothing counted) and ignores relayed shares"

# ---- a member that is down ------------------------------------------------------
stop_node 1
ncli 3 operator unseal --cluster "$(ckey 2)" --format json > r5.json || [ $? = 2 ] || fail "unseal --cluster with n1 down"
python3 - "$WORK/r5.json" <<'PY' || fail "relayed entry for the stopped n1: $(cat "$WORK/r5.json")"
import json, sys
d = json.load(open(sys.argv[1]))
e = [r for r in d["relayed"] if r["node_id"] == "n1"]
assert e and not e[0]["delivered"] and e[0]["error"].startswith("not delivered"), e
PY
wait_for 5 is_unsealed 3 || fail "n3 sealed after its second share"
pass "a member that is down is reported 'not delivered'; the others go on"

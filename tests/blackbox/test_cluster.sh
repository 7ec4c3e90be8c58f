#!/usr/bin/env bash
# A 3-node cluster on 127.0.0.1 with real certificates: formation, init
# through a standby (redirect), unseal of every node, writes through each
# node, replication (read back after the active is killed), standbys
# following 3 rotations and a rekey, kill -9 of the active during a write
# loop (no acknowledged write lost), a node down during rotations and a
# rekey catching up (snapshot) and unsealing with the NEW shares, and a node
# with a certificate from another CA refused.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50}
SNAP_THRESHOLD=32 SNAP_TRAILING=8
# Rotations with a member down wait this long for it (staged activation).
SEAL_EXTRA='seal = { max_activation_delay = "2s"; };'
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
A=$(active_node 10) || true
wait_for 10 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json 2>/dev/null | sed -n 's/.*\"active_address\":\"\([^\"]*\)\".*/\1/p')\" != '' ]" \
  || fail "no leader elected"
pass "3 nodes formed a cluster (mutual TLS) and elected a leader"

# Init through node 3 whether or not it leads: a standby redirects.
init_cluster 3 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node after unseal"
modes=$(for i in 1 2 3; do ha_mode "$i"; done | sort | tr '\n' ' ')
[ "$modes" = "active standby standby " ] || fail "ha modes: $modes"
pass "init on one node, every node unsealed with the same shares; one active (n$A), two standbys"

for i in 1 2 3; do ncli "$i" kv put "app/via$i" v="$i" >/dev/null || fail "put through n$i"; done
for i in 1 2 3; do for j in 1 2 3; do
  [ "$(ncli "$i" kv get "app/via$j" --field v)" = "$j" ] || fail "read app/via$j through n$i"
done; done
pass "writes through each node (redirects), read back through every node"

# Rotations and a rekey on the active: standbys follow within a few polls.
for r in 1 2 3; do rotate_wait "$A" || fail "rotate $r"; ncli "$A" kv put "rot/$r" v="$r" >/dev/null; done
out=$(ncli "$A" operator rekey --init --key-shares 3 --key-threshold 2 --format json)
nonce=$(echo "$out" | json nonce)
ncli "$A" operator rekey --nonce "$nonce" "$(ckey 1)" >/dev/null
ncli "$A" operator rekey --nonce "$nonce" "$(ckey 2)" --format json > "$WORK/rekey"
[ "$(json complete < "$WORK/rekey")" = true ] || fail "rekey: $(cat "$WORK/rekey")"
json_array keys_hex < "$WORK/rekey" > "$WORK/new.keys"
term_of() { node_status "$1" | json term; }
for i in 1 2 3; do
  wait_for 5 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port "$i") CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | sed -n 's/.*\"term\":\([0-9]*\).*/\1/p')\" = 4 ]" \
    || fail "n$i reports term $(term_of "$i"), expected 4"
done
pass "3 rotations + rekey on the active: every standby reports term 4 within a few poll intervals"
# Every member acknowledged term 4: the active deletes the upgrade keys long
# before their 2-minute expiry.
if command -v mdb_dump >/dev/null; then
  wait_for 10 sh -c "! mdb_dump -s data -p '$WORK/n$A/data' 2>/dev/null | grep -q 'core/upgrade/'" \
    || fail "upgrade keys still present after every member acknowledged the new term"
  pass "upgrade keys deleted once every member acknowledged the new term"
fi

# The old active goes away: a standby takes over and decrypts everything.
OLD=$A
stop_node "$A" KILL
t0=$(date +%s%N)
A=$(active_node 10) || fail "no new active after kill -9 of n$OLD"
t1=$(date +%s%N)
echo "# failover (detected by status polling): $(( (t1 - t0) / 1000000 )) ms"
for j in 1 2 3; do [ "$(ncli "$A" kv get "app/via$j" --field v)" = "$j" ] || fail "new active: app/via$j"; done
for r in 1 2 3; do [ "$(ncli "$A" kv get "rot/$r" --field v)" = "$r" ] || fail "new active: rot/$r"; done
ncli "$A" kv put after/failover v=1 >/dev/null || fail "write on the new active"
pass "kill -9 of the active: n$A became active and decrypts every term's data"

# The old node rejoins: sealed, unsealed with the NEW shares, follows.
start_node "$OLD"
KEYFILE=new.keys unseal_node "$OLD" 1 2
[ "$(ha_mode "$OLD")" = standby ] || fail "rejoined n$OLD is $(ha_mode "$OLD")"
pass "old active rejoined and unsealed with the new shares as a standby"

# kill -9 of the active during a write loop: no acknowledged write lost.
: > "$WORK/acked"
writer() {
  local n=0
  while [ ! -f "$WORK/stop" ]; do
    n=$((n + 1))
    for i in 1 2 3; do
      if ncli "$i" kv put "loop/$n" v="$n" >/dev/null 2>&1; then echo "$n" >> "$WORK/acked"; break; fi
    done
  done
}
writer & WPID=$!
PIDS+=("$WPID")
for round in 1 2; do
  sleep 1.5
  K=$(active_node 10) || fail "no active in round $round"
  stop_node "$K" KILL
  sleep 0.5
  start_node "$K"
  KEYFILE=new.keys unseal_node "$K" 1 2
done
sleep 1.5
touch "$WORK/stop"; wait "$WPID" 2>/dev/null || true
A=$(active_node 10) || fail "no active after the kill loop"
n=$(wc -l < "$WORK/acked")
[ "$n" -gt 10 ] || fail "only $n writes acknowledged"
lost=0
while read -r k; do
  [ "$(ncli "$A" kv get "loop/$k" --field v 2>/dev/null)" = "$k" ] || { lost=$((lost + 1)); echo "lost loop/$k" >&2; }
done < "$WORK/acked"
[ "$lost" = 0 ] || fail "$lost of $n acknowledged writes lost"
pass "kill -9 of the active twice during a write loop: $n acknowledged writes, none lost"

# A node down during rotations and a rekey catches up (log + snapshot) and
# unseals with the NEW shares.
D=$(( A % 3 + 1 ))
stop_node "$D" KILL
for r in 1 2; do rotate_wait "$A" || fail "rotate while n$D down"; done
for k in $(seq 1 60); do ncli "$A" kv put "bulk/$k" v="$k" >/dev/null; done
cp "$WORK/new.keys" "$WORK/prev.keys"
out=$(ncli "$A" operator rekey --init --key-shares 3 --key-threshold 2 --format json)
nonce=$(echo "$out" | json nonce)
ncli "$A" operator rekey --nonce "$nonce" "$(KEYFILE=prev.keys ckey 1)" >/dev/null
ncli "$A" operator rekey --nonce "$nonce" "$(KEYFILE=prev.keys ckey 2)" --format json > "$WORK/rekey2"
json_array keys_hex < "$WORK/rekey2" > "$WORK/new2.keys"
start_node "$D"
sleep 1
expect_err "not part of the current key set" ncli "$D" operator unseal "$(KEYFILE=prev.keys ckey 1)"
KEYFILE=new2.keys unseal_node "$D" 1 2
wait_for 5 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port "$D") CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | sed -n 's/.*\"term\":\([0-9]*\).*/\1/p')\" = 6 ]" \
  || fail "n$D did not reach term 6"
stop_node "$A" KILL
A2=$(active_node 10) || fail "no active after killing n$A"
[ "$(ncli "$A2" kv get bulk/60 --field v)" = 60 ] || fail "bulk/60 after catch-up"
[ "$(ncli "$A2" kv get app/via1 --field v)" = 1 ] || fail "app/via1 after catch-up"
grep -q "restored a snapshot" "$WORK/n$D.log" && snap=" (snapshot installed)" || snap=""
pass "node down during 2 rotations + rekey caught up$snap, refused the old share, unsealed with the new ones"
start_node "$A"

# A node with a certificate from another CA cannot join or read.
mkdir -p "$WORK/evil"
sh "$ROOT_DIR/deploy/cluster/gen-cluster-certs.sh" "$WORK/evil" n1 >/dev/null 2>&1
mkdir -p "$WORK/n8/data"
sed -e "s#$WORK/ctls/n1#$WORK/evil/n1#g; s#$WORK/ctls/ca.crt#$WORK/evil/ca.crt#; s#$WORK/n1/data#$WORK/n8/data#" \
    -e "s#127.0.0.1:$(api_port 1)\"#127.0.0.1:$(( CBASE + 9 ))\"#; s#127.0.0.1:$(raft_port 1)\"#127.0.0.1:$(( CBASE + 8 ))\"#" \
    "$WORK/n1/custos.conf" > "$WORK/n8/custos.conf"
"$CUSTOSD" --config "$WORK/n8/custos.conf" >> "$WORK/n8.log" 2>&1 &
PIDS+=("$!")
# (polled, not slept: under ASan or valgrind the handshakes take longer)
wait_for 15 grep -q "TLS handshake with a peer failed" "$WORK/n8.log" \
  || fail "foreign node: no handshake failure logged"
wait_for 15 sh -c "grep -q 'TLS handshake with a peer failed' '$WORK/n1.log' '$WORK/n2.log' '$WORK/n3.log'" \
  || fail "members did not log the refused handshake"
init=$(CUSTOS_ADDR="127.0.0.1:$(( CBASE + 9 ))" CUSTOS_CACERT="$WORK/evil/ca.crt" "$CUSTOS" status --format json 2>/dev/null | json initialized || true)
[ "$init" = false ] || fail "the foreign node received the cluster's data (initialized=$init)"
pass "a node with a certificate from another CA is refused (no data replicated to it)"

#!/usr/bin/env bash
# Versioned KV in a 3-node cluster: versioned writes through every node
# (standbys redirect to the active), concurrent writers on one path through
# different nodes (versions 1..N, each one's data), every version record
# and the metadata replicated byte-for-byte to every member's store
# (mdb_dump: the same kv2/ keys and values everywhere), kill -9 of the
# active: the new active serves every version, CAS continues from the
# right version, metadata and soft deletes intact; HTTP on a standby
# answers a 307 to the active for kv/data/.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-1000} HEARTBEAT_MS=${HEARTBEAT_MS:-100}
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 20 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 20) || fail "no active node"

# Through every node (the CLI follows a standby's redirect).
for i in 1 2 3; do
  out=$(ncli "$i" kv put --mount kv app/db v="via$i" --format json) || fail "kv2 put through n$i"
  [ "$(echo "$out" | json version)" = "$i" ] || fail "put through n$i got version $(echo "$out" | json version)"
done
for i in 1 2 3; do for v in 1 2 3; do
  got=$(ncli "$i" kv get --mount kv --version "$v" app/db --field v 2>&1) || true
  [ "$got" = "via$v" ] || fail "n$i reads v$v: $got"
done; done
ncli "$A" kv delete --mount kv --versions 1 app/db >/dev/null || fail "soft delete v1"
ncli "$A" kv metadata put --max-versions 50 --custom-metadata owner=ops app/db >/dev/null || fail "metadata put"
pass "versioned writes through each node, read through every node"

# Concurrent writers through the three nodes on one path.
ncli "$A" kv metadata put --max-versions 100 race/k >/dev/null || fail "metadata race/k"
# put K: retried while the cluster says RETRY (exit 3: nothing was done).
put() {
  local k=$1 try rc
  for try in $(seq 1 50); do
    rc=0; ncli $(( k % 3 + 1 )) kv put --mount kv race/k v="$k" --format json > "$WORK/race.$k" \
      2> "$WORK/race.$k.err" || rc=$?
    [ "$rc" = 3 ] || return "$rc"
    sleep 0.2
  done
  return 3
}
pids=()
N=12   # within the listeners' handshake limits, also under ASan on a loaded machine
for k in $(seq 1 $N); do put "$k" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent put failed: $(cat "$WORK"/race.*.err)"; done
vs=$(for k in $(seq 1 $N); do json version < "$WORK/race.$k"; done | sort -n | tr '\n' ' ')
[ "$vs" = "$(seq 1 $N | tr '\n' ' ')" ] || fail "concurrent versions are not 1..$N: $vs"
for k in $(seq 1 $N); do
  v=$(json version < "$WORK/race.$k")
  got=$(ncli "$A" kv get --mount kv --version "$v" race/k --field v 2>&1) || true
  [ "$got" = "$k" ] || fail "race v$v is not write $k: $got; $(for x in $(seq 1 $N); do printf "%s:%s " $x $(json version < $WORK/race.$x); done); $(ncli "$A" kv metadata get race/k --format json); A=$A modes: $(for i in 1 2 3; do ha_mode $i; done)"
done
pass "$N concurrent writers through 3 nodes: versions 1..$N, each one's data"

# Every member holds the same kv2 records, byte for byte (applied entries).
if command -v mdb_dump >/dev/null; then
  dump() { mdb_dump -s data -p "$WORK/n$1/data" 2>/dev/null | awk '/^ kv2\//{k=$0; getline; print k, $0}' | sort; }
  same() { [ "$(dump 1)" = "$(dump 2)" ] && [ "$(dump 2)" = "$(dump 3)" ] && [ -n "$(dump 1)" ]; }
  wait_for 10 same || fail "kv2 records differ between members"
  n=$(dump 1 | wc -l)
  [ "$n" = $((5 + N)) ] || fail "expected $((5 + N)) kv2 records (2 metadata, 3 + $N versions), found $n"
  pass "every member's store holds the same $n kv2 records (metadata and versions)"
fi

# HTTP on a standby: 307 to the active for a versioned read.
S=$(( A % 3 + 1 ))
code=$(curl -sS --cacert "$WORK/ctls/ca.crt" -o /dev/null -w '%{http_code} %{redirect_url}' \
  -H "X-Vault-Token: $TOKEN" "https://127.0.0.1:$(api_port "$S")/v1/kv/data/app/db?version=2")
case "$code" in "307 https://127.0.0.1:$(api_port "$A")/v1/kv/data/app/db?version=2") ;;
  *) fail "standby HTTP answer: $code" ;; esac
pass "HTTP kv/data/ on a standby: 307 to the active"

# kill -9 the active; the new one serves everything and CAS continues.
kill -9 "$(eval echo "\$NPID_$A")"; wait "$(eval echo "\$NPID_$A")" 2>/dev/null || true
eval "NPID_$A="
B=$(active_node 30) || fail "no new active after kill -9"
[ "$B" != "$A" ] || fail "the killed node is active?"
for v in 2 3; do [ "$(ncli "$B" kv get --mount kv --version "$v" app/db --field v)" = "via$v" ] || fail "new active v$v"; done
expect_err "is deleted" ncli "$B" kv get --mount kv --version 1 app/db
ncli "$B" kv metadata get app/db --format json | grep -q '"custom_metadata":{"owner":"ops"}' || fail "metadata after failover"
expect_err "did not match" ncli "$B" kv put --mount kv --cas 2 app/db v=stale
out=$(ncli "$B" kv put --mount kv --cas 3 app/db v=after --format json) || fail "cas 3 on the new active"
[ "$(echo "$out" | json version)" = 4 ] || fail "version after failover: $out"
[ "$(ncli "$B" kv get --mount kv --version $N race/k --field v)" != "" ] || fail "race/k v$N after failover"
start_node "$A"; unseal_node "$A" 1 2
wait_for 15 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port "$A") CUSTOS_CACERT=$WORK/ctls/ca.crt CUSTOS_TOKEN=$TOKEN $CUSTOS kv get --mount kv app/db --field v 2>/dev/null)\" = after ]" \
  || fail "the restarted node does not serve version 4"
pass "kill -9 of the active: the new active serves every version, deletes and metadata; CAS continues at 4; the old node catches up"

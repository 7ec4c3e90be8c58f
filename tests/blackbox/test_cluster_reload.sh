#!/usr/bin/env bash
# SIGHUP reloads the cluster port's certificate and key: the certificate
# served on the cluster port (openssl s_client with a cluster client
# certificate) changes serial without a restart, raft goes on (writes, a
# member restarted connects to the new certificate); a bad new certificate
# (garbage, a key not matching, a certificate naming another node) is
# refused with a log line and the old one is still served.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "SKIPPED: openssl not installed" >&2; exit 77; }
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 20 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node"
ncli "$A" kv put cr/k v=1 >/dev/null || fail "put"

C="$WORK/ctls"
serial() {
  openssl s_client -connect "127.0.0.1:$(raft_port 1)" -cert "$C/n9.crt" -key "$C/n9.key" \
    -CAfile "$C/ca.crt" -showcerts </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}
hup_log() { # PATTERN: SIGHUP n1 and wait for one more matching log line
  local want=$(( $(grep -c -- "$1" "$WORK/n1.log" || true) + 1 )) k
  kill -HUP "$NPID_1"
  for k in $(seq 1 200); do
    [ "$(grep -c -- "$1" "$WORK/n1.log" || true)" -ge "$want" ] && return 0
    sleep 0.05
  done
  fail "no '$1' in n1's log after SIGHUP"
}
s1=$(serial)
[ -n "$s1" ] || fail "no certificate served on the cluster port"

mkdir -p "$WORK/new"
cp "$C/ca.crt" "$C/ca.key" "$WORK/new/"
sh "$ROOT_DIR/deploy/cluster/gen-cluster-certs.sh" "$WORK/new" n1 >/dev/null 2>&1 || fail "reissuing n1"
cp "$C/n1.crt" "$WORK/old.crt"; cp "$C/n1.key" "$WORK/old.key"
cp "$WORK/new/n1.crt" "$C/n1.crt"; cp "$WORK/new/n1.key" "$C/n1.key"
hup_log "cluster TLS certificate and key reloaded"
s2=$(serial)
[ -n "$s2" ] && [ "$s2" != "$s1" ] || fail "cluster port serial after SIGHUP: '$s2' (before: '$s1')"
pass "SIGHUP: cluster port serves $s2 (was $s1) without a restart"

# Raft goes on: writes commit, and a restarted member connects again.
A=$(active_node 15) || fail "no active node after the reload"
ncli "$A" kv put cr/k2 v=2 >/dev/null || fail "write after the reload"
O=2; [ "$A" = 2 ] && O=3
stop_node "$O"; start_node "$O"; unseal_node "$O" 1 2
caught_up() { [ "$(ncli "$A" operator raft list-peers --format json | tr '{' '\n' | grep "\"node_id\":\"n$O\"" | json reachable)" = true ]; }
wait_for 30 caught_up || fail "restarted n$O not reachable after n1's reload"
A=$(active_node 15) || fail "no active node"
[ "$(ncli "$A" kv get cr/k2 --field v)" = 2 ] || fail "cr/k2 lost"
pass "raft goes on after the reload (writes, restarted n$O reachable)"

cp "$C/n1.crt" "$WORK/good.crt"; cp "$C/n1.key" "$WORK/good.key"
echo "not a certificate" > "$C/n1.crt"
hup_log "new cluster TLS certificate refused"
[ "$(serial)" = "$s2" ] || fail "garbage certificate: cluster port serial now $(serial)"
pass "garbage refused: $(grep 'new cluster TLS certificate refused' "$WORK/n1.log" | tail -1 | cut -c1-200)"
cp "$WORK/good.crt" "$C/n1.crt"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/n1.key" 2>/dev/null
hup_log "new cluster TLS certificate refused"
[ "$(serial)" = "$s2" ] || fail "mismatched key: cluster port serial now $(serial)"
pass "key not matching refused"
cp "$C/n2.crt" "$C/n1.crt"; cp "$C/n2.key" "$C/n1.key"
hup_log "names node n2, but cluster.node_id is n1"
[ "$(serial)" = "$s2" ] || fail "certificate of n2: cluster port serial now $(serial)"
pass "certificate naming another node refused: $(grep 'names node n2' "$WORK/n1.log" | tail -1 | cut -c1-220)"
cp "$WORK/good.crt" "$C/n1.crt"; cp "$WORK/good.key" "$C/n1.key"
hup_log "cluster TLS certificate and key reloaded"
[ "$(serial)" = "$s2" ] || fail "good again: serial $(serial)"
kill -0 "$NPID_1" || fail "n1 died"
pass "good pair again accepted; n1 alive"

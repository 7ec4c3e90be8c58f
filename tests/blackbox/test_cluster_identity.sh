#!/usr/bin/env bash
# Cluster node identity (issue 10, finding 2): a certificate from the
# cluster CA that belongs to no member (n9) must not be able to act as a
# member.  Through tests/tools/cluster_probe, n9 tries: spoofed status
# reports (new protobuf form and the old text form) that would rewrite the
# members' API addresses and so hijack the standbys' redirects; join
# requests (they must add nobody: only operator add-peer does); a raft
# preamble claiming another node's raft id; impersonating a member as the
# server side of an outgoing connection; an authenticated session that never
# sends its preamble; a pile of unauthenticated connections (finding 9).
# Every attempt is refused, and the refusal is logged by the node attacked.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"
PROBE=${CLUSTER_PROBE:?set CLUSTER_PROBE to the cluster_probe binary}

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
S=$(( A % 3 + 1 )); S2=$(( S % 3 + 1 ))
EVIL_API="127.0.0.1:$(( CBASE + 15 ))"
EVIL_RAFT="127.0.0.1:$(( CBASE + 16 ))"

probe() { timeout 30 "$PROBE" --ca "$WORK/ctls/ca.crt" --cert "$WORK/ctls/n9.crt" --key "$WORK/ctls/n9.key" "$@"; }
raft_addr() { echo "127.0.0.1:$(raft_port "$1")"; }
# logged N PATTERN: waits for PATTERN in n$N's log.
logged() { wait_for 10 grep -q -- "$2" "$WORK/n$1.log"; }

# An impostor API listener with n9's certificate (signed by the cluster CA,
# with IP SAN 127.0.0.1: the CLI would accept it as a server).  If a
# standby's redirect ever points here, the CLI sends it the root token.
# (Not through probe(): its 30 s timeout would end the listener early; it
# runs until the test ends and is killed by PID.)
"$PROBE" --ca "$WORK/ctls/ca.crt" --cert "$WORK/ctls/n9.crt" --key "$WORK/ctls/n9.key" \
  serve "$(( CBASE + 15 ))" 600 api > "$WORK/evil_api.out" 2>&1 &
EVIL_PID=$!
PIDS+=("$EVIL_PID")
wait_for 10 grep -q listening "$WORK/evil_api.out" || fail "impostor listener did not start"

# --- (a) spoofed status reports
for i in 1 2 3; do
  out=$(probe status "$(raft_addr "$i")" "n$A" "$EVIL_API")
  echo "$out" | grep -q "reply refused: node_id is not the node of your certificate" \
    || fail "n$i: spoofed status (as n$A) not refused: $out"
  logged "$i" "refused a status report from node n9: it claims to be node n$A" \
    || fail "n$i did not log the spoofed status report"
  out=$(probe status "$(raft_addr "$i")" n9 "$EVIL_API")
  echo "$out" | grep -q "reply refused: not a member of the cluster" \
    || fail "n$i: status from the non-member n9 not refused: $out"
  logged "$i" "refused a status report from node n9: not a member of the cluster" \
    || fail "n$i did not log the non-member's status report"
  # The pre-protobuf text form must not be understood any more.
  out=$(probe legacy "$(raft_addr "$i")" "S n$A $(raft_addr "$A") $EVIL_API 0 1 999999")
  echo "$out" | grep -q "reply text: M \|reply text: OK" && fail "n$i answered the old text status: $out"
  logged "$i" "refused a malformed message from node n9" \
    || fail "n$i did not log the malformed (old text) message: $out"
done
pass "spoofed status reports (as a member, as a non-member, in the old text form) are refused and logged"

# --- redirect hijack: after the attempts and a few poll intervals, every
# standby still sends clients to the real active, and the CLI following a
# standby's redirect reaches it (and never the impostor).
sleep 1
for i in "$S" "$S2"; do
  addr=$(node_status "$i" | json active_address)
  [ "$addr" = "127.0.0.1:$(api_port "$A")" ] || fail "n$i redirects to $addr instead of the active n$A"
done
ncli "$S" kv put hijack/x secret=s3cr3t >/dev/null || fail "put through the standby n$S"
[ "$(ncli "$S2" kv get hijack/x --field secret)" = s3cr3t ] || fail "get through the standby n$S2"
grep -q "handshake ok" "$WORK/evil_api.out" && fail "a client was redirected to the impostor: $(cat "$WORK/evil_api.out")"
pass "standbys' redirects still point at the real active; the CLI (root token, a secret) never reached the impostor"

# --- (b) join requests add nobody
for i in 1 2 3; do
  out=$(probe join "$(raft_addr "$i")" n9 "$EVIL_RAFT" "$EVIL_API")
  echo "$out" | grep -q "reply join member=0" || fail "n$i: join reply: $out"
  logged "$i" "join request from node n9 ($EVIL_RAFT) not acted on: an operator must approve it with: custos operator raft add-peer n9 $EVIL_RAFT" \
    || fail "n$i did not log the join request"
  out=$(probe join "$(raft_addr "$i")" n4 "$EVIL_RAFT" "$EVIL_API")
  echo "$out" | grep -q "reply refused: node_id is not the node of your certificate" \
    || fail "n$i: join claiming n4 not refused: $out"
  logged "$i" "refused a join request from node n9: it claims to be node n4" || fail "n$i: no log of the spoofed join"
  out=$(probe legacy "$(raft_addr "$i")" "J n9 $EVIL_RAFT $EVIL_API")
  echo "$out" | grep -q "reply text: OK" && fail "n$i accepted the old text join: $out"
done
sleep 1
peers=$(ncli "$A" operator raft list-peers --format json) || fail "list-peers: $peers"
echo "$peers" | grep -q '"node_id":"n9"\|"node_id":"n4"\|"node_id":"?"' && fail "a join request added a member: $peers"
[ "$(echo "$peers" | grep -o '"node_id"' | wc -l)" = 3 ] || fail "membership changed: $peers"
pass "join requests (honest, spoofed, old text form) add nobody; the add-peer command is logged for the operator"

# --- a raft preamble claiming another node's raft id, or the non-member's own
for i in 1 2 3; do
  j=$(( i % 3 + 1 ))
  out=$(probe raft "$(raft_addr "$i")" "n$j" "$(raft_addr "$j")")
  [ "$out" = closed ] || fail "n$i kept a raft stream from n9 claiming n$j: $out"
  logged "$i" "refused a raft connection from 127.0.0.1:[0-9]* (certificate of node n9): its preamble claims n$j" \
    || fail "n$i did not log the spoofed raft preamble"
  out=$(probe raft "$(raft_addr "$i")" n9 "$EVIL_RAFT")
  [ "$out" = closed ] || fail "n$i kept a raft stream from the non-member n9: $out"
  logged "$i" "refused a raft connection from .* (certificate of node n9): node n9 is not a member of the cluster" \
    || fail "n$i did not log the non-member's raft connection"
done
pass "raft preambles claiming another node's id, or from a non-member, are refused and logged"

# --- impersonating a member as the server side: stop a standby and listen
# on its raft port with n9's certificate.  The others must refuse it during
# the handshake (their certificate check names the node they dial).
stop_node "$S2"
probe serve "$(raft_port "$S2")" 8 > "$WORK/evil_raft.out" 2>&1 &
IMP=$!
PIDS+=("$IMP")
wait_for 15 grep -q "refused peer $(raft_addr "$S2"): certificate names node n9, expected n$S2" \
    "$WORK/n$A.log" "$WORK/n$S.log" || fail "no node logged the impostor of n$S2"
wait "$IMP" 2>/dev/null || true
grep -q "peer handshake failed" "$WORK/evil_raft.out" || fail "impostor saw no refused handshake: $(cat "$WORK/evil_raft.out")"
grep -q "handshake ok" "$WORK/evil_raft.out" && fail "a member completed a handshake with the impostor of n$S2"
start_node "$S2"
unseal_node "$S2" 1 2
secret_is() { [ "$(ncli "$1" kv get hijack/x --field secret 2>/dev/null)" = s3cr3t ]; }
wait_for 15 secret_is "$S2" || fail "n$S2 after restart: $(ncli "$S2" kv get hijack/x 2>&1)"
pass "outgoing connections check the peer's node identity: an impostor of n$S2 is refused"

# --- an authenticated session that never sends its preamble is closed
# (handshake_timeout covers the preamble too: default 5 s).
out=$(probe idle "$(raft_addr "$A")" 20)
[ "$out" = "closed by server" ] || fail "idle authenticated session: $out"
logged "$A" "timed out during the preamble" || fail "n$A did not log the preamble timeout"
pass "an authenticated peer that sends no preamble is closed at the handshake timeout"

# --- (finding 9) unauthenticated connections on the cluster port are
# bounded per address (default 16) and in time (default 5 s).
out=$(probe hold "$(raft_addr "$S")" 20 30)
echo "$out" | grep -q "extra handshake: refused" || fail "per-address limit: $out"
echo "$out" | grep -q "closed by server: 20 of 20" || fail "held connections not all closed: $out"
logged "$S" "refused a connection from 127.0.0.1: too many unauthenticated connections" \
  || fail "n$S did not log the refused connections"
logged "$S" "timed out during the TLS handshake" || fail "n$S did not log the handshake timeout"
ncli "$S" kv put limits/after v=1 >/dev/null || fail "cluster unusable after the connection flood"
pass "unauthenticated connections on the cluster port: per-address limit and handshake timeout"

# The limits are configurable: a node restarted with lower ones applies them.
stop_node "$S"
write_node_config "$S" 'handshake_timeout = "1s"; max_unauth_connections = 3; max_unauth_per_address = 2;'
start_node "$S"
unseal_node "$S" 1 2
out=$(probe hold "$(raft_addr "$S")" 3 20)
echo "$out" | grep -q "extra handshake: refused" || fail "configured limit: $out"
echo "$out" | grep -q "closed by server: 3 of 3" || fail "configured timeout: $out"
stop_node "$S"
write_node_config "$S" 'max_unauth_connections = 3; max_unauth_per_address = 4;'
expect_exit 1 "$CUSTOSD" --config "$WORK/n$S/custos.conf"
grep -q "max_unauth_per_address.*must not exceed cluster.max_unauth_connections" "$WORK/err" \
  || fail "bad limits: $(cat "$WORK/err")"
pass "cluster.max_unauth_connections / max_unauth_per_address / handshake_timeout are configurable and checked"

# A node whose certificate names another node refuses to start.
write_node_config "$S"
sed -i "s#ctls/n$S.crt#ctls/n9.crt#g; s#ctls/n$S.key#ctls/n9.key#g" "$WORK/n$S/custos.conf"
expect_exit 1 "$CUSTOSD" --config "$WORK/n$S/custos.conf"
grep -q "names node n9, but cluster.node_id is n$S" "$WORK/err" || fail "wrong certificate: $(cat "$WORK/err")"
pass "a node whose cluster certificate names another node refuses to start"

# The cluster port has the API listener's TLS policy (one builder,
# server/net/tls_policy.c): no CBC suites; a key that does not match its
# certificate stops the start.
tls_cipher() { # ADDR CIPHER: prints the cipher negotiated ("(NONE)" when refused)
  timeout 15 openssl s_client -connect "$1" -tls1_2 -cipher "$2" -CAfile "$WORK/ctls/ca.crt" \
    -cert "$WORK/ctls/n9.crt" -key "$WORK/ctls/n9.key" </dev/null 2>/dev/null \
    | sed -n 's/.*Cipher is \(.*\)/\1/p' | head -n1 || true
}
[ "$(tls_cipher "$(raft_addr "$A")" ECDHE-ECDSA-AES128-GCM-SHA256)" = ECDHE-ECDSA-AES128-GCM-SHA256 ] \
  || fail "the cluster port refused an AEAD suite"
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-AES128-CCM; do
  got=$(tls_cipher "$(raft_addr "$A")" "$c")
  [ "$got" != "$c" ] || fail "the cluster port negotiated $c"
done
write_node_config "$S"
sed -i "/^cluster = {/,/^};/ s#ctls/n$S.key\";#ctls/n$S2.key\";#" "$WORK/n$S/custos.conf"
grep -q "tls_key_file  = \"$WORK/ctls/n$S2.key\"" "$WORK/n$S/custos.conf" || fail "test set-up: key not swapped"
stop_node "$S"
expect_exit 1 "$CUSTOSD" --config "$WORK/n$S/custos.conf"
grep -q "key .*n$S2.key does not match the certificate" "$WORK/err" || fail "mismatched key: $(cat "$WORK/err")"
pass "the cluster port uses the API's TLS policy (AEAD suites only, key/certificate match checked)"

# A new node waiting to be added (started with `join`, no configuration yet)
# takes raft streams only from the nodes of its own cluster.peers.
write_node_config "$S"
start_node "$S"
NODES=4 write_node_config 4 "join = \"$(raft_addr 1)\";"
NODES=4 start_node 4
wait_for 20 grep -q "not a member yet" "$WORK/n4.log" || fail "n4 is not waiting to be added"
out=$(probe raft "$(raft_addr 4)" n9 "$EVIL_RAFT")
[ "$out" = closed ] || fail "the waiting n4 kept a raft stream from n9: $out"
logged 4 "refused a raft connection from .* (certificate of node n9): node n9 is not in this node's cluster.peers" \
  || fail "n4 did not log the refused raft stream"
! is_initialized 4 || fail "n4 received data from a non-member"
pass "a node waiting to be added takes raft streams only from its configured peers"

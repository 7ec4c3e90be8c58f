#!/usr/bin/env bash
# The cluster port's framing against a lying peer (server/ha/raft_tls.c,
# side_channel.c): a peer with a certificate from the cluster CA (n9, no
# member) sends preambles that lie about their length (over the 4096-byte
# limit, the u16 maximum), a payload cut short, an unknown kind, a message
# of the maximum size that is no protobuf, and bytes after a message.  Each
# is refused or timed out, logged by the node, and the node keeps serving
# (its status answers, the cluster keeps its leader) with no crash.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"
PROBE=${CLUSTER_PROBE:?set CLUSTER_PROBE to the cluster_probe binary}

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
probe() { timeout 30 "$PROBE" --ca "$WORK/ctls/ca.crt" --cert "$WORK/ctls/n9.crt" --key "$WORK/ctls/n9.key" "$@"; }
T="127.0.0.1:$(raft_port 2)"
logged() { wait_for 10 grep -q -- "$1" "$WORK/n2.log"; }

# kind 2 (message), raft id 0, length 0xffff: over the limit, refused before a byte is buffered
out=$(probe frame "$T" 020000000000000000ffff 0)
[ "$out" = closed ] || fail "length 65535: not closed: $out"
logged "preamble payload length 65535 out of range" || fail "length 65535 not logged"
out=$(probe frame "$T" 0200000000000000001001 4097)
[ "$out" = closed ] || fail "length 4097: not closed: $out"
logged "preamble payload length 4097 out of range" || fail "length 4097 not logged"
pass "a preamble claiming more than 4096 bytes (4097, 65535) is refused and logged"

# the maximum size, all 0xff: no protobuf
out=$(probe frame "$T" 0200000000000000001000 4096)
echo "$out" | grep -q "reply refused: malformed message" || fail "4096 bytes of junk: $out"
logged "refused a malformed message from node n9" || fail "junk message not logged"
# the same with 600 more bytes after it: answered once, the rest ignored
out=$(probe frame "$T" 0200000000000000001000 4696)
echo "$out" | grep -q "reply refused: malformed message" || fail "junk + trailing bytes: $out"
pass "4096 bytes of junk as a message: refused as malformed (also with bytes after it)"

# a payload cut short: the node waits for the rest, then the preamble timer closes it
start=$(date +%s)
out=$(probe frame "$T" 0200000000000000000064 50)
[ "$out" = closed ] || [ "$out" = timeout ] || fail "truncated payload: $out"
[ $(( $(date +%s) - start )) -le 20 ] || fail "truncated payload held for more than 20 s"
logged "timed out during the preamble" || fail "truncated payload: no timeout logged"
pass "a payload cut short is closed by the preamble timer"

# unknown kind, a raft stream with raft id 0, a message with a raft id, length 0
for h in 090000000000000000000a 010000000000000000000a 020000000000000001000a 0200000000000000000000; do
  out=$(probe frame "$T" "$h" 10)
  [ "$out" = closed ] || fail "preamble $h: not closed: $out"
done
logged "unknown preamble kind 9" || fail "unknown kind not logged"
logged "preamble raft id does not fit its kind" || fail "raft id / kind mismatch not logged"
pass "unknown kinds and raft ids that do not fit the kind: closed and logged"

# Still alive and serving: status answers on every node, a leader is known.
for i in 1 2 3; do
  kill -0 "$(eval echo "\$NPID_$i")" 2>/dev/null || fail "n$i died"
  node_status "$i" | grep -q '"active_address":"127' || fail "n$i: no leader known after the probes: $(node_status "$i")"
done
pass "every node alive and in a cluster with a leader after the hostile frames"

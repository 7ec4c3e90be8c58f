#!/usr/bin/env bash
# generate-root in a 3-node cluster: started and fed through a standby (the
# client follows the redirect to the active, where the attempt lives), the
# new root token works on the active; then the active is killed and the new
# active accepts the token (its entry came through raft in one entry) and
# holds no attempt of the old one.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50}
. "$(dirname "$0")/cluster_lib.sh"

gate=$(CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator generate-root --status 2>&1 || true)
if echo "$gate" | grep -q "unknown subcommand"; then
  echo "SKIPPED: this custos CLI has no operator generate-root yet" >&2; exit 77
fi

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 30 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node after unseal"
S=$(( A % 3 + 1 ))
TOKEN=$TOKEN ncli "$A" token revoke --self >/dev/null || fail "revoke the root token"
unset TOKEN

TOKEN= ncli "$S" operator generate-root --init --otp --format json > "$WORK/init.json" \
  || fail "init through standby n$S: $(cat "$WORK/init.json")"
N=$(json nonce < "$WORK/init.json"); OTP=$(json otp < "$WORK/init.json")
[ -n "$N" ] && [ ${#OTP} = 46 ] || fail "init: $(cat "$WORK/init.json")"
grep -q "generate-root attempt $N started" "$WORK/n$A.log" || fail "the attempt is not on the active n$A"
TOKEN= ncli "$S" operator generate-root --nonce "$N" "$(ckey 1)" >/dev/null || fail "share 1 via n$S"
ENC=$(TOKEN= ncli "$A" operator generate-root --nonce "$N" "$(ckey 2)" --format json | json encoded_token)
[ -n "$ENC" ] || fail "no encoded token"
NEW=$(TOKEN= ncli "$A" operator generate-root --decode "$ENC" --otp "$OTP" --format json | json token)
TOKEN=$NEW ncli "$A" kv put app/x v=1 >/dev/null || fail "the new token on the active"
pass "started and fed through standby n$S (redirected to active n$A); the new root token works"

# An attempt on an active that steps down ends there (a standby keeps no
# attempt); the token entry is raft-replicated: the new active accepts it.
TOKEN= ncli "$A" operator generate-root --init --otp --format json > "$WORK/init2.json"
N2=$(json nonce < "$WORK/init2.json")
# The step-down needs a standby that reported itself unsealed within the
# last poll intervals; right after the unseal, on a loaded machine, none may
# have yet ("no member can take over"): ask again until one has.
step_down() { TOKEN=$NEW ncli "$A" operator raft step-down >/dev/null 2>"$WORK/sd.err"; }
wait_for 20 step_down || fail "step-down of n$A: $(cat "$WORK/sd.err")"
ended() { grep -q "generate-root attempt $N2 ended: this node is not the active one any more" "$WORK/n$A.log"; }
wait_for 20 ended || fail "the old active n$A kept its attempt"
B=$(active_node 30) || fail "no new active after the step-down"
[ "$B" != "$A" ] || fail "n$A is still active"
ok() { [ "$(TOKEN=$NEW ncli "$B" kv get app/x --field v)" = 1 ]; }
wait_for 20 ok || fail "the new root token does not work on the new active n$B"
[ "$(TOKEN= ncli "$B" operator generate-root --status --format json | json started)" = false ] \
  || fail "the new active holds an attempt"
expect_err "no generate-root attempt is in progress" ncli "$B" operator generate-root --nonce "$N2" "$(ckey 1)"
pass "after a step-down the old active n$A drops its attempt; the new active n$B accepts the token and holds none"

# The active dies: the next one accepts the token too.
stop_node "$B" KILL
C=$(active_node 30) || fail "no new active after killing n$B"
ok2() { [ "$(TOKEN=$NEW ncli "$C" kv get app/x --field v)" = 1 ]; }
wait_for 20 ok2 || fail "the new root token does not work on n$C after n$B died"
pass "after the active n$B is killed, n$C accepts the token"

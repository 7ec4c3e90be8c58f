#!/usr/bin/env bash
# Staged activation in a 3-node cluster (docs/ha.md, "Staged activation"):
#  1. a standby frozen (SIGSTOP) across a rotation: the new term is staged,
#     writes continue under the old term, a second rotation is refused; the
#     term activates once the standby is resumed (SIGCONT) and acknowledges;
#  2. the same with the standby frozen past seal.max_activation_delay (4 s):
#     the term activates without it (log line on the active naming it) and
#     the laggard seals itself on resume (log line there), then unsealed
#     again it follows;
#  3. a new leader whose stored keyring lacks the active term refuses to
#     serve as active (log line, sealed with the reason) and hands over.
# Every process is resumed (SIGCONT) before anything kills it.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
SEAL_EXTRA='seal = { max_activation_delay = "60s"; };'
. "$(dirname "$0")/cluster_lib.sh"
PROBE=${CLUSTER_PROBE:?set CLUSTER_PROBE to the cluster_probe binary}

npid() { eval echo "\${NPID_$1:-}"; }
FROZEN=""
freeze() { kill -STOP "$(npid "$1")"; FROZEN="$FROZEN $1"; }
thaw() { kill -CONT "$(npid "$1")" 2>/dev/null || true; FROZEN=${FROZEN// $1/}; }
# A stopped process ignores SIGTERM: resume everything before lib.sh's cleanup kills it.
trap 'for i in $FROZEN; do kill -CONT "$(npid "$i")" 2>/dev/null || true; done; cleanup; rm -rf "$CLUSTER_PORT_LOCK"' EXIT

# The term named by the ciphertext of storage key KEY in node I's store
# (the first 4 bytes of a barrier value, big-endian), or "" when absent.
stored_term() {
  mdb_dump -s data "$WORK/n$1/data" 2>/dev/null | python3 -c '
import sys
want = sys.argv[1].encode().hex()
lines = [l.strip() for l in sys.stdin]
i = lines.index("HEADER=END") + 1
while i + 1 < len(lines):
    if lines[i] == want:
        print(int(lines[i + 1][:8], 16)); break
    i += 2
' "$2"
}
has_key() { [ -n "$(stored_term "$1" "$2")" ]; }
active_term_of() { node_status "$1" | json term; }
term_is() { [ "$(active_term_of "$1")" = "$2" ]; }

boot() {
  for i in 1 2 3; do start_node "$i"; done
  wait_for 15 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
    || fail "no leader"
}

boot
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
S=$(( A % 3 + 1 )); T=$(( S % 3 + 1 ))
ncli "$A" kv put before/x v=1 >/dev/null || fail "put before"
# n$S's stored keyring at term 1, for part 3.
OLD_KEYRING=$(mdb_dump -s data "$WORK/n$S/data" | python3 -c '
import sys
lines = [l.strip() for l in sys.stdin]
want = b"core/keyring".hex()
i = lines.index("HEADER=END") + 1
while i + 1 < len(lines):
    if lines[i] == want: print(lines[i + 1]); break
    i += 2
')
[ -n "$OLD_KEYRING" ] || fail "no core/keyring in n$S's store"

# ---- 1. frozen across a rotation, resumed before the delay ---------------------------
freeze "$S"
# rotate --wait: returns only once the term is active, i.e. after n$S is back.
ncli "$A" operator rotate --wait --format json > "$WORK/rotate.out" 2>&1 &
RPID=$!
wait_for 10 grep -q "term 2 is staged; waiting for n$S to acknowledge" "$WORK/n$A.log" \
  || fail "the active does not say it waits for n$S"
wait_for 10 grep -q "node n$T acknowledged holding staged term 2" "$WORK/n$A.log" \
  || fail "n$T's acknowledgment not seen"
ncli "$A" kv put during/x v=2 >/dev/null || fail "put while term 2 is staged"
sleep 1.5 # several poll intervals: still staged
term_is "$A" 1 || fail "term 2 activated while n$S is frozen: $(node_status "$A")"
[ "$(stored_term "$A" kv/during/x)" = 1 ] || fail "a write while staged is not under term 1: $(stored_term "$A" kv/during/x)"
[ "$(stored_term "$A" core/root-key)" = 1 ] || fail "core/root-key moved while staged"
has_key "$A" core/upgrade/1 || fail "no upgrade key carries the staged term"
# A member lying about holding the term (n$S's certificate, made-up proof)
# is not counted, and the term stays staged.
"$PROBE" --ca "$WORK/ctls/ca.crt" --cert "$WORK/ctls/n$S.crt" --key "$WORK/ctls/n$S.key" \
  staged "127.0.0.1:$(raft_port "$A")" "n$S" "127.0.0.1:$(api_port "$S")" 2 > "$WORK/probe.out" 2>&1 \
  || fail "cluster_probe: $(cat "$WORK/probe.out")"
wait_for 5 grep -q "node n$S claims to hold staged term 2 but its proof does not verify" "$WORK/n$A.log" \
  || fail "a forged acknowledgment was not noticed: $(cat "$WORK/probe.out")"
sleep 1
term_is "$A" 1 || fail "a forged acknowledgment activated term 2"
pass "a forged acknowledgment (n$S's certificate, made-up proof) is refused and logged; term 2 stays staged"
ks=$(ncli "$A" operator key-status --format json) || fail "key-status: $ks"
echo "$ks" | grep -q '^{"term":1,' || fail "key-status does not show term 1 as the active term: $ks"
echo "$ks" | grep -q '"activation_waiting_for":\["n'"$S"'"\]' || fail "key-status does not name n$S: $ks"
echo "$ks" | grep -q '"activation_deadline":' || fail "key-status has no activation deadline: $ks"
echo "$ks" | grep -q '"term":2' || fail "key-status does not list the staged term 2: $ks"
kill -0 "$RPID" 2>/dev/null || fail "rotate --wait returned while term 2 is staged: $(cat "$WORK/rotate.out")"
pass "term 2 staged with n$S frozen: writes stay under term 1, n$T acknowledged, the active (and key-status) waits for n$S, rotate --wait waits"
set +e; out=$(ncli "$A" operator rotate 2>&1); rc=$?; set -e
[ "$rc" != 0 ] && echo "$out" | grep -q "term 2 is staged and not yet active" \
  || fail "a second rotation while term 2 is staged was not refused (exit $rc): $out"
term_is "$A" 1 || fail "the refused rotation changed the active term"
pass "a second rotation while a term is staged is refused: $out"

thaw "$S"
wait "$RPID" || fail "rotate --wait failed: $(cat "$WORK/rotate.out")"
[ "$(json term < "$WORK/rotate.out")" = 2 ] || fail "rotate --wait output: $(cat "$WORK/rotate.out")"
term_is "$A" 2 || fail "rotate --wait returned before term 2 was active: $(node_status "$A")"
grep -q "node n$S acknowledged holding staged term 2" "$WORK/n$A.log" || fail "no acknowledgment from n$S logged"
grep -q "every voter holds staged term 2: activating it" "$WORK/n$A.log" || fail "no activation line"
grep -q "standby: holds term 2 (staged) from the upgrade key" "$WORK/n$S.log" || fail "n$S did not stage term 2"
wait_for 10 term_is "$S" 2 || fail "n$S does not have term 2 active: $(node_status "$S")"
wait_for 10 term_is "$T" 2 || fail "n$T does not have term 2 active"
ncli "$A" kv put after/x v=3 >/dev/null || fail "put after activation"
[ "$(stored_term "$A" kv/after/x)" = 2 ] || fail "a write after activation is not under term 2"
[ "$(stored_term "$A" core/root-key)" = 2 ] || fail "core/root-key not under term 2 after activation"
wait_for 5 sh -c "! mdb_dump -s data -p '$WORK/n$A/data' | grep -q 'core/upgrade/1'" \
  || fail "the activation did not delete core/upgrade/1"
for k in before during after; do
  v=$(ncli "$S" kv get "$k/x" --field v) || fail "read $k/x through n$S"
done
pass "n$S resumed, acknowledged, term 2 active everywhere; the upgrade key is gone"

# ---- 1b. kill -9 of the active between staging and activation ------------------------
freeze "$S"
out=$(ncli "$A" operator rotate --format json) || fail "rotate 3: $out"
[ "$(echo "$out" | json term)" = 3 ] || fail "rotate did not install term 3: $out"
wait_for 10 grep -q "node n$T acknowledged holding staged term 3" "$WORK/n$A.log" \
  || fail "n$T's acknowledgment of term 3 not seen"
stop_node "$A" KILL
thaw "$S"
A2=$(active_node 20) || fail "no active after kill -9 of n$A"
sleep 1
term_is "$A2" 2 || fail "term 3 activated on n$A2 while n$A (a voter) is down: $(node_status "$A2")"
wait_for 10 grep -q "term 3 is staged; waiting for n$A to acknowledge" "$WORK/n$A2.log" \
  || fail "the new active n$A2 does not wait for the killed n$A"
ncli "$A2" kv put mid/x v=5 >/dev/null || fail "put on the new active while term 3 is staged"
[ "$(stored_term "$A2" kv/mid/x)" = 2 ] || fail "a write on the new active while staged is not under term 2"
start_node "$A"
unseal_node "$A" 1 2
wait_for 15 term_is "$A2" 3 || fail "term 3 did not activate once n$A was back: $(node_status "$A2")"
grep -q "every voter holds staged term 3: activating it" "$WORK/n$A2.log" || fail "no activation line on n$A2"
wait_for 10 term_is "$A" 3 || fail "the restarted n$A is not at term 3"
pass "kill -9 of the active while term 3 was staged: the new active n$A2 kept it staged, waited for n$A, activated it once n$A was back"

# ---- 2. frozen past max_activation_delay ---------------------------------------------
for i in 1 2 3; do stop_node "$i"; done
SEAL_EXTRA='seal = { max_activation_delay = "4s"; };'
# A resumed laggard polls at once (its replica still old), then catches the
# staging and activation entries up together; a poll between the two would
# still find the upgrade key and let it catch up instead of sealing (also
# fine, but not what this part shows): 1 s polls make that window small.
POLL_MS=1000
for i in 1 2 3; do write_node_config "$i"; done
boot
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node after the restart"
S=$(( A % 3 + 1 )); T=$(( S % 3 + 1 ))
freeze "$S"
t0=$(date +%s)
out=$(ncli "$A" operator rotate --format json) || fail "rotate 4: $out"
[ "$(echo "$out" | json term)" = 4 ] || fail "rotate did not install term 4: $out"
ncli "$A" kv put late/x v=4 >/dev/null
[ "$(stored_term "$A" kv/late/x)" = 3 ] || fail "write while term 4 is staged is not under term 3"
wait_for 15 term_is "$A" 4 || fail "term 4 never activated with n$S frozen past the delay"
t1=$(date +%s)
[ $(( t1 - t0 )) -ge 3 ] || fail "term 4 activated after $(( t1 - t0 )) s, before the 4 s delay"
grep -q "activating term 4 without the acknowledgment of n$S after seal.max_activation_delay (4 s)" "$WORK/n$A.log" \
  || fail "the active does not name the laggard n$S"
has_key "$A" core/upgrade/3 && fail "the upgrade key of term 4 outlived its activation"
pass "term 4 activated after $(( t1 - t0 )) s without n$S (max_activation_delay 4 s), naming it"
thaw "$S"
wait_for 15 grep -q "missed the keyring upgrade to term 4\|standby: term 4 is active" "$WORK/n$S.log" \
  || fail "the laggard n$S neither sealed itself nor caught up"
grep -q "missed the keyring upgrade to term 4" "$WORK/n$S.log" \
  || fail "the laggard n$S caught up from the upgrade key on its way (a poll between the two entries) instead of sealing itself: rerun"
wait_for 5 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port "$S") CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"sealed\":true'" \
  || fail "the laggard n$S is still unsealed: $(node_status "$S")"
kill -0 "$(npid "$S")" || fail "the laggard crashed"
node_status "$S" | grep -q '"seal_reason":"missed the keyring upgrade to term 4' \
  || fail "the laggard's status does not say why it sealed: $(node_status "$S")"
# Asked directly, it is redirected to the active or says why it is sealed.
set +e; out=$(ncli "$S" kv get before/x --field v 2>&1); rc=$?; set -e
[ "$rc" = 0 ] && [ "$out" = 1 ] || echo "$out" | grep -q "sealed: it missed the keyring upgrade to term 4" \
  || fail "a request to the sealed laggard neither redirected nor said why (exit $rc): $out"
pass "the laggard n$S sealed itself on resume, with the log line and the reason in status (a request: ${out})"
unseal_node "$S" 1 2
wait_for 10 term_is "$S" 4 || fail "unsealed again, n$S is not at term 4"
pass "unsealed again, n$S follows at term 4"

# ---- 3. a new leader lacking the active term refuses to serve -------------------------
# n$S's stored keyring is replaced by its term-1 copy (as a store restored
# from a stale file backup would hold): core/root-key is under term 4.
B=$S; C=$T
freeze "$B"
printf 'core/keyring\n%s\n' "$(echo "$OLD_KEYRING" | sed 's/../\\&/g')" \
  | timeout 10 mdb_load -T -s data "$WORK/n$B/data" || fail "mdb_load into n$B's store"
thaw "$B"
# Only n$B may take over: n$C frozen (it stops reporting), then step down.
sleep 1.5
freeze "$C"
sleep 4 # past the 3 poll intervals (+0.5 s) in which step-down counts a member as recent
ncli "$A" operator raft step-down >/dev/null 2>&1 || fail "step-down to n$B: $(ncli "$A" operator raft step-down 2>&1)"
wait_for 15 grep -q "this node is the raft leader but refuses to serve as active: this node lacks the active keyring term 4 (its keyring ends at term 1)" "$WORK/n$B.log" \
  || fail "n$B did not refuse to serve as active"
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port "$B") CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"sealed\":true'" \
  || fail "n$B did not seal itself: $(node_status "$B")"
node_status "$B" | grep -q '"seal_reason":"refused to serve as active: this node lacks the active keyring term 4' \
  || fail "n$B's status does not say why it refused: $(node_status "$B")"
A2=$(active_node 15) || fail "nobody active after n$B refused"
[ "$A2" = "$A" ] || fail "n$A2 active, expected n$A to take over again"
thaw "$C"
for k in before during after mid late; do
  ncli "$A2" kv get "$k/x" --field v >/dev/null || fail "read $k/x on n$A2 after the refusal"
done
grep -q "no decryption key\|no key for term" "$WORK/n$B.log" && fail "n$B failed on reads instead of refusing"
pass "n$B, leading with a keyring lacking term 4, refused to serve, sealed itself; n$A2 took over and serves every value"

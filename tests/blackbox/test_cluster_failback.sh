#!/usr/bin/env bash
# Caches after a failback (issue 10, finding 5): a token revoked and a
# policy deleted through another active are refused by the old active the
# moment it serves again.  Before, its token and policy caches were reset
# only by its poll after becoming active, while it already served as soon as
# raft made it leader: the revoked token worked again for up to a poll
# interval.  POLL_MS is long here so that window would be wide.
. "$(dirname "$0")/lib.sh"
POLL_MS=3000 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 15 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node"
ROOT=$TOKEN

ncli "$A" kv put c/s v=top-secret >/dev/null
echo '{"rules":[{"path":"c/*","capabilities":["read"]}]}' | ncli "$A" policy write rp - >/dev/null
echo '{"rules":[{"path":"c/*","capabilities":["read"]}]}' | ncli "$A" policy write rp2 - >/dev/null
T1=$(ncli "$A" token create --policy rp --format json | json token)
T2=$(ncli "$A" token create --policy rp2 --format json | json token)
[ -n "$T1" ] && [ -n "$T2" ] || fail "token create"
# Used on A, so A's caches hold both tokens and both policies.
for T in "$T1" "$T2"; do
  [ "$(TOKEN=$T ncli "$A" kv get c/s --field v)" = top-secret ] || fail "token cannot read on n$A"
done

# Freeze A: another node takes over.
kill -STOP "$(eval echo "\$NPID_$A")"
L=""
for k in $(seq 1 300); do
  for i in 1 2 3; do
    [ "$i" = "$A" ] && continue
    [ "$(ha_mode "$i")" = active ] && { L=$i; break 2; }
  done
  sleep 0.05
done
[ -n "$L" ] || { kill -CONT "$(eval echo "\$NPID_$A")"; fail "no new active while n$A is frozen"; }
N=$(( 6 - A - L ))
ncli "$L" token revoke "$T1" >/dev/null || fail "revoke via n$L"
ncli "$L" policy delete rp2 >/dev/null || fail "policy delete via n$L"
kill -CONT "$(eval echo "\$NPID_$A")"

# A follows again and applies both changes to its store (checked on disk).
h1=$(printf '%s' "$T1" | sha256sum | cut -d' ' -f1)
wait_for 20 sh -c "mdb_dump -s data -p '$WORK/n$A/data' 2>/dev/null | grep -q 'core/policy/rp\$' && \
  ! mdb_dump -s data -p '$WORK/n$A/data' 2>/dev/null | grep -q 'core/policy/rp2\$\|$h1'" \
  || fail "n$A did not apply the revoke and the policy delete"
pass "n$A (frozen) applied the revoke and policy delete made through n$L"

# Fail back to A: n$N stops, n$L seals and hands leadership to the only
# unsealed member left.
stop_node "$N"
TOKEN=$ROOT ncli "$L" operator seal >/dev/null || fail "seal n$L"
for k in $(seq 1 600); do [ "$(ha_mode "$A")" = active ] && break; sleep 0.02; done
[ "$(ha_mode "$A")" = active ] || fail "n$A did not become active again"
# The very first requests once it says active.
set +e
o1=$(TOKEN=$T1 ncli "$A" kv get c/s --field v 2>&1); r1=$?
o2=$(TOKEN=$T2 ncli "$A" kv get c/s --field v 2>&1); r2=$?
set -e
[ $r1 -ne 0 ] && echo "$o1" | grep -qi "permission denied" || fail "revoked token served by n$A after failback: $o1"
[ $r2 -ne 0 ] && echo "$o2" | grep -qi "permission denied" || fail "token of a deleted policy served by n$A after failback: $o2"
pass "after failing back, n$A refuses the revoked token and the deleted policy at once"
[ "$(TOKEN=$ROOT ncli "$A" kv get c/s --field v)" = top-secret ] || fail "root cannot read on n$A"
pass "n$A serves valid tokens"

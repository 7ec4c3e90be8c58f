#!/usr/bin/env bash
# Review finding (session 4): a freshly initialized store had no policy
# namespace marker, so the first request after its first unseal started a
# "migration" of zero policies, and a policy write as that first request
# (or any until the migration committed) failed with RETRY "stored
# policies are being migrated to separate namespaces": `operator unseal`
# then `policy write`, the first thing an operator does, failed every time.
# A fresh store is namespaced from its init (the marker is in the init
# transaction); a store from before namespaces is still migrated
# (test_policy_ns.sh).
. "$(dirname "$0")/lib.sh"
start_server a
cli a operator init --key-shares 1 --key-threshold 1 --format json > "$WORK/init" || fail "init"
TOKEN=$(json root_token < "$WORK/init")
KEY=$(json_array unseal_keys_hex < "$WORK/init")
cli a operator unseal "$KEY" >/dev/null || fail "unseal"
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' > "$WORK/p.json"
out=$(cli a policy write p "$WORK/p.json" 2>&1) || fail "the first request after the first unseal, a policy write: $out"
cli a policy read p >/dev/null || fail "policy read"
grep -q "policies: migrating" "$WORK/a.log" && fail "a fresh store was migrated: $(grep policies: "$WORK/a.log")"
pass "a fresh store: the first policy write after unseal succeeds, nothing to migrate"
# After a restart too (the marker is stored).
stop_server a
start_server a
cli a operator unseal "$KEY" >/dev/null || fail "unseal after restart"
cli a policy write q "$WORK/p.json" >/dev/null || fail "policy write after restart"
grep -q "policies: migrating" "$WORK/a.log" && fail "migrated after a restart"
pass "and after a restart"

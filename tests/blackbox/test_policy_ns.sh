#!/usr/bin/env bash
# Separate namespaces for secrets and operator actions (issue 12):
#  - a policy's "operator" rules (sys/...) never decide a secret, even one
#    stored at the path sys/x; its "rules" never decide an operator action;
#  - sudo among secret rules is refused with a clear error (it used to be
#    how an operator rule was written, and would now grant nothing);
#  - a store written by the server before namespaces (a real one, made by
#    that server: tests/blackbox/fixtures/policy_v1_store.mdbdump) is
#    migrated at unseal in one transaction; its policies keep their operator
#    rights, its sys/* sudo rule no longer decides the secret sys/x, and
#    the migration survives a restart (it runs once).
. "$(dirname "$0")/lib.sh"
command -v mdb_load >/dev/null || { echo "skip: mdb_load (lmdb-utils) missing"; exit 77; }
FIX="$TESTS_DIR/blackbox/fixtures"

# ---- 1: a fresh server
start_server a
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
TOKEN=$ROOT cli a kv put sys/x v=under-sys >/dev/null || fail "kv put sys/x"
echo '{"operator":[{"path":"sys/*","capabilities":["sudo"]}]}' \
  | TOKEN=$ROOT cli a policy write ops - >/dev/null || fail "policy write ops"
OPS=$(TOKEN=$ROOT cli a token create --policy ops --format json | json token)
[ -n "$OPS" ] || fail "token create ops"
TOKEN=$OPS expect_err "permission denied" cli a kv get sys/x
TOKEN=$OPS expect_err "permission denied" cli a kv put sys/x v=overwritten
TOKEN=$OPS cli a operator key-status >/dev/null || fail "sudo on sys/* does not allow key-status"
pass "an operator sys/* sudo rule does not grant the secret sys/x (but allows operator actions)"

# sudo among secret rules: refused, naming the fix.
echo '{"rules":[{"path":"sys/*","capabilities":["sudo"]}]}' > "$WORK/old.json"
TOKEN=$ROOT expect_err 'sudo is an operator capability: put the rule in "operator"' \
  cli a policy write old "$WORK/old.json"
# A secret rule on sys/* reads the secret and grants no operator action.
echo '{"rules":[{"path":"sys/*","capabilities":["read"]}]}' \
  | TOKEN=$ROOT cli a policy write reader - >/dev/null || fail "policy write reader"
RD=$(TOKEN=$ROOT cli a token create --policy reader --format json | json token)
[ "$(TOKEN=$RD cli a kv get sys/x -field v)" = "under-sys" ] || fail "secret rule sys/* cannot read sys/x"
TOKEN=$RD expect_err "permission denied" cli a operator key-status
TOKEN=$RD expect_err "permission denied" cli a operator seal
pass "secret rules decide secrets only; sudo among them is refused"

# ---- 2: a store from before namespaces
# shellcheck disable=SC1091
. "$FIX/policy_v1_store.creds"   # KEY, ROOT, OT (token with policy oldadmin)
PORT_b=$(next_port)
write_config b "$PORT_b"
mdb_load -f "$FIX/policy_v1_store.mdbdump" "$WORK/b/data" 2>/dev/null || fail "mdb_load"
chmod 600 "$WORK/b/data/"*.mdb
start_server b
echo "$KEY" > "$WORK/b.keys"
unseal_with b 1
for i in $(seq 1 100); do grep -q "policies: migrated" "$WORK/b.log" && break; sleep 0.05; done
grep -q "policies: migrating 1 stored policies" "$WORK/b.log" || fail "no migration logged"
grep -q "policies: migrated to separate" "$WORK/b.log" || fail "migration not committed"
check_old() {
  TOKEN=$OT cli b operator key-status >/dev/null || fail "old sys/* sudo policy lost its operator rights"
  [ "$(TOKEN=$OT cli b kv get app/y -field v)" = "app-secret" ] || fail "old policy cannot read app/y"
  # Before: "permission denied: kv-get on sys/x" (its sys/* sudo rule decided the secret).
  [ "$(TOKEN=$OT cli b kv get sys/x -field v)" = "sys-secret" ] \
    || fail "the old sys/* sudo rule still decides the secret sys/x"
  TOKEN=$ROOT cli b policy read oldadmin --format json > "$WORK/doc.json" || fail "policy read"
  grep -q 'operator' "$WORK/doc.json" || fail "stored document not migrated: $(cat "$WORK/doc.json")"
}
check_old
pass "a pre-namespace policy: migrated at unseal, keeps its operator rights, no longer decides sys/x"

stop_server b
start_server b
unseal_with b 1
check_old
[ "$(grep -c "policies: migrating" "$WORK/b.log")" = 1 ] || fail "migrated twice"
echo '{"operator":[{"path":"sys/rotate","capabilities":["sudo"]}]}' \
  | TOKEN=$ROOT cli b policy write rot - >/dev/null || fail "policy write after migration"
pass "the migration survives a restart and runs once"

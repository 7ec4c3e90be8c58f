#!/usr/bin/env bash
# Token accessors (issue 13): the audit log names a token by its accessor,
# so an operator must be able to act on one.  `custos token lookup
# --accessor`, `token revoke --accessor`, Vault's auth/token/lookup-accessor
# and revoke-accessor (curl and python3-hvac), sudo required (an accessor is
# never "self"), bad input refused with a clear error.
. "$(dirname "$0")/lib.sh"
start_server a "audit = { file = \"$WORK/audit.log\"; };"
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
echo '{"rules":[{"path":"app/*","capabilities":["read","write"]}]}' | cli a policy write app - >/dev/null ||
  fail "policy write"
new_token() { cli a token create --policy app --format json; }
J1=$(new_token); T1=$(echo "$J1" | json token); A1=$(echo "$J1" | json accessor)
J2=$(new_token); T2=$(echo "$J2" | json token); A2=$(echo "$J2" | json accessor)
[ -n "$T1" ] && [ -n "$A1" ] && [ -n "$T2" ] && [ -n "$A2" ] || fail "token create: $J1"
TOKEN=$T1 cli a kv put app/x v=1 >/dev/null || fail "T1 cannot write"
# The audit log shows the accessor of the token that made a request.
grep -q "\"accessor\":\"$A1\".*\"operation\":\"kv-put\"" "$WORK/audit.log" || fail "no accessor in the audit log"

out=$(cli a token lookup --accessor "$A1" --format json) || fail "lookup --accessor: $out"
[ "$(echo "$out" | json accessor)" = "$A1" ] || fail "lookup --accessor: $out"
echo "$out" | grep -q '"app"' || fail "lookup --accessor lacks the policy: $out"
echo "$out" | grep -qF "$T1" && fail "lookup --accessor shows the token itself: $out"
pass "token lookup --accessor: $(echo "$out" | head -c 160)"

# A token without sudo: an accessor is never "self".
TOKEN=$T2 expect_err "permission denied" cli a token lookup --accessor "$A1"
TOKEN=$T2 expect_err "permission denied" cli a token revoke --accessor "$A1"
TOKEN=$T1 cli a kv get app/x >/dev/null || fail "T1 revoked by a token without sudo"
pass "without sudo: lookup and revoke by accessor refused"

usage_err() { # SUBSTRING cmd...: a usage error (exit 2) naming SUBSTRING
  local want=$1 out rc; shift
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ "$rc" = 2 ] || fail "exit $rc (want 2): $* ($out)"
  case "$out" in *"$want"*) ;; *) fail "'$want' not in: $out" ;; esac
}
usage_err "give one of" cli a token revoke "$T1" --accessor "$A1"
usage_err "not both" cli a token lookup "$T1" --accessor "$A1"
expect_err "no token with accessor" cli a token lookup --accessor 0123456789abcdef01234567
long=$(head -c 300 /dev/zero | tr '\0' a)
expect_err "accessor" cli a token revoke --accessor "$long"
pass "bad input: both given, unknown and oversized accessors refused"

cli a token revoke --accessor "$A1" >/dev/null || fail "revoke --accessor"
TOKEN=$T1 expect_err "permission denied" cli a kv get app/x
expect_err "no token with accessor" cli a token lookup --accessor "$A1"
pass "token revoke --accessor: the token stops working at once"

# HTTP (Vault's endpoints) with curl.
U="https://127.0.0.1:$PORT_a/v1/auth/token"
hc() { curl -sS --cacert "$WORK/tls/ca.crt" -o "$WORK/b" -w '%{http_code}' -H "X-Vault-Token: $ROOT" "$@"; }
[ "$(hc -X POST -d "{\"accessor\":\"$A2\"}" "$U/lookup-accessor")" = 200 ] || fail "lookup-accessor: $(cat "$WORK/b")"
grep -q "\"accessor\":\"$A2\"" "$WORK/b" || fail "lookup-accessor body: $(cat "$WORK/b")"
grep -qF "$T2" "$WORK/b" && fail "lookup-accessor shows the token: $(cat "$WORK/b")"
[ "$(hc -X POST -d '{}' "$U/lookup-accessor")" = 400 ] || fail "lookup-accessor without accessor: $(cat "$WORK/b")"
[ "$(hc -X POST -d '{"accessor":"a\u0000b"}' "$U/lookup-accessor")" = 400 ] || fail "NUL in accessor: $(cat "$WORK/b")"
[ "$(hc -X POST -d '{"accessor":"nope"}' "$U/revoke-accessor")" = 404 ] || fail "revoke-accessor unknown: $(cat "$WORK/b")"
[ "$(hc -X POST -d "{\"accessor\":\"$A2\"}" "$U/revoke-accessor")" = 204 ] || fail "revoke-accessor: $(cat "$WORK/b")"
TOKEN=$T2 expect_err "permission denied" cli a kv get app/x
pass "HTTP lookup-accessor 200, revoke-accessor 204 (token dead), missing 400, NUL 400, unknown 404"

# python3-hvac, as a user of it would write it.
if /usr/bin/python3 -c 'import hvac' 2>/dev/null; then
  A3=$(new_token | json accessor)
  /usr/bin/python3 - "https://127.0.0.1:$PORT_a" "$WORK/tls/ca.crt" "$ROOT" "$A3" <<'PY' || fail "hvac accessor calls"
import sys, hvac
url, ca, root, acc = sys.argv[1:]
c = hvac.Client(url=url, token=root, verify=ca)
info = c.auth.token.lookup_accessor(acc)
assert info["data"]["accessor"] == acc, info
assert "app" in info["data"]["policies"], info
c.auth.token.revoke_accessor(acc)
try:
    c.auth.token.lookup_accessor(acc)
    sys.exit("lookup of a revoked accessor succeeded")
except hvac.exceptions.InvalidPath:
    pass
print("hvac: lookup_accessor, revoke_accessor ok")
PY
  pass "hvac lookup_accessor / revoke_accessor"
fi
stop_server a

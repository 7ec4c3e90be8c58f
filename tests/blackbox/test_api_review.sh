#!/usr/bin/env bash
# The request path reviewed as an attacker (issue 12, server/api/): each
# finding of that review, against the real server over raw frames:
#  - a request whose operation this server has no row for (a field number
#    unknown to the schema): refused at decode (BAD_REQUEST, logged like
#    every malformed frame), the server keeps serving; an operation the
#    schema has but the table lacks cannot be built: unit.test_authz checks
#    that every Request.op member has a row (dispatch would answer
#    BAD_REQUEST "unknown operation" all the same);
#  - a NUL in the path of a read (not only of a put): refused at decode,
#    nothing is read;
#  - a policy write racing a read on one connection (pipelined): the read
#    behind the write is decided by the written policy, every time (the
#    write's commit bumps the auth generation before its answer);
#  - a revoke racing a read whose policy is cached: the read behind the
#    revoke is refused.
. "$(dirname "$0")/lib.sh"

LISTENER_EXTRA='idle_timeout = "1s";' start_server a "audit = { file = \"$WORK/audit.log\"; };"
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
OK=0 PERMISSION_DENIED=5 BAD_REQUEST=1

# ---- an operation the table lacks
out=$(raw_send a "$(raw_frame "$(raw_request 7 250 "")")")
case $out in "id=7 code=$BAD_REQUEST "*"carries no operation"*|"id=0 code=$BAD_REQUEST "*"carries no operation"*) ;;
  *) fail "unknown operation: $out" ;; esac
kill -0 "$PID_a" || fail "custosd died on an unknown operation"
cli a status >/dev/null || fail "status after an unknown operation"
pass "an operation with no row: BAD_REQUEST, the server keeps serving"

# ---- a NUL in the path of a read
cli a kv put sys/x v=secret >/dev/null
out=$(raw_send a "$(raw_frame "$(raw_request 1 21 "$(pb_bytes 1 "$(pb_hex sys/x)00$(pb_hex y)")")")")
case $out in "id=0 code=$BAD_REQUEST "*NUL*) ;; *) fail "NUL in a kv get path: $out" ;; esac
pass "NUL in a read's path: refused at decode"

# ---- a policy write racing a read (pipelined on one connection)
grant='{"rules":[{"path":"app/*","capabilities":["read"]}]}'
deny='{"rules":[{"path":"app/*","capabilities":["deny"]}]}'
cli a kv put app/x v=1 >/dev/null
echo "$grant" | cli a policy write p - >/dev/null || fail "policy write"
T=$(cli a token create --policy p --format json | json token)
[ "$(TOKEN=$T cli a kv get app/x -field v)" = 1 ] || fail "token cannot read app/x"
for round in 1 2 3 4; do
  if [ $((round % 2)) = 1 ]; then doc=$deny want=$PERMISSION_DENIED; else doc=$grant want=$OK; fi
  w=$(TOKEN=$ROOT raw_request 1 44 "$(pb_str 1 p)$(pb_str 2 "$doc")")
  r=$(TOKEN=$T raw_request 2 21 "$(pb_str 1 app/x)")
  out=$(raw_send a "$(raw_frame "$w")" "$(raw_frame "$r")")
  echo "$out" | grep -q "^id=1 code=$OK " || fail "round $round: policy write: $out"
  echo "$out" | grep -q "^id=2 code=$want " || fail "round $round: the read behind the write: $out"
done
pass "policy write then read on one connection: the read sees the new policy (4 rounds)"

# ---- a revoke racing a read whose policy is cached
[ "$(TOKEN=$T cli a kv get app/x -field v)" = 1 ] || fail "read before revoke"
v=$(TOKEN=$ROOT raw_request 1 43 "$(pb_str 1 "$T")")
r=$(TOKEN=$T raw_request 2 21 "$(pb_str 1 app/x)")
out=$(raw_send a "$(raw_frame "$v")" "$(raw_frame "$r")")
echo "$out" | grep -q "^id=1 code=$OK " || fail "revoke: $out"
echo "$out" | grep -q "^id=2 code=$PERMISSION_DENIED " || fail "the read behind the revoke: $out"
pass "revoke then read on one connection: refused although the policy was cached"

# Every one of them is on record: the malformed frame in the log, the
# refused requests in the audit log.
grep -q 'malformed request from 127.0.0.1:[0-9]*: request carries no operation' "$WORK/a.log" \
  || fail "the unknown operation left no trace"
[ "$(grep -c '"operation":"kv-get".*"error"' "$WORK/audit.log")" -ge 3 ] || fail "refused reads not audited"
pass "refusals are audited"

#!/usr/bin/env bash
# Token lifetimes and revocation (security review, issue 10):
#  - a revoke is not undone by self-renews pipelined right behind it;
#  - a renew or create cannot make a token outlive token.max_ttl, and huge
#    values (the ones that overflowed the expiry) are refused with a clear
#    error, not wrapped into "never expires" or a crash;
#  - an empty revoke no longer revokes the caller's own token: --self does;
#  - a rotation interval too large for the age comparison is refused.
. "$(dirname "$0")/lib.sh"

: "${CUSTOS_TOKEN_RACE:?set CUSTOS_TOKEN_RACE to the token_race test client}"

start_server a "token = { max_ttl = \"2d\"; };"
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
echo '{"operator":[{"path":"sys/*","capabilities":["sudo"]}],"rules":[{"path":"*","capabilities":["read","write","list","delete"]}]}' \
  | cli a policy write admin - >/dev/null || fail "policy write"

# ---- 3: pipelined self-renews racing a revoke: 50 trials, 0 survivors
out=$(timeout 120 "$CUSTOS_TOKEN_RACE" "127.0.0.1:$PORT_a" "$WORK/tls/ca.crt" "$ROOT" 50 8 2>&1) \
  || fail "revoked tokens came back: $out"
echo "$out" | grep -q "^survivors: 0 of 50$" || fail "token_race: $out"
pass "revoke vs pipelined self-renews: $out"

# ---- 4: maximum TTL and overflow
now=$(date +%s)
WRAP=$(echo "2^64 - $now" | bc)   # now + WRAP wraps to 0 = "never expires"
R=$(cli a token create --policy admin --ttl 1h --renewable --format json | json token)
[ -n "$R" ] || fail "token create"
for inc in $WRAP 9223372036854775807 172801; do
  TOKEN=$R expect_err "exceeds the maximum" cli a token renew --increment "$inc"
done
# On the wire: BAD_REQUEST, also for 2^64-1 (which the CLI does not parse).
for inc in $WRAP 9223372036854775807 18446744073709551615; do
  got=$("$CUSTOS_TOKEN_RACE" --renew "127.0.0.1:$PORT_a" "$WORK/tls/ca.crt" "$R" "$inc") || fail "renew $inc: $got"
  case $got in BAD_REQUEST:*exceeds*) ;; *) fail "renew --increment $inc answered: $got" ;; esac
done
kill -0 "$PID_a" || fail "custosd died on a huge increment"
exp=$(TOKEN=$R cli a token lookup --format json | json expire_time)
[ -n "$exp" ] || fail "a refused renew changed the expiry: $exp"
# Wrapped into "never expires" (2^64 - now) by a third party's renew, too.
TOKEN=$ROOT expect_err "exceeds the maximum" cli a token renew "$R" --increment $WRAP
# In range: honoured, but never past issue time + max_ttl.
TOKEN=$R cli a token renew --increment 2d --format json > "$WORK/renew.json" || fail "renew 2d"
grep -q '"expire_time":""' "$WORK/renew.json" && fail "renew made the token permanent"
TOKEN=$ROOT cli a token lookup "$R" --format json > "$WORK/look.json" || fail "lookup"
# Times print as RFC 3339 UTC; issue and expire differ by at most max_ttl = 172800 s.
issue=$(date -d "$(json issue_time < "$WORK/look.json")" +%s)
expire=$(date -d "$(json expire_time < "$WORK/look.json")" +%s)
[ $((expire - issue)) -le 172800 ] || fail "renew extended past issue + max_ttl: $((expire - issue)) s"
[ $((expire - issue)) -ge 172790 ] || fail "an in-range renew was not honoured: $((expire - issue)) s"
# Create: a ttl above max_ttl or an overflowing one is refused; none means max_ttl.
for ttl in 172801 $WRAP 9223372036854775807; do
  TOKEN=$ROOT expect_err "exceeds the maximum" cli a token create --policy admin --ttl "$ttl"
done
# A non-root creator (sudo on sys/token/create) cannot mint a permanent token.
A=$(TOKEN=$ROOT cli a token create --policy admin --ttl 1h --format json | json token)
B=$(TOKEN=$A cli a token create --policy admin --format json | json token)
[ -n "$B" ] || fail "create without --ttl by a non-root token"
TOKEN=$B cli a token lookup --format json | grep -q '"expire_time":""' \
  && fail "a token created without --ttl by a non-root token never expires"
TOKEN=$A expect_err "exceeds the maximum" cli a token create --policy admin --ttl 3d
P=$(TOKEN=$ROOT cli a token create --policy root --format json | json token)
TOKEN=$P cli a token lookup --format json | grep -q '"expire_time":""' \
  || fail "a root token created without --ttl by root should not expire"
kill -0 "$PID_a" || fail "custosd died"
# Sibling: a rotation interval of 2^63 s read as a negative age limit (always
# due, a rotation every second); now refused.
TOKEN=$ROOT expect_err "interval must be" cli a operator rotate-config --interval 9223372036854775808
TOKEN=$ROOT cli a operator rotate-config --interval 3650d >/dev/null || fail "rotate-config --interval 3650d"
TOKEN=$ROOT cli a operator rotate-config --interval 0 >/dev/null || fail "rotate-config --interval 0"
pass "max TTL: huge increments and ttls refused (BAD_REQUEST), renews capped at issue + max_ttl"

# ---- 18: an empty revoke is refused; --self revokes the caller's own token
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' | TOKEN=$ROOT cli a policy write reader - >/dev/null
S=$(TOKEN=$ROOT cli a token create --policy reader --ttl 1h --format json | json token)
TOKEN=$ROOT expect_err "no token to revoke" "$CUSTOS_TOKEN_RACE" --empty-revoke "127.0.0.1:$PORT_a" "$WORK/tls/ca.crt" "$ROOT"
TOKEN=$ROOT cli a token lookup >/dev/null || fail "an empty revoke revoked the root token"
TOKEN=$ROOT expect_exit 2 cli a token revoke
grep -q -- "--self" "$WORK/err" || fail "usage error does not mention --self: $(cat "$WORK/err")"
TOKEN=$ROOT expect_exit 2 cli a token revoke --self "$S"
# A token without sudo may revoke itself (and only itself).
TOKEN=$S expect_err "permission denied" cli a token revoke "$ROOT"
TOKEN=$S cli a token revoke --self >/dev/null || fail "revoke --self"
TOKEN=$ROOT expect_err "no such token" cli a token lookup "$S"
TOKEN=$ROOT cli a token lookup >/dev/null || fail "root token gone"
pass "empty revoke refused, root kept; revoke --self revokes the caller"

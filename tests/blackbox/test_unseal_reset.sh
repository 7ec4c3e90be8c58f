#!/usr/bin/env bash
# Unseal reset (security review, issue 10, finding 15): anyone can reach a
# sealed node, so a reset must carry the nonce of the unseal in progress
# (else BAD_NONCE, shares kept), and every reset is logged with the client's
# address.  The CLI's --reset fetches the nonce from status itself.
. "$(dirname "$0")/lib.sh"

start_server a
init_server a 5 3
cli a operator unseal "$(key a 1)" >/dev/null || true
N=$(cli a status --format json | json nonce || true)
[ -n "$N" ] || fail "no unseal nonce in status"

expect_err "no nonce given" cli a operator unseal --reset --nonce ""
expect_err "nonce does not match" cli a operator unseal --reset --nonce "not-$N"
[ "$(cli a status --format json | json progress)" = 1 ] || fail "a refused reset discarded the shares"
grep -q "unseal reset from 127.0.0.1:[0-9]* refused: no nonce" "$WORK/a.log" || fail "refused reset (no nonce) not logged"
grep -q "unseal reset from 127.0.0.1:[0-9]* refused: wrong nonce" "$WORK/a.log" || fail "refused reset (wrong nonce) not logged"
# The wire code is BAD_NONCE (the CLI prints only the message).
: "${CUSTOS_TOKEN_RACE:?set CUSTOS_TOKEN_RACE to the token_race test client}"
for n in - "not-$N"; do
  got=$("$CUSTOS_TOKEN_RACE" --reset "127.0.0.1:$PORT_a" "$WORK/tls/ca.crt" "$n") || fail "reset: $got"
  case $got in BAD_NONCE:*) ;; *) fail "reset with nonce '$n' answered: $got" ;; esac
done
[ "$(cli a status --format json | json progress)" = 1 ] || fail "a refused reset discarded the shares"
pass "reset without or with a wrong nonce: BAD_NONCE, progress kept, logged with the address"

cli a operator unseal --reset --nonce "$N" >/dev/null || true
[ "$(cli a status --format json | json progress)" = 0 ] || fail "reset with the right nonce did not clear progress"
grep -q "unseal progress reset by 127.0.0.1:[0-9]* (1 shares discarded, nonce $N)" "$WORK/a.log" \
  || fail "reset not logged with the client address"
pass "reset with the ceremony's nonce clears progress, logged with the address"

# The CLI fetches the nonce itself; a new ceremony has a new nonce.
cli a operator unseal "$(key a 2)" >/dev/null || true
N2=$(cli a status --format json | json nonce || true)
[ -n "$N2" ] && [ "$N2" != "$N" ] || fail "new ceremony reused nonce $N"
expect_err "nonce does not match" cli a operator unseal --reset --nonce "$N"
cli a operator unseal --reset >/dev/null || true
[ "$(cli a status --format json | json progress)" = 0 ] || fail "--reset (nonce from status) did not clear progress"
# Nothing in progress: nothing to reset, not an error.
cli a operator unseal --reset >/dev/null || true
expect_exit 2 cli a operator unseal --nonce "$N2" "$(key a 1)"
pass "--reset fetches the nonce from status; an old nonce is refused; --nonce needs --reset"

unseal_with a 3 4 5
cli a status >/dev/null || fail "unseal after resets"
pass "unseal completes after resets"

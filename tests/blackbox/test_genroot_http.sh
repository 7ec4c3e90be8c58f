#!/usr/bin/env bash
# generate-root over the HTTP API (sys/generate-root/attempt and /update)
# with Debian's python3-hvac 0.11 (tests/blackbox/genroot_hvac.py); the
# minted token also works over the protobuf API.  Skipped (77) without hvac.
. "$(dirname "$0")/lib.sh"

/usr/bin/python3 -c 'import hvac' 2>/dev/null || { echo "SKIP: python3-hvac not installed"; exit 77; }
start_server a
init_server a 5 3
unseal_with a 1 2 3
TOKEN=$TOKEN cli a token revoke --self >/dev/null || fail "revoke the root token"
set +e
timeout 120 /usr/bin/python3 "$TESTS_DIR/blackbox/genroot_hvac.py" "https://127.0.0.1:$PORT_a" \
  "$WORK/tls/ca.crt" "$(key a 1)" "$(key a 2)" "$(key a 3)" > "$WORK/hvac.out" 2>&1
rc=$?
set -e
cat "$WORK/hvac.out"
[ $rc = 0 ] || fail "genroot_hvac.py exited $rc"
grep -q "generate-root attempt .* completed by 127.0.0.1" "$WORK/a.log" || fail "completion not logged"
pass "generate-root over HTTP with hvac"

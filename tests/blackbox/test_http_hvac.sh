#!/usr/bin/env bash
# The HTTP API with a real Vault client: Debian's python3-hvac 0.11 (run by
# Debian's own /usr/bin/python3) through init, unseal, tokens, policies,
# KV v1, rotation and seal (tests/blackbox/http_hvac.py).  Skipped (77)
# when python3-hvac is not installed.
. "$(dirname "$0")/lib.sh"

/usr/bin/python3 -c 'import hvac' 2>/dev/null || { echo "SKIP: python3-hvac not installed"; exit 77; }
start_server a
set +e
timeout 120 /usr/bin/python3 "$TESTS_DIR/blackbox/http_hvac.py" "https://127.0.0.1:$PORT_a" \
  "$WORK/tls/ca.crt" > "$WORK/hvac.out" 2>&1
rc=$?
set -e
cat "$WORK/hvac.out"
[ $rc = 0 ] || fail "hvac suite exited $rc"
grep -q "warning\|error" "$WORK/a.log" && grep "warning\|error" "$WORK/a.log" | grep -v "refused" | head -5 || true
pass "hvac suite"

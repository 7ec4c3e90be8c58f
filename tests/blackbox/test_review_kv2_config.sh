#!/usr/bin/env bash
# Review finding (session 4): a write of the versioned mount's settings
# (kv2_config set, POST /v1/kv/config) read the settings, changed the
# fields it was given and wrote the record back with no precondition, so
# two writers at once (two connections) each changing another setting
# both got 204 and one change was lost: a cas_required = true could be
# silently undone.  Now the write is checked against the record it read
# and built again when another write landed first.
. "$(dirname "$0")/lib.sh"
start_server a
init_server a 1 1
unseal_with a 1
timeout 120 /usr/bin/python3 "$TESTS_DIR/blackbox/kv2_config_race.py" "$PORT_a" "$WORK/tls/ca.crt" \
  "$TOKEN" 200 > "$WORK/race.out" 2>&1 || fail "concurrent config writes: $(cat "$WORK/race.out")"
pass "200 rounds of two concurrent config writes: $(cat "$WORK/race.out")"
out=$(cli a kv put --mount kv app/x a=1 2>&1) || true
cli a status >/dev/null || fail "server after the race"
grep -i "sanitizer\|runtime error" "$WORK/a.log" && fail "sanitizer report"
pass "no sanitizer report"

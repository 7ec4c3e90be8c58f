#!/usr/bin/env bash
# The server's own housekeeping never fails an operator's request: with the
# counter flush at its minimum interval (1 s, and a kv put in every step so
# each tick has counters to write), a loop of rotate and rekey steps on one
# connection sees no CONFLICT ("another key change is being committed").
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_PIPE:?set CUSTOS_PIPE to the custos-pipe binary}"

start_server a 'seal = { counter_flush_interval = "1s"; };'
init_server a 1 1
cli a operator unseal "$(key a 1)" >/dev/null

# Bounded: at most 6000 steps or 20 s; every tick meets the loop.
out=$(CUSTOS_ADDR="127.0.0.1:$PORT_a" CUSTOS_CACERT="$WORK/tls/ca.crt" CUSTOS_TOKEN="$TOKEN" \
      timeout 120 "$CUSTOS_PIPE" keyloop 6000 20 "$(key a 1)") || fail "key operations failed: $out"
echo "$out" | grep -q ", 0 failed requests" || fail "keyloop: $out"
steps=$(echo "$out" | sed -n 's/^keyloop: \([0-9]*\) steps.*/\1/p')
[ "$steps" -ge 50 ] || fail "only $steps steps ran: $out"
share=$(echo "$out" | sed -n 's/^share //p')
pass "$steps rotate+rekey steps beside 1 s counter flushes: no request failed"

# The loop left a consistent node: key status answers, no counter flush
# failed, writes still work.
cli a operator key-status --format json > "$WORK/ks" || fail "key-status after the loop"
grep -q "could not persist encryption counters" "$WORK/a.log" && fail "a counter flush failed"
cli a kv put after v=1 >/dev/null || fail "put after the loop"
kill -0 "$PID_a" || fail "server died"

# Automatic rotation (by operation count, due at every tick here) is
# housekeeping too: an operator's key change that meets it waits for it.
cli a operator rotate-config --max-operations 100 >/dev/null || fail "rotate-config"
out=$(CUSTOS_ADDR="127.0.0.1:$PORT_a" CUSTOS_CACERT="$WORK/tls/ca.crt" CUSTOS_TOKEN="$TOKEN" \
      timeout 120 "$CUSTOS_PIPE" keyloop 3000 20 "$share" 101) || fail "key operations failed: $out"
echo "$out" | grep -q ", 0 failed requests" || fail "keyloop with automatic rotations: $out"
autos=$(grep -c "automatic rotation: term" "$WORK/a.log" || true)
[ "$autos" -ge 3 ] || fail "only $autos automatic rotations happened: $out"
pass "operator rotations beside $autos automatic rotations: no CONFLICT"

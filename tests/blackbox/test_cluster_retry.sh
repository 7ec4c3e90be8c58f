#!/usr/bin/env bash
# RETRY on the wire and exit code 3 in the CLI: one node of a three-node
# cluster alone has no quorum, so no leader: every request it cannot answer
# itself is refused with RETRY ("no quorum: 1 of 3 members reachable ..."),
# nothing is done, and the CLI exits 3.  Once a quorum
# is up the same command succeeds.
. "$(dirname "$0")/lib.sh"
ELECTION_MS=300 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

start_node 1
expect_exit 3 ncli 1 operator init --key-shares 1 --key-threshold 1
grep -q "^Error: no quorum: 1 of 3 members reachable (a majority is 2); retry when enough members are back$" "$WORK/err" \
  || fail "unexpected message: $(cat "$WORK/err")"
[ "$(node_status 1 | json initialized)" = false ] || fail "a refused init did something"
pass "no quorum: init gets RETRY, exit 3, nothing done"

start_node 2
wait_for 15 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader with two of three up"
ncli 1 operator init --key-shares 1 --key-threshold 1 >/dev/null || fail "init with a quorum"
pass "with a quorum the same command succeeds"

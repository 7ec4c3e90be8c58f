#!/usr/bin/env bash
# KV secrets through the CLI: round trips, list, delete, fields from stdin
# and files, binary-safe values; missing and wrong tokens; every operation
# that must be refused while sealed.
. "$(dirname "$0")/lib.sh"

start_server a
init_server a 3 2
ROOT=$TOKEN

# Sealed: every token operation is refused with "sealed".
for args in "kv get x" "kv put x a=b" "kv list" "kv delete x" "operator seal" \
            "operator rotate" "operator key-status" "operator rotate-config" \
            "operator rekey --status"; do
  expect_err "sealed" cli a $args
done
pass "sealed refusals"
unseal_with a 1 2

# Round trips.
cli a kv put app/db user=admin "password=p@ss word=x" >/dev/null || fail "put"
out=$(cli a kv get app/db --format json)
echo "$out" | grep -q '"user":"admin"' || fail "get json: $out"
echo "$out" | grep -q '"password":"p@ss word=x"' || fail "value with = and space: $out"
[ "$(cli a kv get app/db --field user)" = admin ] || fail "--field"
expect_err "not found" cli a kv get app/db --field nope
expect_err "no secret at app/none" cli a kv get app/none
printf 'from-stdin\nline2' | cli a kv put app/stdin v=- >/dev/null
[ "$(cli a kv get app/stdin --field v)" = "$(printf 'from-stdin\nline2')" ] || fail "stdin value"
head -c 3000 /dev/urandom > "$WORK/blob"
cli a kv put app/file blob=@"$WORK/blob" >/dev/null
cli a kv get app/file --field blob > "$WORK/blob.out"
cmp -s "$WORK/blob" "$WORK/blob.out" || fail "binary @file value did not round-trip"
# Overwrite replaces all fields.
cli a kv put app/db user=other >/dev/null
[ "$(cli a kv get app/db --format json)" = '{"data":{"user":"other"}}' ] || fail "overwrite"
pass "put/get round trips (stdin, @file, binary, overwrite)"

# JSON escaping of odd values.
cli a kv put app/quote 'q=he said "hi"\' >/dev/null
cli a kv get app/quote --format json | grep -qF '"q":"he said \"hi\"\\"' || fail "json escaping"

# List.
cli a kv put app/sub/one a=1 >/dev/null
cli a kv put app/sub/two a=2 >/dev/null
cli a kv put other a=1 >/dev/null
out=$(cli a kv list app --format json)
for k in db file quote stdin sub/; do echo "$out" | grep -q "\"$k\"" || fail "list lacks $k: $out"; done
echo "$out" | grep -q '"one"' && fail "list descended into sub/: $out"
out=$(cli a kv list "" --format json)
echo "$out" | grep -q '"app/"' && echo "$out" | grep -q '"other"' || fail "root list: $out"
pass "list with folders"

# Delete.
cli a kv delete app/db >/dev/null
expect_err "no secret at app/db" cli a kv get app/db
expect_err "no secret at app/db" cli a kv delete app/db
pass "delete"

# Bad paths and usage.
expect_err "path" cli a kv put /abs a=b
expect_err "path" cli a kv put a/../b a=b
expect_err "path" cli a kv get "a//b"
expect_exit 2 cli a kv put app/x
expect_exit 2 cli a kv put app/x novalue
expect_exit 2 cli a kv
pass "bad paths and usage errors"

# Tokens: missing and wrong.
TOKEN="" expect_err "permission denied" cli a kv get app/file
TOKEN="cs.wrongwrongwrong" expect_err "permission denied" cli a kv get app/file
TOKEN="" expect_err "permission denied" cli a operator seal
TOKEN="${ROOT}x" expect_err "permission denied" cli a operator rotate
cli a status >/dev/null || fail "a bad token sealed the server?"
pass "missing and wrong tokens refused"

# Many writes at once (group commit) are all acknowledged and readable.
pids=()
for i in $(seq 1 20); do cli a kv put "load/k$i" v="$i" >/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent put failed"; done
for i in $(seq 1 20); do [ "$(cli a kv get "load/k$i" --field v)" = "$i" ] || fail "load/k$i"; done
pass "20 concurrent writers"

#!/usr/bin/env bash
# Vault's raft snapshot endpoints over HTTP (GET/POST sys/storage/raft/snapshot,
# POST sys/storage/raft/snapshot-force) on custos's snapshot ops: save with
# curl, the CLI inspects and verifies the file, restore with curl brings the
# data back; corrupt and truncated bodies get 400 and change nothing; no
# token or no sudo: 403; a foreign snapshot is refused (400) and then
# forced; a restore onto an uninitialized server without a token; a body
# above the pre-auth limit on a connection whose token was accepted; the
# protobuf op refuses `whole`; then hvac 0.11's take_raft_snapshot,
# restore_raft_snapshot and force_restore_raft_snapshot.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
# hc ARGS...: "STATUS" of one curl request (body to $WORK/body, headers to $WORK/h).
hc() { timeout 30 curl -sS --cacert "$WORK/tls/ca.crt" -D "$WORK/h" -o "$WORK/body" -w '%{http_code}' "$@"; }

LISTENER_EXTRA='idle_timeout = "2s";' start_server a
init_server a 3 2
TOKEN_A=$TOKEN
unseal_with a 1 2
U="https://127.0.0.1:$PORT_a"
cli a kv put app/db password=before >/dev/null
cli a operator rotate >/dev/null

# ---- save with curl
st=$(hc -H "X-Vault-Token: $TOKEN_A" "$U/v1/sys/storage/raft/snapshot")
[ "$st" = 200 ] || fail "GET snapshot: $st $(cat "$WORK/body")"
tr -d '\r' < "$WORK/h" | grep -qi '^content-type: application/octet-stream$' || fail "content type: $(cat "$WORK/h")"
cp "$WORK/body" "$WORK/s1.snap"
size=$(stat -c %s "$WORK/s1.snap")
tr -d '\r' < "$WORK/h" | grep -qi "^content-length: $size$" || fail "content length: $(cat "$WORK/h")"
CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator snapshot inspect "$WORK/s1.snap" --format json > "$WORK/insp" \
  || fail "inspect of the HTTP snapshot"
[ "$(json threshold < "$WORK/insp")" = 2 ] && [ "$(json active_term < "$WORK/insp")" = 2 ] \
  && [ "$(json checksum_ok < "$WORK/insp")" = true ] || fail "inspect: $(cat "$WORK/insp")"
CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator snapshot verify "$WORK/s1.snap" "$(key a 1)" "$(key a 3)" \
  > "$WORK/out" || fail "verify: $(cat "$WORK/out")"
grep -q "root key, MAC and keyring (2 terms) verified" "$WORK/out" || fail "verify output: $(cat "$WORK/out")"
pass "GET sys/storage/raft/snapshot: 200, application/octet-stream, $size bytes; inspect and verify accept it"

# ---- no token, no sudo: 403
st=$(hc "$U/v1/sys/storage/raft/snapshot"); [ "$st" = 403 ] || fail "GET without token: $st"
grep -q '"errors":\["permission denied"\]' "$WORK/body" || fail "403 body: $(cat "$WORK/body")"
st=$(hc -X POST --data-binary @"$WORK/s1.snap" "$U/v1/sys/storage/raft/snapshot"); [ "$st" = 403 ] || fail "POST without token: $st"
st=$(hc -X POST --data-binary @"$WORK/s1.snap" "$U/v1/sys/storage/raft/snapshot-force"); [ "$st" = 403 ] || fail "force without token: $st"
echo '{"rules":[{"path":"*","capabilities":["read","write","list","delete"]}]}' \
  | cli a policy write rw - >/dev/null || fail "policy write"
RW=$(cli a token create --policy rw --ttl 1h --format json | json token)
[ -n "$RW" ] || fail "token create"
st=$(hc -H "X-Vault-Token: $RW" "$U/v1/sys/storage/raft/snapshot"); [ "$st" = 403 ] || fail "GET without sudo: $st"
st=$(hc -H "X-Vault-Token: $RW" -X POST --data-binary @"$WORK/s1.snap" "$U/v1/sys/storage/raft/snapshot")
[ "$st" = 403 ] || fail "POST without sudo: $st"
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X DELETE "$U/v1/sys/storage/raft/snapshot"); [ "$st" = 405 ] || fail "DELETE: $st"
st=$(hc -H "X-Vault-Token: $TOKEN_A" "$U/v1/sys/storage/raft/snapshot-force"); [ "$st" = 405 ] || fail "GET force: $st"
pass "no token / a token without sudo: 403 permission denied; DELETE and GET snapshot-force: 405"

# ---- more data, then refused bodies change nothing
cli a kv put app/db password=after >/dev/null
cli a kv put app/new v=1 >/dev/null
cp "$WORK/s1.snap" "$WORK/bad.snap"
printf '\xff' | dd of="$WORK/bad.snap" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
head -c $((size - 100)) "$WORK/s1.snap" > "$WORK/trunc.snap"
for f in bad trunc; do
  st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST --data-binary @"$WORK/$f.snap" "$U/v1/sys/storage/raft/snapshot")
  [ "$st" = 400 ] || fail "$f body: $st $(cat "$WORK/body")"
  tr -d '\r' < "$WORK/h" | grep -qi '^content-type: application/json$' || fail "$f: error content type"
  grep -q '"errors":\["' "$WORK/body" || fail "$f: error body $(cat "$WORK/body")"
done
grep -q 'checksum mismatch' "$WORK/body" || grep -q 'truncated\|corrupt' "$WORK/body" || fail "trunc message: $(cat "$WORK/body")"
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST "$U/v1/sys/storage/raft/snapshot"); [ "$st" = 400 ] || fail "empty body: $st"
[ "$(cli a kv get app/db --field password)" = after ] || fail "a refused body changed app/db"
[ "$(cli a kv get app/new --field v)" = 1 ] || fail "a refused body changed app/new"
cli a status >/dev/null || fail "sealed after refused bodies"
pass "corrupt, truncated and empty bodies: 400 with Vault's error body; nothing changed"

# ---- the protobuf op refuses `whole` (SnapshotSaveReq field 191 = 1)
raw=$(TOKEN=$TOKEN_A raw_send a "$(raw_frame "$(TOKEN=$TOKEN_A raw_request 7 60 "$(pb_uint 191 1)")")")
echo "$raw" | grep -q "only served over the HTTP API" || fail "protobuf whole: $raw"
pass "protobuf SnapshotSaveReq with whole: refused ($raw)"

# ---- restore with curl: 204, the data is back
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST --data-binary @"$WORK/s1.snap" "$U/v1/sys/storage/raft/snapshot")
[ "$st" = 204 ] || fail "restore: $st $(cat "$WORK/body")"
cli a status >/dev/null || fail "sealed after restoring its own snapshot"
[ "$(cli a kv get app/db --field password)" = before ] || fail "app/db not restored"
expect_err "no secret at" cli a kv get app/new
cli a kv put app/after v=ok >/dev/null || fail "write after restore"
pass "POST sys/storage/raft/snapshot: 204; the snapshot's data is back, app/new gone, writes work"

# ---- a foreign snapshot: 400, then snapshot-force
start_server b
init_server b 1 1
TOKEN_B=$TOKEN
TOKEN=$TOKEN_A
unseal_with b 1
UB="https://127.0.0.1:$PORT_b"
TOKEN=$TOKEN_B cli b kv put other/x v=from-b >/dev/null
st=$(hc -H "X-Vault-Token: $TOKEN_B" "$UB/v1/sys/storage/raft/snapshot"); [ "$st" = 200 ] || fail "save b: $st"
cp "$WORK/body" "$WORK/b.snap"
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST --data-binary @"$WORK/b.snap" "$U/v1/sys/storage/raft/snapshot")
[ "$st" = 400 ] || fail "foreign restore: $st $(cat "$WORK/body")"
grep -q "another installation" "$WORK/body" || fail "foreign message: $(cat "$WORK/body")"
[ "$(cli a kv get app/db --field password)" = before ] || fail "refused foreign restore changed a"
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST --data-binary @"$WORK/b.snap" "$U/v1/sys/storage/raft/snapshot-force")
[ "$st" = 204 ] || fail "snapshot-force: $st $(cat "$WORK/body")"
st=$(hc "$U/v1/sys/seal-status"); grep -q '"sealed":true' "$WORK/body" && grep -q '"t":1' "$WORK/body" \
  || fail "after force: $(cat "$WORK/body")"
cli a operator unseal "$(sed -n 1p "$WORK/b.keys")" >/dev/null || true
[ "$(TOKEN=$TOKEN_B cli a kv get other/x --field v)" = from-b ] || fail "b's data on a"
pass "foreign snapshot: 400 (another installation, nothing changed); snapshot-force: 204, sealed t=1, b's share and data"

# ---- restore onto an uninitialized server, no token
start_server c
UC="https://127.0.0.1:$PORT_c"
st=$(hc -X POST --data-binary @"$WORK/s1.snap" "$UC/v1/sys/storage/raft/snapshot")
[ "$st" = 204 ] || fail "uninitialized restore: $st $(cat "$WORK/body")"
st=$(hc "$UC/v1/sys/seal-status"); grep -q '"initialized":true' "$WORK/body" && grep -q '"sealed":true' "$WORK/body" \
  && grep -q '"t":2' "$WORK/body" || fail "c after restore: $(cat "$WORK/body")"
cp "$WORK/a.keys" "$WORK/c.keys"
TOKEN=$TOKEN_A unseal_with c 2 3
[ "$(TOKEN=$TOKEN_A cli c kv get app/db --field password)" = before ] || fail "c: app/db"
st=$(hc -X POST --data-binary @"$WORK/s1.snap" "$UC/v1/sys/storage/raft/snapshot"); [ "$st" = 403 ] || fail "c initialized, no token: $st"
pass "restore onto an uninitialized server without a token: 204, sealed with t=2, a's shares unseal; then 403 without a token"

# ---- a body above the pre-auth limit (64 KiB): on a connection whose token was accepted
TOKEN=$TOKEN_A
for i in $(seq 1 40); do echo "v=$(head -c 3000 /dev/urandom | base64 -w0)"; done > "$WORK/big.vals"
i=0; while read -r kv; do i=$((i+1)); cli c kv put "big/k$i" "$kv" >/dev/null; done < "$WORK/big.vals"
st=$(hc -H "X-Vault-Token: $TOKEN_A" "$UC/v1/sys/storage/raft/snapshot"); [ "$st" = 200 ] || fail "save big: $st"
cp "$WORK/body" "$WORK/big.snap"
bsize=$(stat -c %s "$WORK/big.snap")
[ "$bsize" -gt 65536 ] || fail "big snapshot only $bsize bytes"
cli c kv delete big/k1 >/dev/null
st=$(hc -H "X-Vault-Token: $TOKEN_A" -X POST --data-binary @"$WORK/big.snap" "$UC/v1/sys/storage/raft/snapshot")
[ "$st" = 413 ] || fail "big body on a fresh connection: $st"
codes=$(timeout 30 curl -sS --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $TOKEN_A" -o /dev/null -w '%{http_code} ' \
  "$UC/v1/auth/token/lookup-self" --next --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $TOKEN_A" -H 'Expect:' \
  -o /dev/null -w '%{http_code}' -X POST --data-binary @"$WORK/big.snap" "$UC/v1/sys/storage/raft/snapshot")
[ "$codes" = "200 204" ] || fail "big restore after lookup-self: $codes"
[ -n "$(cli c kv get big/k1 --field v)" ] || fail "big/k1 not restored"
pass "a $bsize-byte snapshot: 413 on a fresh connection, 204 once the token was accepted on it (like frames)"

# ---- hvac 0.11
if /usr/bin/python3 -c 'import hvac' 2>/dev/null; then
  timeout 120 /usr/bin/python3 - "$UC" "$WORK/tls/ca.crt" "$TOKEN_A" "$WORK/b.snap" > "$WORK/hvac.out" 2>&1 <<'PY' || { cat "$WORK/hvac.out"; fail "hvac"; }
import sys, hvac
url, ca, token, foreign = sys.argv[1:5]
c = hvac.Client(url=url, token=token, verify=ca)
r = c.sys.take_raft_snapshot()
snap = r.content
assert r.status_code == 200 and snap[:4] != b'{"er', (r.status_code, snap[:80])
c.secrets.kv.v1.create_or_update_secret(path='hv/x', secret={'v': 'later'})
r = c.sys.restore_raft_snapshot(snap)
assert r.status_code == 204, r.status_code
try:
    c.secrets.kv.v1.read_secret(path='hv/x')
    raise SystemExit('hv/x survived the restore')
except hvac.exceptions.InvalidPath:
    pass
try:
    c.sys.restore_raft_snapshot(open(foreign, 'rb').read())
    raise SystemExit('foreign restore accepted')
except hvac.exceptions.InvalidRequest as e:
    assert 'another installation' in str(e), str(e)
r = c.sys.force_restore_raft_snapshot(open(foreign, 'rb').read())
assert r.status_code == 204, r.status_code
assert c.sys.is_sealed()
print('hvac ok: %d-byte snapshot' % len(snap))
PY
  pass "hvac: take_raft_snapshot, restore_raft_snapshot (data back), foreign refused (InvalidRequest), force_restore_raft_snapshot (sealed): $(cat "$WORK/hvac.out")"
else
  echo "# hvac not installed: its part skipped"
fi

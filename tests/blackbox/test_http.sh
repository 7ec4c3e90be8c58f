#!/usr/bin/env bash
# The HTTP API with curl and raw bytes: protocol sniffing on the TLS port,
# sys/health codes and overrides (also HEAD), Vault's error bodies and
# status codes, the three LIST forms, Bearer tokens, keep-alive, pipelining,
# chunked bodies, and hostile input: oversized heads and bodies, slow-loris
# (408), smuggling (Content-Length twice, with Transfer-Encoding), invalid
# UTF-8 and NUL in JSON, plain-text HTTP on the TLS port; KV v2 on the kv/
# mount (data, metadata, delete/undelete/destroy, config, Vault's bodies).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
start_server a
U="https://127.0.0.1:$PORT_a"
# hc ARGS...: "STATUS BODY" of one curl request (headers to $WORK/h).
hc() { curl -sS --cacert "$WORK/tls/ca.crt" -D "$WORK/h" -o "$WORK/b" -w '%{http_code}' "$@"; echo " $(cat "$WORK/b")"; }
# is STATUS ARGS...: the request answers STATUS; prints the body.
is() { local want=$1; shift; local out; out=$(hc "$@"); [ "${out%% *}" = "$want" ] || fail "$* -> $out (want $want)"; echo "${out#* }"; }
raw() { /usr/bin/python3 "$TESTS_DIR/blackbox/http_raw.py" "$PORT_a" "$WORK/tls/ca.crt" "$@"; }
ctype() { tr -d '\r' < "$WORK/h" | sed -n 's/^[Cc]ontent-[Tt]ype: //p'; }

# ---- before init: health 501, seal-status, init status; protobuf on the same port
b=$(is 501 "$U/v1/sys/health")
echo "$b" | grep -q '"initialized":false' || fail "health body: $b"
for f in initialized sealed standby server_time_utc version cluster_name; do
  echo "$b" | grep -q "\"$f\":" || fail "health lacks $f: $b"
done
[ "$(ctype)" = application/json ] || fail "content type: $(ctype)"
is 200 "$U/v1/sys/health?uninitcode=200" >/dev/null
is 200 "$U/v1/sys/seal-status" | grep -q '"type":"shamir"' || fail "seal-status"
is 200 "$U/v1/sys/init" | grep -q '^{"initialized":false}$' || fail "init status"
pass "uninitialized: health 501 (uninitcode override), seal-status, init status"

b=$(is 200 -X PUT -d '{"secret_shares":3,"secret_threshold":2}' "$U/v1/sys/init")
ROOT=$(echo "$b" | json root_token)
K1=$(echo "$b" | json_array keys | sed -n 1p); K2=$(echo "$b" | json_array keys_base64 | sed -n 2p)
[ -n "$ROOT" ] && [ -n "$K1" ] && [ -n "$K2" ] || fail "init answer: $b"
is 400 -X PUT -d '{"secret_shares":3,"secret_threshold":2}' "$U/v1/sys/init" | grep -q 'already initialized' \
  || fail "second init"
out=$(cli a status --format json || true)
echo "$out" | grep -q '"sealed":true' || fail "protobuf status on the HTTP port: $out"
pass "init over HTTP; the CLI (protobuf) on the same port"

# ---- sealed
is 503 "$U/v1/sys/health" | grep -q '"sealed":true' || fail "sealed health"
is 200 "$U/v1/sys/health?sealedcode=200" >/dev/null
b=$(is 503 -H "X-Vault-Token: $ROOT" "$U/v1/secret/x")
[ "$b" = '{"errors":["Vault is sealed"]}' ] || fail "sealed body: $b"
is 400 -X PUT -d '{"key":"zz-not-hex-or-base64"}' "$U/v1/sys/unseal" | grep -q 'hex or base64' || fail "bad key"
is 200 -X PUT -d "{\"key\":\"$K1\"}" "$U/v1/sys/unseal" | grep -q '"progress":1' || fail "unseal 1"
is 200 -X PUT -d "{\"key\":\"$K2\"}" "$U/v1/sys/unseal" | grep -q '"sealed":false' || fail "unseal 2 (base64)"
pass "sealed: 503 bodies, sealedcode, unseal with hex then base64"

# ---- health codes and HEAD
is 200 "$U/v1/sys/health" | grep -q '"sealed":false' || fail "active health"
is 204 "$U/v1/sys/health?activecode=204" >/dev/null
[ ! -s "$WORK/b" ] || fail "204 with a body"
is 400 "$U/v1/sys/health?activecode=abc" >/dev/null
out=$(curl -sS --cacert "$WORK/tls/ca.crt" -I "$U/v1/sys/health?activecode=299" | tr -d '\r')
echo "$out" | grep -q '^HTTP/1.1 299' || fail "HEAD code: $out"
echo "$out" | grep -q '^Content-Length: [1-9]' || fail "HEAD length: $out"
is 200 "$U/v1/sys/leader" | grep -q '"ha_enabled":false' || fail "leader"
pass "health: 200, activecode, bad code 400, HEAD (status and length, no body), leader"

# ---- Vault's error conventions
b=$(is 403 "$U/v1/secret/x"); [ "$b" = '{"errors":["permission denied"]}' ] || fail "no token: $b"
[ "$(ctype)" = application/json ] || fail "403 content type"
is 403 -H "X-Vault-Token: cs.bogus" "$U/v1/secret/x" >/dev/null
b=$(is 404 -H "X-Vault-Token: $ROOT" "$U/v1/secret/none"); [ "$b" = '{"errors":[]}' ] || fail "404 body: $b"
is 404 -H "X-Vault-Token: $ROOT" "$U/v1/nope/x" >/dev/null
is 405 -X DELETE "$U/v1/sys/health" >/dev/null
is 405 -X PATCH -H "X-Vault-Token: $ROOT" "$U/v1/secret/x" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" -X PUT -d '{"a":' "$U/v1/secret/x" | grep -q 'parse JSON' || fail "bad json"
is 400 -H "X-Vault-Token: $ROOT" -X PUT -d '[1]' "$U/v1/secret/x" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" -X PUT -d '{"a":"1","a":"2"}' "$U/v1/secret/x" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" -X PUT -d '{"a":"x\u0000y"}' "$U/v1/secret/x" >/dev/null
printf '{"a":"\xff\xfe"}' > "$WORK/bad.json"
is 400 -H "X-Vault-Token: $ROOT" -X PUT --data-binary @"$WORK/bad.json" "$U/v1/secret/x" >/dev/null
printf '{"a":"b"}\0' > "$WORK/nul.json"
is 400 -H "X-Vault-Token: $ROOT" -X PUT --data-binary @"$WORK/nul.json" "$U/v1/secret/x" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" -H "X-Vault-Wrap-TTL: 60s" "$U/v1/secret/x" | grep -q wrapping || fail "wrap-ttl"
is 400 --path-as-is -H "X-Vault-Token: $ROOT" -X PUT -d '{"a":"b"}' "$U/v1/secret/bad/../path" >/dev/null
# A ttl whose groups sum past 2^64 (the old parser wrapped it to a short,
# valid-looking ttl); units out of order; both refused (common/duration.c).
big=$(printf '20000000000000d%.0s' $(seq 1 11))
is 400 -H "X-Vault-Token: $ROOT" -X POST -d "{\"policies\":[\"default\"],\"ttl\":\"$big\"}" "$U/v1/auth/token/create" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" -X POST -d '{"policies":["default"],"ttl":"30m1h"}' "$U/v1/auth/token/create" >/dev/null
pass "errors: 403 permission denied, 404 {\"errors\":[]}, 405, 400 (bad/duplicate-key/NUL/invalid-UTF-8 JSON, wrap-ttl, bad path)"

# ---- KV v1, Bearer, the three LIST forms, 204
is 204 -H "X-Vault-Token: $ROOT" -X PUT -d '{"pw":"s3cr3t"}' "$U/v1/secret/app/db" >/dev/null
[ ! -s "$WORK/b" ] || fail "204 with a body"
is 204 -H "Authorization: Bearer $ROOT" -X POST -d '{"k":"v"}' "$U/v1/secret/app/dir/x" >/dev/null
is 200 -H "Authorization: Bearer $ROOT" "$U/v1/secret/app/db" | grep -q '"data":{"pw":"s3cr3t"}' || fail "bearer read"
for form in "-X LIST $U/v1/secret/app" "$U/v1/secret/app?list=true" "$U/v1/secret/app/?list=True" "$U/v1/secret/app?list=1"; do
  b=$(is 200 -H "X-Vault-Token: $ROOT" $form)
  [ "$(echo "$b" | json_array keys | sort | tr '\n' ' ')" = "db dir/ " ] || fail "list $form: $b"
done
# A body and a URL that outgrow the first buffers, and a long header name.
long=$(head -c 30000 /dev/zero | tr '\0' x)
is 204 -H "X-Vault-Token: $ROOT" -H "X-$(head -c 100 /dev/zero | tr '\0' n): 1" -X PUT \
  -d "{\"v\":\"$long\"}" "$U/v1/secret/app/$(head -c 400 /dev/zero | tr '\0' p)" >/dev/null
[ "$(is 200 -H "X-Vault-Token: $ROOT" "$U/v1/secret/app/$(head -c 400 /dev/zero | tr '\0' p)" | json v)" = "$long" ] \
  || fail "30 KB value round trip"
is 204 -H "X-Vault-Token: $ROOT" -X DELETE "$U/v1/secret/app/$(head -c 400 /dev/zero | tr '\0' p)" >/dev/null
# Bodies above max_frame_bytes_preauth: 413 on a fresh connection, accepted
# once an authenticated request on the connection granted the larger limit.
printf '{"v":"%s"}' "$(head -c 100000 /dev/zero | tr '\0' y)" > "$WORK/100k.json"
is 413 -H "X-Vault-Token: $ROOT" -X PUT --data-binary @"$WORK/100k.json" "$U/v1/secret/app/big" >/dev/null
codes=$(curl -sS --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $ROOT" -H 'Expect:' -o /dev/null -w '%{http_code} ' \
  "$U/v1/secret/app/db" --next --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $ROOT" -H 'Expect:' -o /dev/null -w '%{http_code}' \
  -X PUT --data-binary @"$WORK/100k.json" "$U/v1/secret/app/big")
[ "$codes" = "200 204" ] || fail "100 KB body after an authenticated request: $codes"
is 204 -H "X-Vault-Token: $ROOT" -X DELETE "$U/v1/secret/app/big" >/dev/null
is 400 -H "X-Vault-Token: $ROOT" "$U/v1/secret/app?list=maybe" >/dev/null
is 404 -H "X-Vault-Token: $ROOT" -X LIST "$U/v1/secret/empty" >/dev/null
is 200 -H "X-Vault-Token: $ROOT" -X LIST "$U/v1/secret" | grep -q '"app/"' || fail "list root"
is 204 -H "X-Vault-Token: $ROOT" -X DELETE "$U/v1/secret/app/dir/x" >/dev/null
is 404 -H "X-Vault-Token: $ROOT" "$U/v1/secret/app/dir/x" >/dev/null
is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/mounts" | grep -q '"secret/":{"type":"kv"' || fail "mounts"
is 403 "$U/v1/sys/mounts" >/dev/null
is 200 "$U/v1/sys/internal/ui/mounts/secret/app/db" | grep -q '"version":"1"' || fail "ui mounts"
pass "kv v1: PUT/POST 204, Bearer, LIST method, ?list=true/True/1, 404 on empty, DELETE, mounts"

# ---- KV v2 (the kv/ mount): data, metadata, delete/undelete/destroy, config
T=(-H "X-Vault-Token: $ROOT")
b=$(is 200 "${T[@]}" -X POST -d '{"data":{"pw":"one"}}' "$U/v1/kv/data/app/db")
echo "$b" | grep -q '"data":{"created_time":"20[0-9-]*T[0-9:.]*Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}' \
  || fail "kv2 write answer: $b"
is 200 "${T[@]}" -X PUT -d '{"data":{"pw":"two"},"options":{"cas":1}}' "$U/v1/kv/data/app/db" | grep -q '"version":2' \
  || fail "kv2 cas write"
b=$(is 400 "${T[@]}" -X PUT -d '{"data":{"pw":"x"},"options":{"cas":1}}' "$U/v1/kv/data/app/db")
[ "$b" = '{"errors":["check-and-set parameter did not match the current version (1 given, current 2)"]}' ] \
  || fail "cas mismatch body: $b"
b=$(is 200 "${T[@]}" "$U/v1/kv/data/app/db")
echo "$b" | grep -q '"data":{"data":{"pw":"two"},"metadata":{"created_time":"[^"]*","custom_metadata":null,"deletion_time":"","destroyed":false,"version":2}}' \
  || fail "kv2 read: $b"
is 200 "${T[@]}" "$U/v1/kv/data/app/db?version=1" | grep -q '"pw":"one"' || fail "?version=1"
is 200 "${T[@]}" "$U/v1/kv/data/app/db?version=0" | grep -q '"pw":"two"' || fail "?version=0 is current"
is 404 "${T[@]}" "$U/v1/kv/data/app/db?version=3" >/dev/null
for bad in -1 abc 18446744073709551616 1.5 "" "1&version=2"; do
  is 400 "${T[@]}" "$U/v1/kv/data/app/db?version=$bad" >/dev/null
done
for body in '{"data":{"pw":"x"},"options":{"cas":-1}}' '{"data":{"pw":"x"},"options":{"cas":18446744073709551616}}' \
            '{"data":{"pw":"x"},"options":{"cas":1.5}}' '{"data":{"pw":1}}' '{"data":"x"}' '{}' \
            '{"data":{"pw":"x"},"options":[1]}' '{"data":{},"options":{}}'; do
  is 400 "${T[@]}" -X PUT -d "$body" "$U/v1/kv/data/app/db" >/dev/null
done
is 400 --path-as-is "${T[@]}" -X PUT -d '{"data":{"a":"b"}}' "$U/v1/kv/data/a/../b" >/dev/null
is 400 "${T[@]}" -X PUT -d '{"data":{"a":"b"}}' "$U/v1/kv/data/a%00b" >/dev/null
# Soft delete of the current version: 204; the read is Vault's 404 with the metadata.
is 204 "${T[@]}" -X DELETE "$U/v1/kv/data/app/db" >/dev/null
b=$(is 404 "${T[@]}" "$U/v1/kv/data/app/db")
echo "$b" | grep -q '"data":{"data":null,"metadata":{"created_time":"[^"]*","custom_metadata":null,"deletion_time":"20[^"]*Z","destroyed":false,"version":2}}' \
  || fail "deleted version body: $b"
is 204 "${T[@]}" -X POST -d '{"versions":[2]}' "$U/v1/kv/undelete/app/db" >/dev/null
is 200 "${T[@]}" "$U/v1/kv/data/app/db" | grep -q '"pw":"two"' || fail "undeleted"
is 204 "${T[@]}" -X PUT -d '{"versions":"1,2"}' "$U/v1/kv/delete/app/db" >/dev/null
is 404 "${T[@]}" "$U/v1/kv/data/app/db?version=1" >/dev/null
is 204 "${T[@]}" -X PUT -d '{"versions":[1]}' "$U/v1/kv/destroy/app/db" >/dev/null
is 404 "${T[@]}" "$U/v1/kv/data/app/db?version=1" | grep -q '"destroyed":true' || fail "destroyed body"
for body in '{}' '{"versions":[]}' '{"versions":[0]}' '{"versions":[-1]}' '{"versions":[1.5]}' \
            '{"versions":"1,,2"}' '{"versions":{"a":1}}' '{"versions":[18446744073709551616]}'; do
  is 400 "${T[@]}" -X POST -d "$body" "$U/v1/kv/undelete/app/db" >/dev/null
done
python3 -c 'print("{\"versions\":[" + ",".join(["1"]*1001) + "]}")' > "$WORK/manyv.json"
is 400 "${T[@]}" -X POST --data-binary @"$WORK/manyv.json" "$U/v1/kv/destroy/app/db" | grep -q 'at most 1000' \
  || fail "1001 versions"
is 405 "${T[@]}" "$U/v1/kv/delete/app/db" >/dev/null
# Metadata.
is 204 "${T[@]}" -X POST -d '{"max_versions":5,"cas_required":true,"delete_version_after":"1h30m","custom_metadata":{"owner":"ops"}}' \
  "$U/v1/kv/metadata/app/db" >/dev/null
b=$(is 200 "${T[@]}" "$U/v1/kv/metadata/app/db")
for f in '"cas_required":true' '"current_version":2' '"custom_metadata":{"owner":"ops"}' \
         '"delete_version_after":"1h30m0s"' '"max_versions":5' '"oldest_version":1' '"1":{"created_time":"[^"]*","deletion_time":"[^"]*","destroyed":true}'; do
  echo "$b" | grep -q "$f" || fail "metadata lacks $f: $b"
done
is 400 "${T[@]}" -X PUT -d '{"data":{"pw":"x"}}' "$U/v1/kv/data/app/db" | grep -q 'check-and-set parameter required' \
  || fail "cas_required"
b=$(is 200 "${T[@]}" -X PUT -d '{"data":{"pw":"three"},"options":{"cas":2}}' "$U/v1/kv/data/app/db")
echo "$b" | grep -q '"custom_metadata":{"owner":"ops"}' || fail "write answer custom_metadata: $b"
echo "$b" | grep -q '"deletion_time":"20' || fail "delete_version_after sets a deletion time: $b"
for body in '{"max_versions":-1}' '{"max_versions":1001}' '{"max_versions":"x"}' '{"cas_required":"yes"}' \
            '{"delete_version_after":"1y"}' '{"delete_version_after":-5}' '{"custom_metadata":{"a":1}}' \
            '{"custom_metadata":"x"}'; do
  is 400 "${T[@]}" -X POST -d "$body" "$U/v1/kv/metadata/app/db" >/dev/null
done
python3 -c 'import json; print(json.dumps({"custom_metadata": {"k%d" % i: "v" for i in range(10000)}}))' > "$WORK/cm.json"
# (above the pre-authentication body limit: sent after an authenticated request)
out=$(curl -sS --cacert "$WORK/tls/ca.crt" "${T[@]}" -H 'Expect:' -o /dev/null "$U/v1/kv/config" \
  --next --cacert "$WORK/tls/ca.crt" "${T[@]}" -H 'Expect:' -w ' %{http_code}' \
  -X POST --data-binary @"$WORK/cm.json" "$U/v1/kv/metadata/app/db")
echo "$out" | grep -q 'at most 64.* 400$' || fail "10k custom_metadata keys: $out"
python3 -c 'import json; print(json.dumps({"custom_metadata": {"k%d" % i: "v" for i in range(65)}}))' > "$WORK/cm65.json"
is 400 "${T[@]}" -X POST --data-binary @"$WORK/cm65.json" "$U/v1/kv/metadata/app/db" | grep -q 'at most 64' \
  || fail "65 custom_metadata keys"
printf '{"custom_metadata":{"k":"\xff"}}' > "$WORK/cmbad.json"
is 400 "${T[@]}" -X POST --data-binary @"$WORK/cmbad.json" "$U/v1/kv/metadata/app/db" >/dev/null
# LIST on metadata/, three forms; 404 when empty.
is 204 "${T[@]}" -X POST -d '{"max_versions":0,"cas_required":false}' "$U/v1/kv/metadata/app/db" >/dev/null
is 200 "${T[@]}" -X POST -d '{"data":{"a":"b"}}' "$U/v1/kv/data/app/dir/x" >/dev/null
for form in "-X LIST $U/v1/kv/metadata/app" "$U/v1/kv/metadata/app/?list=true"; do
  b=$(is 200 "${T[@]}" $form)
  [ "$(echo "$b" | json_array keys | sort | tr '\n' ' ')" = "db dir/ " ] || fail "kv2 list $form: $b"
done
is 404 "${T[@]}" -X LIST "$U/v1/kv/metadata/none" >/dev/null
for form in "-X LIST $U/v1/kv/metadata" "-X LIST $U/v1/kv/metadata/" "$U/v1/kv/metadata/?list=true"; do
  is 200 "${T[@]}" $form | grep -q '"app/"' || fail "kv2 list of the top level: $form"
done
is 405 "${T[@]}" -X LIST "$U/v1/kv/data/app" >/dev/null
is 204 "${T[@]}" -X DELETE "$U/v1/kv/metadata/app/db" >/dev/null
is 404 "${T[@]}" "$U/v1/kv/metadata/app/db" >/dev/null
is 404 "${T[@]}" "$U/v1/kv/data/app/db?version=3" >/dev/null
# Config, mounts.
is 204 "${T[@]}" -X POST -d '{"max_versions":7,"delete_version_after":"0s"}' "$U/v1/kv/config" >/dev/null
is 200 "${T[@]}" "$U/v1/kv/config" | grep -q '"data":{"cas_required":false,"delete_version_after":"0s","max_versions":7}' \
  || fail "config"
is 404 "${T[@]}" "$U/v1/kv/nope/x" >/dev/null
is 200 "${T[@]}" "$U/v1/sys/mounts" | grep -q '"kv/":{"type":"kv","description":"[^"]*","accessor":"","config":{[^}]*},"options":{"version":"2"}' \
  || fail "mounts kv/"
is 200 "$U/v1/sys/internal/ui/mounts/kv/app/db" | grep -q '"path":"kv/","type":"kv".*"options":{"version":"2"}' || fail "ui mounts kv"
is 200 "$U/v1/sys/internal/ui/mounts/secret" | grep -q '"version":"1"' || fail "ui mounts secret"
is 403 "$U/v1/kv/data/x" >/dev/null
pass "kv v2: data GET/PUT/POST/DELETE, ?version, cas, Vault's deleted-version 404, delete/undelete/destroy, metadata, LIST, config, mounts, bad input 400"

# ---- operator endpoints
is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/key-status" | grep -q '"term":1' || fail "key-status"
is 204 -H "X-Vault-Token: $ROOT" -X PUT "$U/v1/sys/rotate" >/dev/null
is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/key-status" | grep -q '"term":2' || fail "term 2"
is 204 -H "X-Vault-Token: $ROOT" -X POST -d '{"max_operations":1000000,"interval":"24h","enabled":true}' \
  "$U/v1/sys/rotate/config" >/dev/null
b=$(is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/rotate/config")
echo "$b" | grep -q '"interval":86400' && echo "$b" | grep -q '"max_operations":1000000' || fail "rotate config: $b"
is 403 -X PUT "$U/v1/sys/rotate" >/dev/null
b=$(is 200 -H "X-Vault-Token: $ROOT" -X PUT -d '{"secret_shares":2,"secret_threshold":2}' "$U/v1/sys/rekey/init")
NONCE=$(echo "$b" | json nonce); [ -n "$NONCE" ] || fail "rekey init: $b"
is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/rekey/init" | grep -q '"started":true' || fail "rekey status"
is 400 -H "X-Vault-Token: $ROOT" -X PUT -d "{\"key\":\"$K1\",\"nonce\":\"wrong\"}" "$U/v1/sys/rekey/update" >/dev/null
is 204 -H "X-Vault-Token: $ROOT" -X DELETE "$U/v1/sys/rekey/init" >/dev/null
is 200 -H "X-Vault-Token: $ROOT" "$U/v1/sys/rekey/init" | grep -q '"started":false' || fail "rekey cancel"
pass "operator: key-status, rotate, rotate/config, rekey init/status/update(bad nonce)/cancel"

# ---- keep-alive: two requests, one connection
curl -sS --cacert "$WORK/tls/ca.crt" "$U/v1/sys/health" "$U/v1/sys/seal-status" >/dev/null
for i in $(seq 1 40); do grep -q 'closed after 2 requests' "$WORK/a.log" && break; sleep 0.05; done
grep -q 'closed after 2 requests' "$WORK/a.log" || fail "keep-alive: no connection served 2 requests"
pass "keep-alive"

# ---- raw: pipelining, chunked, hostile input
out=$(raw "b'GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\nLIST /v1/secret/app HTTP/1.1\r\nX-Vault-Token: $ROOT\r\n\r\nGET /v1/sys/init HTTP/1.1\r\nConnection: close\r\n\r\n'")
[ "$(echo "$out" | grep -o 'HTTP/1.1 200' | wc -l)" = 3 ] || fail "pipelined: $out"
echo "$out" | tail -n 2 | grep -q '^{"initialized":true}$' || fail "pipeline order: $out"
echo "$out" | tail -n 1 | grep -q '^CLOSED' || fail "Connection: close: $out"
out=$(raw "b'PUT /v1/secret/chunked HTTP/1.1\r\nX-Vault-Token: $ROOT\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n6\r\n:\"bc\"}\r\n0\r\n\r\nGET /v1/secret/chunked HTTP/1.1\r\nX-Vault-Token: $ROOT\r\nConnection: close\r\n\r\n'")
echo "$out" | grep -q '^HTTP/1.1 204' && echo "$out" | grep -q '"data":{"a":"bc"}' || fail "chunked: $out"
pass "pipelining (3 requests, one write, in order) and a chunked body"

expect_close() { # WHAT STATUS raw-args...
  local what=$1 want=$2; shift 2
  local out; out=$(raw "$@")
  # No pipes into grep -q here: with pipefail, an early exit can fail the check.
  [[ "$out" == "HTTP/1.1 $want "* ]] || fail "$what: want $want, got: ${out:0:400}"
  grep -qi '^Connection: close' <<<"$out" || fail "$what: no Connection: close"
  [[ "${out##*$'\n'}" == CLOSED* ]] || fail "$what: not closed: ${out##*$'\n'}"
}
big=$(head -c 20000 /dev/zero | tr '\0' a)
expect_close "20 KB header" 431 "b'GET /v1/sys/health HTTP/1.1\r\nX-Big: $big\r\n\r\n'"
many=$(for i in $(seq 1 80); do printf 'X-H%d: v\\r\\n' "$i"; done)
expect_close "80 headers" 431 "b'GET /v1/sys/health HTTP/1.1\r\n$many\r\n'"
expect_close "5 KB target" 414 "b'GET /v1/secret/$(head -c 5000 /dev/zero | tr '\0' a) HTTP/1.1\r\n\r\n'"
expect_close "100 KB Content-Length before auth" 413 "b'PUT /v1/secret/x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n'"
expect_close "chunks above the limit" 413 "b'PUT /v1/secret/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n' + (b'8000\r\n' + b'a' * 0x8000 + b'\r\n') * 3"
expect_close "Content-Length + Transfer-Encoding" 400 "b'PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'"
expect_close "Content-Length twice" 400 "b'PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'"
expect_close "two tokens" 400 "b'GET /v1/secret/a HTTP/1.1\r\nX-Vault-Token: a\r\nAuthorization: Bearer b\r\n\r\n'"
expect_close "garbage method" 400 "b'BREW /pot HTTP/1.1\r\n\r\n'"
expect_close "NUL in the head" 400 "b'GET /v1/sys/health HTTP/1.1\r\nX-A: a\x00b\r\n\r\n'"
expect_close "slow-loris head (2 s handshake_timeout)" 408 "b'GET /v1/sys/health HTTP/1.1\r\nX-A: 1\r\n'" --trickle 0.2
expect_close "slow body" 408 "b'PUT /v1/secret/a HTTP/1.1\r\nContent-Length: 10\r\n\r\n{'" --wait 6
pass "hostile: 431 (size, count), 414, 413 (Content-Length, chunks), 400 (smuggling, tokens, method, NUL), 408 (slow head, slow body)"

# ---- plain-text HTTP on the TLS port: Go's 400, a clean close, no frame warning
out=$(curl -sS -i "http://127.0.0.1:$PORT_a/v1/sys/health" | tr -d '\r')
echo "$out" | grep -q '^HTTP/1.0 400' && echo "$out" | grep -q 'HTTP request to an HTTPS server' || fail "plain: $out"
grep -q 'plain-text HTTP request' "$WORK/a.log" || fail "plain-text not logged"
! grep -q 'oversized frame' "$WORK/a.log" || fail "an HTTP request was taken for a frame"
pass "plain-text HTTP on the TLS port: 400, clean close, no oversized-frame warning"

# The server survived all of it and still serves both protocols.
TOKEN=$ROOT cli a kv get app/db --field pw | grep -q s3cr3t || fail "protobuf after the hostile tests"
is 200 "$U/v1/sys/health" >/dev/null
kill -0 "$PID_a" || fail "custosd died"
pass "custosd alive, both protocols served"

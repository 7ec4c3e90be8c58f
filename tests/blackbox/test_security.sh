#!/usr/bin/env bash
# Tokens and policies, the audit log, client certificates, and a scan of
# every log and audit line for the secrets used.
. "$(dirname "$0")/lib.sh"

start_server a "audit = { file = \"$WORK/audit.log\"; };"
init_server a 3 2
ROOT=$TOKEN
unseal_with a 1 2
cli a kv put app/db password=s3cr3t-db-pw >/dev/null
cli a kv put app/admin key=adm1n-k3y >/dev/null
cli a kv put other/x v=0th3r-v4lue >/dev/null

# ---- process hardening (Linux /proc)
grep -q "^Max core file size *0 *0" "/proc/$PID_a/limits" || fail "core dumps not disabled: $(grep core "/proc/$PID_a/limits")"
locked=$(sed -n 's/^VmLck:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$PID_a/status")
if [ "${CUSTOS_SANITIZE:-0}" = 1 ]; then
  # ASan intercepts mlock() and makes it a no-op: nothing to measure here.
  pass "process hardening: core size 0 (locking not measurable under ASan)"
elif [ "${locked:-0}" -gt 0 ]; then
  pass "process hardening: core size 0, ${locked} kB of key memory locked"
else
  grep -q "could not be locked" "$WORK/a.log" || fail "no key memory locked and no warning logged"
  pass "process hardening: core size 0; memlock limit too low, and the server says so"
fi

# ---- the barrier's AES-GCM (docs/security.md): libsodium's AES-NI code on
# a CPU with AES-NI and PCLMUL, mbedTLS otherwise; the log says which.
if grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then want="libsodium (AES-NI)"; else want="mbedTLS"; fi
grep -qF "barrier: AES-256-GCM by $want" "$WORK/a.log" || fail "no 'barrier: AES-256-GCM by $want' in the log"
pass "barrier AES-GCM by $want, as the log says"
# TLS records: AES-256-GCM first where libsodium seals them (common/tls_gcm.h),
# and every other suite of the policy still works end to end, request and
# answer (curl is OpenSSL: the other side of the wire is not ours).
if grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then want=AES256-GCM; else want=AES128-GCM; fi
got=$(timeout 15 openssl s_client -connect "127.0.0.1:$PORT_a" -tls1_2 -CAfile "$WORK/tls/ca.crt" \
      </dev/null 2>/dev/null | sed -n 's/.*Cipher is \(.*\)/\1/p' | head -n1 || true)
case "$got" in *"$want"*) ;; *) fail "TLS suite '$got', expected one with $want";; esac
if command -v curl >/dev/null; then
  for c in ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-CHACHA20-POLY1305; do
    body=$(curl -sS --max-time 15 --cacert "$WORK/tls/ca.crt" --tls-max 1.2 --ciphers "$c" \
           -H "X-Vault-Token: $ROOT" "https://127.0.0.1:$PORT_a/v1/secret/app/db") \
      || fail "curl with $c failed"
    case "$body" in *s3cr3t-db-pw*) ;; *) fail "curl with $c: no secret in '$body'";; esac
  done
fi
pass "TLS: $got negotiated; AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305 each carry a request"
# SHA-256 (tokens, the audit log's HMACs): nettle, on the SHA extensions when the CPU has them.
if grep -qw sha_ni /proc/cpuinfo; then want="SHA extensions"; else want="C code"; fi
grep -qF "hashes: SHA-256 by nettle ($want)" "$WORK/a.log" || fail "no 'hashes: SHA-256 by nettle ($want)' in the log"
pass "SHA-256 by nettle ($want), as the log says"

# ---- policies
cat > "$WORK/app-read.json" <<'JSON'
{"rules":[{"path":"app/*","capabilities":["read","list"]},
          {"path":"app/admin","capabilities":["deny"]}]}
JSON
cli a policy write app-read "$WORK/app-read.json" >/dev/null || fail "policy write"
echo '{"operator":[{"path":"sys/*","capabilities":["sudo"]}],"rules":[{"path":"*","capabilities":["read","write","list","delete"]}]}' \
  | cli a policy write admin - >/dev/null || fail "policy write from stdin"
echo '{"rules":[{"path":"a/*","capabilities":["read"]},{"path":"b","capabilities":["raed"]}]}' > "$WORK/bad.json"
expect_err 'rule 2 (b)' cli a policy write bad "$WORK/bad.json"
echo '{"rules":[{"path":"a","capabilities":["read"],"colour":"red"}]}' > "$WORK/bad2.json"
expect_err 'rule 1' cli a policy write bad "$WORK/bad2.json"
expect_err 'root' cli a policy write root "$WORK/app-read.json"
# what the JSON reader refuses, each named with its byte offset; none is stored
printf '%s' '{"rules":[{"path":"a","capabilities":["read"],"path\u0000x":"b"}]}' > "$WORK/nulkey.json"
expect_err 'invalid JSON at byte 58: \\u0000 is not allowed' cli a policy write bad "$WORK/nulkey.json"
printf '%s' '{"rules":[{"path":"a","path":"b","capabilities":["read"]}]}' > "$WORK/dup.json"
expect_err "invalid JSON at byte 22: duplicate key near '\"path\"'" cli a policy write bad "$WORK/dup.json"
printf '{"rules":[{"path":"a\xff","capabilities":["read"]}]}' > "$WORK/utf8.json"
expect_err 'string field PolicyWriteReq.document is not valid UTF-8' cli a policy write bad "$WORK/utf8.json"  # the wire refuses it before the JSON reader
printf '{"rules":[{"path":1e400,"capabilities":["read"]}]}' > "$WORK/huge.json"
expect_err 'invalid JSON at byte 22: real number overflow' cli a policy write bad "$WORK/huge.json"
printf '{"rules":[]}\0' > "$WORK/nul.json"
expect_err 'NUL byte' cli a policy write bad "$WORK/nul.json"
expect_err 'no policy named bad' cli a policy read bad
cli a policy list --format json | grep -q '"app-read"' || fail "policy list"
cli a policy read app-read | grep -q 'app/admin' || fail "policy read"
pass "policy write/read/list, errors name the offending rule or byte, root reserved"

# ---- tokens
T=$(cli a token create --policy app-read --ttl 1h --format json | json token)
[ -n "$T" ] || fail "token create"
TOKEN=$T
[ "$(cli a kv get app/db --field password)" = s3cr3t-db-pw ] || fail "app-read cannot read app/db"
cli a kv list app >/dev/null || fail "app-read cannot list app/"
expect_err "permission denied" cli a kv put app/db password=x
expect_err "permission denied" cli a kv get app/admin
expect_err "permission denied" cli a kv get other/x
expect_err "permission denied" cli a kv delete app/db
expect_err "permission denied" cli a operator rotate
expect_err "permission denied" cli a operator seal
expect_err "permission denied" cli a token create --policy app-read
expect_err "permission denied" cli a policy write x "$WORK/app-read.json"
cli a token lookup --format json | grep -q '"app-read"' || fail "token lookup (self)"
pass "a read-only token: reads allowed, writes/deny carve-out/operator actions refused"

TOKEN=$ROOT
A=$(cli a token create --policy admin --format json | json token)
TOKEN=$A
cli a operator rotate >/dev/null || fail "admin (sudo on sys/*) cannot rotate"
cli a kv put other/y v=1 >/dev/null || fail "admin cannot write"
expect_err "root" cli a token create --policy root
TOKEN=$ROOT
pass "an admin token with sudo on sys/*"

# Revocation takes effect at once.
cli a token revoke "$T" >/dev/null || fail "revoke"
TOKEN=$T expect_err "permission denied" cli a kv get app/db
expect_err "no such token" cli a token revoke "$T"
# Expiry.
E=$(cli a token create --policy app-read --ttl 2s --format json | json token)
TOKEN=$E cli a kv get app/db >/dev/null || fail "fresh short-lived token refused"
sleep 3
TOKEN=$E expect_err "expired" cli a kv get app/db
# Renewal.
R=$(cli a token create --policy app-read --ttl 60s --renewable --format json | json token)
TOKEN=$R cli a token renew --increment 120s >/dev/null || fail "renew self"
exp=$(TOKEN=$R cli a token lookup --format json | json expire_time)
[ -n "$exp" ] || fail "no expire_time after renew"
N=$(cli a token create --policy app-read --ttl 60s --format json | json token)
TOKEN=$N expect_err "not renewable" cli a token renew
pass "revoke (immediate), expiry, renew"

# A policy change applies at once to existing tokens.
P=$(cli a token create --policy app-read --format json | json token)
TOKEN=$P cli a kv get app/db >/dev/null || fail "before policy delete"
cli a policy delete app-read >/dev/null
TOKEN=$P expect_err "permission denied" cli a kv get app/db
pass "policy deletion takes effect immediately"

# ---- audit log
[ -s "$WORK/audit.log" ] || fail "audit log empty"
[ "$(stat -c %a "$WORK/audit.log")" = 600 ] || fail "audit log mode $(stat -c %a "$WORK/audit.log")"
grep -q '"type":"request".*"operation":"kv-get"' "$WORK/audit.log" || fail "no kv-get request record"
grep -q '"operation":"kv-put".*"result":"error".*"error_code":"CS_EPERM"' "$WORK/audit.log" \
  || fail "refused request not audited as such"
grep -q '"operation":"unseal"' "$WORK/audit.log" || fail "unseal not audited"
grep -q 'hmac-sha256:[0-9a-f]\{64\}' "$WORK/audit.log" || fail "no hashed values in the audit log"
lines=$(wc -l < "$WORK/audit.log")
bad=$(grep -cv '^{.*}$' "$WORK/audit.log" || true)
[ "$bad" = 0 ] || fail "$bad audit lines are not one JSON object each"
pass "audit log: $lines one-line JSON records, refusals included, values hashed"

# An auditor checks whether a given value was read: the server gives the
# log's form of a candidate value.
h=$(cli a audit hash s3cr3t-db-pw)
echo "$h" | grep -q '^hmac-sha256:[0-9a-f]\{64\}$' || fail "audit hash: $h"
grep -q "\"field\":\"password\",\"value\":\"$h\"" "$WORK/audit.log" || fail "audit hash does not match the logged value"
h2=$(printf 's3cr3t-db-pw' | cli a audit hash -)
[ "$h2" = "$h" ] || fail "audit hash from stdin differs"
[ "$(cli a audit hash not-the-password)" != "$h" ] || fail "different values hash alike"
TOKEN=$P expect_err "permission denied" cli a audit hash x
pass "audit hash: an auditor can check which value was read"

# SIGHUP reopens the file (log rotation).
mv "$WORK/audit.log" "$WORK/audit.log.1"
kill -HUP "$PID_a"; sleep 0.3
cli a status >/dev/null
[ -s "$WORK/audit.log" ] || fail "no new audit log after SIGHUP"
pass "SIGHUP reopens the audit log"

# No secret anywhere: server log, audit logs.
for s in s3cr3t-db-pw adm1n-k3y 0th3r-v4lue "$ROOT" "$T" "$A" "$E" "$R" "$N" "$P" $(cat "$WORK/a.keys"); do
  for f in "$WORK/a.log" "$WORK/audit.log" "$WORK/audit.log.1"; do
    grep -qF -- "$s" "$f" && fail "secret found in $f"
  done
done
pass "no secret, token or share in the server log or the audit log"

# An audit log that cannot be written: requests fail, nothing unaudited.
start_server b 'audit = { file = "/dev/full"; };'
expect_err "audit" cli b status
pass "unwritable audit log: requests refused"

# ---- client certificates
sh "$ROOT_DIR/deploy/gen-certs.sh" --client app "$WORK/tls" >/dev/null 2>&1 || fail "client cert"
LISTENER_EXTRA="tls_client_ca_file = \"$WORK/tls/ca.crt\";" start_server c
expect_err "" cli c status
grep -qi "handshake" "$WORK/c.log" || fail "refused client certificate handshake not logged"
out=$(CLI_EXTRA="--client-cert $WORK/tls/client-app.crt --client-key $WORK/tls/client-app.key" cli c status --format json || true)
echo "$out" | grep -q '"initialized":false' || fail "client with a certificate refused: $out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/rogue.key" \
  -out "$WORK/rogue.crt" -days 1 -subj /CN=rogue >/dev/null 2>&1
CLI_EXTRA="--client-cert $WORK/rogue.crt --client-key $WORK/rogue.key" expect_err "" cli c status
pass "client certificates: required when configured, foreign ones refused"

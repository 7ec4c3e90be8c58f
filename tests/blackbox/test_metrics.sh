#!/usr/bin/env bash
# GET /v1/sys/metrics?format=prometheus: authorization (403 without a token,
# a token with sudo on sys/metrics (an operator rule) suffices, telemetry.unauthenticated_metrics_access
# opens it, also while sealed), the Prometheus text format (Content-Type,
# HELP/TYPE, _total counters, histograms with +Inf), the values following
# what the server did, and `promtool check metrics` on the real output.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if ! PROMTOOL=$(sh "$ROOT/scripts/promtool.sh" "${PROMTOOL_DIR:-$ROOT/build/.promtool}" 2>"$WORK/promtool.err"); then
  [ "${CI:-}" = true ] && fail "promtool unavailable in CI: $(cat "$WORK/promtool.err")"
  echo "SKIPPED: promtool unavailable: $(cat "$WORK/promtool.err")" >&2
  exit 77
fi
start_server a
init_server a 1 1
unseal_with a 1
U="https://127.0.0.1:$PORT_a/v1/sys/metrics"
# mc ARGS...: "STATUS" of one curl request (body in $WORK/b, headers in $WORK/h).
mc() { curl -sS --cacert "$WORK/tls/ca.crt" -D "$WORK/h" -o "$WORK/b" -w '%{http_code}' "$@"; }

[ "$(mc "$U?format=prometheus")" = 403 ] || fail "no token: $(cat "$WORK/b")"
grep -q '"errors":\["permission denied"\]' "$WORK/b" || fail "no token: body $(cat "$WORK/b")"
pass "no token: 403 permission denied"

cli a kv put app/db password=x >/dev/null || fail "put"
cli a kv get app/db >/dev/null || fail "get"
cli a kv get app/nothing >/dev/null 2>&1 && fail "get of a missing secret succeeded"
[ "$(mc -H "X-Vault-Token: $TOKEN" "$U?format=prometheus")" = 200 ] || fail "root token: $(cat "$WORK/b")"
tr -d '\r' < "$WORK/h" | grep -qi '^content-type: text/plain; version=0.0.4' || fail "content type: $(cat "$WORK/h")"
cp "$WORK/b" "$WORK/m1"
for want in 'custos_sealed 0' 'custos_initialized 1' 'custos_requests_total{op="kv-put",code="ok"} 1' \
    'custos_requests_total{op="kv-get",code="CS_ENOTFOUND"} 1' 'custos_keyring_active_term 1' \
    'custos_keyring_terms{state="active"} 1' 'custos_ha_mode{mode="standalone"} 1' \
    'custos_request_duration_seconds_bucket{op="kv-get",le="+Inf"} 2' \
    'custos_commit_group_batches_bucket{le="+Inf"}' 'custos_storage_commit_duration_seconds_count' \
    'custos_audit_write_failures_total 0' '# TYPE custos_requests_total counter' 'custos_connections ' \
    'custos_storage_map_bytes 1073741824' 'custos_storage_used_bytes '; do
  grep -qF "$want" "$WORK/m1" || fail "metrics lack '$want': $(head -c 3000 "$WORK/m1")"
done
used=$(sed -n 's/^custos_storage_used_bytes \([0-9]*\)$/\1/p' "$WORK/m1")
[ "${used:-0}" -gt 0 ] && [ "$used" -lt 1073741824 ] || fail "custos_storage_used_bytes: '$used'"
recs=$(sed -n 's/^custos_tls_gcm_records_total \([0-9]*\)$/\1/p' "$WORK/m1")
if grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then
  [ "${recs:-0}" -gt 0 ] || fail "custos_tls_gcm_records_total: '$recs' (AES-NI here: the records should run on libsodium)"
else
  [ "$recs" = 0 ] || fail "custos_tls_gcm_records_total: '$recs' without AES-NI"
fi
pass "metrics follow what the server did ($(grep -c '^custos_' "$WORK/m1") samples)"
"$PROMTOOL" check metrics < "$WORK/m1" > "$WORK/lint" 2>&1 || fail "promtool: $(cat "$WORK/lint")"
pass "promtool check metrics: clean"

[ "$(mc -H "X-Vault-Token: $TOKEN" "$U?format=json")" = 400 ] || fail "format=json: $(cat "$WORK/b")"
[ "$(mc -H "X-Vault-Token: $TOKEN" "$U")" = 200 ] || fail "no format: $(cat "$WORK/b")"
[ "$(mc -X POST -H "X-Vault-Token: $TOKEN" "$U")" = 405 ] || fail "POST: $(cat "$WORK/b")"
pass "format=json 400, no format 200, POST 405"

# A token with sudo on sys/metrics (and nothing else) may scrape; one without may not.
echo '{"operator":[{"path":"sys/metrics","capabilities":["sudo"]}]}' | cli a policy write scrape - >/dev/null ||
  fail "policy write scrape"
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' | cli a policy write app - >/dev/null ||
  fail "policy write app"
ts=$(cli a token create --policy scrape --format json | json token)
ta=$(cli a token create --policy app --format json | json token)
[ -n "$ts" ] && [ -n "$ta" ] || fail "token create"
[ "$(mc -H "X-Vault-Token: $ts" "$U?format=prometheus")" = 200 ] || fail "scrape token: $(cat "$WORK/b")"
[ "$(mc -H "X-Vault-Token: $ta" "$U?format=prometheus")" = 403 ] || fail "app token: $(cat "$WORK/b")"
pass "sudo on sys/metrics: 200; a token without it: 403"

# Unauthenticated access when configured, also while sealed.
stop_server a
sed -i '$a telemetry = { unauthenticated_metrics_access = true; };' "$WORK/a/custos.conf"
start_server a
[ "$(mc "$U?format=prometheus")" = 200 ] || fail "sealed, unauthenticated: $(cat "$WORK/b")"
grep -qx 'custos_sealed 1' "$WORK/b" || fail "sealed server: $(grep sealed "$WORK/b")"
"$PROMTOOL" check metrics < "$WORK/b" > "$WORK/lint" 2>&1 || fail "promtool (sealed): $(cat "$WORK/lint")"
pass "telemetry.unauthenticated_metrics_access: sealed server scraped without a token (custos_sealed 1, promtool clean)"
stop_server a

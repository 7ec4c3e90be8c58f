#!/usr/bin/env bash
# The rekey ceremony with the new shares encrypted to their holders (age):
# keys made by age-keygen; `operator rekey --init --recipient ... --backup
# --output-dir` returns no share in the clear; each holder opens their file
# with the real `age -d -i` or submits it with `--identity`; the new shares
# unseal and the old ones are refused; a wrong identity and tampered armor
# are refused; the backup is retrieved (it matches the files) and deleted;
# --verify works with the decrypted new shares; bad recipients (a NUL
# inside one, a count that differs from the shares, backup without
# recipients) are refused by the server before anything starts; and a
# kill -9 while the last share of a rekey is committed leaves exactly one
# valid share set, with the backup present exactly when the new set is.
. "$(dirname "$0")/lib.sh"

command -v age >/dev/null && command -v age-keygen >/dev/null || { echo "skip: age not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }

cd "$WORK"
for h in h1 h2 h3 x; do age-keygen -o $h.txt 2>/dev/null || fail "age-keygen $h"; done
R1=$(age-keygen -y h1.txt); R2=$(age-keygen -y h2.txt); R3=$(age-keygen -y h3.txt)

# ages FIELD FILE PREFIX: the age files of JSON array FIELD into PREFIX<N>.age
ages() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
v = d.get(sys.argv[1], [])
for i, k in enumerate(v, 1):
    open("%s%d.age" % (sys.argv[3], i), "w").write(k)
print(len(v), len(d.get("keys_hex", [])))
PY
}
nonce_of() { json nonce < "$1"; }
sealed() { [ "$(cli "$1" status --format json 2>/dev/null | json sealed)" = true ]; }
# accepted NAME SHARE: 0 when the sealed server takes SHARE into its unseal.
# (exit 2: accepted, still sealed; 0: accepted and unsealed; 1: refused)
accepted() { local rc=0; cli "$1" operator unseal "$2" >/dev/null 2>&1 || rc=$?; [ "$rc" != 1 ]; }
# unseal_ok NAME ARGS...: an unseal share accepted (sealed or not after it)
unseal_ok() { local n=$1 rc=0; shift; cli "$n" operator unseal "$@" >/dev/null 2>&1 || rc=$?; [ "$rc" != 1 ]; }

LISTENER_EXTRA='idle_timeout = "1s";' start_server a
init_server a 3 2
unseal_with a 1 2
cli a kv put app/db password=hunter2 >/dev/null || fail "kv put"

# ---- refused before anything starts ----------------------------------------
expect_exit 2 cli a operator rekey --init --key-shares 2 --recipient "$R1" --recipient "$R2" --recipient "$R3"
expect_exit 2 cli a operator rekey --init --recipient "$R1" --recipient "${R2}x"
expect_exit 2 cli a operator rekey --init --key-shares 2 --key-threshold 2 --backup
expect_exit 2 cli a operator rekey --nonce abc --backup
if command -v openssl >/dev/null && command -v xxd >/dev/null; then
  rk_body() { printf '%s%s' "$(pb_uint 1 3)$(pb_uint 2 2)" "$*"; }
  # More recipients than shares (the CLI would refuse it; the server must too).
  out=$(raw_send a "$(raw_frame "$(raw_request 1 33 "$(rk_body "$(pb_str 150 "$R1")$(pb_str 150 "$R2")$(pb_str 150 "$R3")$(pb_str 150 "$R3")")")")")
  echo "$out" | grep -q "code=1 .*4 age recipients for 3 key shares" || fail "server: count: $out"
  # A recipient with a NUL after a valid one: refused, not cut short.
  out=$(raw_send a "$(raw_frame "$(raw_request 1 33 "$(rk_body "$(pb_str 150 "$R1")$(pb_bytes 150 "$(pb_hex "$R2")00$(pb_hex junk)")$(pb_str 150 "$R3")")")")")
  echo "$out" | grep -q "code=1 .*recipient 2 is not an age recipient" || fail "server: NUL in recipient: $out"
  # Backup without recipients.
  out=$(raw_send a "$(raw_frame "$(raw_request 1 33 "$(rk_body "$(pb_uint 151 1)")")")")
  echo "$out" | grep -q "code=1 .*backup needs age recipients" || fail "server: backup alone: $out"
  # 10,000 recipients: refused by the frame limit or the count, never a crash.
  big=$(python3 -c "import sys; r=sys.argv[1].encode().hex(); print(('d209%02x' % len(sys.argv[1]) + r) * 10000)" "$R1")
  out=$(raw_send a "$(raw_frame "$(raw_request 1 33 "$(rk_body "$big")")")")
  echo "$out" | grep -q "code=\(1\|10\) " || fail "server: 10k recipients: $out"
  cli a status >/dev/null || fail "server died on 10k recipients"
fi
[ "$(cli a operator rekey --status --format json | json started)" = false ] || fail "a refused rekey started"
pass "refused before anything starts: count mismatch, NUL in a recipient, backup without recipients, 10k recipients (CLI and server)"

# ---- rekey 3/2 to three holders, with backup, into a directory --------------
mkdir -p new1
cli a operator rekey --init --key-threshold 2 --recipient "$R1" --recipient "$R2" --recipient "$R3" --backup \
  --format json > init.json || fail "rekey --init with recipients"
[ "$(json backup < init.json)" = true ] || fail "rekey status lacks backup: $(cat init.json)"
N=$(nonce_of init.json)
cli a operator rekey --nonce "$N" "$(key a 1)" --format json >/dev/null || fail "rekey update 1"
cli a operator rekey --nonce "$N" "$(key a 2)" --output-dir new1 --format json > done.json \
  2>update2.err || fail "rekey update 2: $(cat update2.err)"
grep -q keys_hex done.json && fail "the rekey response holds shares in the clear"
for i in 1 2 3; do
  [ -f new1/unseal-key-$i.age ] || fail "new1/unseal-key-$i.age missing: $(cat done.json)"
  head -n 1 new1/unseal-key-$i.age | grep -qx -- "-----BEGIN AGE ENCRYPTED FILE-----" || fail "share $i not armored"
done
age -d -i h1.txt new1/unseal-key-1.age > n1.txt || fail "holder 1: age -d"
age -d -i h2.txt new1/unseal-key-2.age > n2.txt || fail "holder 2: age -d"
age -d -i h3.txt new1/unseal-key-3.age > n3.txt || fail "holder 3: age -d"
for f in n1 n2 n3; do
  grep -qxE '[0-9a-f]{66}' $f.txt || fail "$f is not a hex share"
  grep -qF "$(cat $f.txt)" done.json && fail "the response holds $f in the clear"
  grep -qF "$(cat $f.txt)" a.log && fail "$f reached the server log"
done
age -d -i h2.txt new1/unseal-key-1.age >/dev/null 2>&1 && fail "holder 2 opened share 1"
pass "rekey --recipient x3 --backup --output-dir: three armored files, nothing in the clear; age -d opens each with its holder's key only"

# ---- the backup: same files; then deleted -------------------------------------
cli a operator rekey --retrieve-backup --format json > backup.json || fail "retrieve-backup"
[ "$(nonce_of backup.json)" = "$N" ] || fail "backup nonce: $(cat backup.json)"
ages unseal_keys_age backup.json bk >/dev/null
for i in 1 2 3; do cmp -s bk$i.age new1/unseal-key-$i.age || fail "backup share $i differs from the file"; done
mkdir -p bkdir
cli a operator rekey --retrieve-backup --output-dir bkdir >/dev/null || fail "retrieve-backup --output-dir"
cmp -s bkdir/unseal-key-2.age new1/unseal-key-2.age || fail "retrieve-backup --output-dir"
# The backup is an ordinary barrier value: a rotation, a rewrap and the
# retirement of its old term keep it readable.
cli a operator rotate --rewrap --retire >/dev/null 2>rot.err || fail "rotate --rewrap --retire: $(cat rot.err)"
cli a operator rekey --retrieve-backup --format json > backup2.json || fail "retrieve-backup after the old term was retired"
cmp -s <(ages unseal_keys_age backup2.json bk2 >/dev/null; cat bk21.age) new1/unseal-key-1.age || fail "backup after rewrap differs"
# Without a sudo token: refused.
TOKEN_SAVE=$TOKEN
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' | cli a policy write ro - >/dev/null || fail "policy write"
TOKEN=$(cli a token create --policy ro --format json | json token)
expect_err "permission denied" cli a operator rekey --retrieve-backup
expect_err "permission denied" cli a operator rekey --delete-backup
TOKEN=$TOKEN_SAVE
cli a operator rekey --delete-backup >/dev/null || fail "delete-backup"
expect_err "no rekey backup" cli a operator rekey --retrieve-backup
expect_err "no rekey backup" cli a operator rekey --delete-backup
pass "retrieve-backup: the same age files (and --output-dir); sudo only; delete-backup removes it"

# ---- the same over HTTP (Vault's sys/rekey with age "recipients") -------------
if command -v curl >/dev/null; then
  U="https://127.0.0.1:$PORT_a"
  hc() { curl -sS --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $TOKEN" -o hb -w '%{http_code}' "$@"; echo " $(cat hb)"; }
  out=$(hc -X GET "$U/v1/sys/rekey/backup")
  [ "${out%% *}" = 404 ] || fail "HTTP backup after delete: $out"
  out=$(hc -X PUT -d "{\"secret_shares\":3,\"secret_threshold\":2,\"recipients\":[\"$R1\",\"$R2\"],\"backup\":true}" "$U/v1/sys/rekey/init")
  [ "${out%% *}" = 400 ] && echo "$out" | grep -q "2 age recipients for 3 key shares" || fail "HTTP count: $out"
  out=$(hc -X PUT -d "{\"secret_shares\":2,\"secret_threshold\":2,\"recipients\":[\"$R1\",\"$R2\\u0000x\"]}" "$U/v1/sys/rekey/init")
  # (jansson refuses a \u0000 in JSON text itself; either refusal is a 400)
  [ "${out%% *}" = 400 ] && echo "$out" | grep -q "recipient 2 is not an age recipient\|failed to parse JSON" || fail "HTTP NUL: $out"
  many=$(python3 -c "import json,sys; print(json.dumps({'secret_shares':3,'secret_threshold':2,'recipients':[sys.argv[1]]*300}))" "$R1")
  out=$(hc -X PUT -d "$many" "$U/v1/sys/rekey/init")
  [ "${out%% *}" = 400 ] || fail "HTTP 300 recipients: ${out:0:200}"
  out=$(hc -X PUT -d '{"secret_shares":2,"secret_threshold":2,"pgp_keys":["x","y"]}' "$U/v1/sys/rekey/init")
  [ "${out%% *}" = 400 ] || fail "HTTP pgp_keys: $out"
  out=$(hc -X PUT -d "{\"secret_shares\":2,\"secret_threshold\":2,\"recipients\":[\"$R1\",\"$R2\"],\"backup\":true}" "$U/v1/sys/rekey/init")
  [ "${out%% *}" = 200 ] && echo "$out" | grep -q "\"recipients\":\[\"$R1\",\"$R2\"\]" && echo "$out" | grep -q '"backup":true' \
    || fail "HTTP rekey init with recipients: $out"
  out=$(hc -X DELETE "$U/v1/sys/rekey/init")
  [ "${out%% *}" = 204 ] || fail "HTTP rekey cancel: $out"
  pass "HTTP sys/rekey/init with \"recipients\" and \"backup\" (count, NUL, 300 recipients, pgp_keys refused); GET sys/rekey/backup 404 when none"
fi

# ---- the new set unseals, the old one is void; bad files refused ------------
cli a operator seal >/dev/null || fail "seal"
accepted a "$(key a 1)" && fail "an old share was accepted after the rekey"
out=$(cli a operator unseal --identity h1.txt new1/unseal-key-2.age 2>&1 || true)
echo "$out" | grep -q "no age identity matches the file" || fail "wrong identity: $out"
awk 'NR==4{ $0 = (substr($0,1,1)=="A" ? "B" : "A") substr($0,2) } {print}' new1/unseal-key-2.age > tampered.age
out=$(cli a operator unseal --identity h2.txt tampered.age 2>&1 || true)
echo "$out" | grep -qi "age" || fail "tampered armor: $out"
[ "$(cli a status --format json | json progress)" = 0 ] || fail "a refused file changed progress"
unseal_ok a "$(cat n1.txt)" || fail "unseal with an age -d share"
unseal_ok a --identity h2.txt new1/unseal-key-2.age || fail "unseal --identity"
[ "$(cli a kv get app/db --field password)" = hunter2 ] || fail "data after the rekey"
pass "new shares unseal (one via age -d, one via --identity); old share refused; wrong identity and tampered armor refused, progress kept"

# ---- --verify: the holders submit the decrypted new shares -------------------
cli a operator rekey --init --verify --recipient "$R1" --recipient "$R2" --recipient "$R3" \
  --key-threshold 2 --format json > v-init.json || fail "rekey --init --verify"
N=$(nonce_of v-init.json)
cli a operator rekey --nonce "$N" --identity h3.txt new1/unseal-key-3.age >/dev/null || fail "update with --identity"
cli a operator rekey --nonce "$N" --identity h1.txt new1/unseal-key-1.age --format json > v-done.json \
  || fail "update 2 with --identity"
VN=$(json verification_nonce < v-done.json)
[ -n "$VN" ] || fail "no verification nonce: $(cat v-done.json)"
[ "$(ages unseal_keys_age v-done.json v)" = "3 0" ] || fail "verify response: $(cat v-done.json)"
# Not in effect yet: the shares of new1 still belong to the key set.
cli a operator rekey --verify --nonce "$VN" "$(cat n1.txt)" >/dev/null 2>&1 && fail "an old share passed verification"
cli a operator rekey --verify --nonce "$VN" --identity h2.txt v2.age >/dev/null || fail "verify 1"
cli a operator rekey --verify --nonce "$VN" --identity h3.txt v3.age >/dev/null || fail "verify 2"
cli a operator seal >/dev/null
accepted a "$(cat n1.txt)" && fail "a share of the previous set was accepted after the verified rekey"
unseal_ok a --identity h1.txt v1.age || fail "unseal v1"
unseal_ok a --identity h3.txt v3.age || fail "unseal v3"
sealed a && fail "still sealed with 2 verified shares"
pass "--verify with recipients: updates and verification with --identity; the verified set unseals, the previous one is void"
cp v1.age cur1.age; cp v2.age cur2.age; cp v3.age cur3.age

# ---- kill -9 while the last verification share is committed -------------------
# Each round: a rekey with --verify and --backup to the holders; the last
# verification share is sent and custosd is killed at once or a moment
# later.  After the restart exactly one of the two sets is the key set:
# one share of it is accepted, one of the other is refused, it unseals,
# and the backup exists exactly when the new set is the one.
for delay in 0 0.02 0.2; do
  cli a operator rekey --init --verify --backup --recipient "$R1" --recipient "$R2" --recipient "$R3" \
    --key-threshold 2 --format json > k-init.json || fail "kill round: init"
  N=$(nonce_of k-init.json)
  cli a operator rekey --nonce "$N" --identity h1.txt cur1.age >/dev/null || fail "kill round: update 1"
  cli a operator rekey --nonce "$N" --identity h2.txt cur2.age --format json > k-done.json || fail "kill round: update 2"
  VN=$(json verification_nonce < k-done.json)
  ages unseal_keys_age k-done.json k >/dev/null
  cli a operator rekey --verify --nonce "$VN" --identity h1.txt k1.age >/dev/null || fail "kill round: verify 1"
  ( cli a operator rekey --verify --nonce "$VN" --identity h2.txt k2.age >/dev/null 2>&1 || true ) &
  cpid=$!
  sleep "$delay"
  stop_server a KILL
  wait "$cpid" 2>/dev/null || true
  start_server a
  old=0 new=0
  if unseal_ok a --identity h3.txt cur3.age; then old=1; fi
  cli a operator unseal --reset >/dev/null 2>&1 || true
  if unseal_ok a --identity h3.txt k3.age; then new=1; fi
  cli a operator unseal --reset >/dev/null 2>&1 || true
  [ $((old + new)) = 1 ] || fail "after kill -9 (delay $delay): old set valid=$old, new set valid=$new"
  if [ $new = 1 ]; then set=k; else set=cur; fi
  cli a operator unseal --identity h1.txt ${set}1.age >/dev/null || true
  cli a operator unseal --identity h3.txt ${set}3.age >/dev/null || true
  sealed a && fail "after kill -9 (delay $delay): the valid set ($set) does not unseal"
  [ "$(cli a kv get app/db --field password)" = hunter2 ] || fail "data after kill -9"
  if cli a operator rekey --retrieve-backup --format json > k-bk.json 2>/dev/null; then
    [ $new = 1 ] && [ "$(nonce_of k-bk.json)" = "$N" ] || fail "backup present but new=$new (nonce $(nonce_of k-bk.json), rekey $N)"
  else
    [ $new = 0 ] || fail "new set committed without its backup"
  fi
  [ $set = cur ] || for i in 1 2 3; do cp k$i.age cur$i.age; done
  echo "  kill round (delay $delay): $([ $new = 1 ] && echo 'new set committed, backup present' || echo 'old set kept, no backup')"
done
pass "kill -9 while the last share of a rekey is committed: exactly one valid share set each round; the backup exists exactly with the new set"

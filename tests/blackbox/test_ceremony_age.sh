#!/usr/bin/env bash
# The init ceremony with shares encrypted to their holders (age): keys made
# by age-keygen; `operator init --recipient ... --root-token-recipient ...`
# returns no share and no token in the clear; each holder decrypts with the
# real `age -d -i` or submits with `operator unseal --identity`; the token
# decrypts and works.  Wrong identity and tampered armor are refused without
# touching progress; bad recipients and a count that does not match the
# shares are refused before anything is generated (CLI and server).
. "$(dirname "$0")/lib.sh"

command -v age >/dev/null && command -v age-keygen >/dev/null || { echo "skip: age not installed"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }

cd "$WORK"
for h in h1 h2 h3 root; do age-keygen -o $h.txt 2>/dev/null || fail "age-keygen $h"; done
R1=$(age-keygen -y h1.txt); R2=$(age-keygen -y h2.txt); R3=$(age-keygen -y h3.txt)
RT=$(age-keygen -y root.txt)

# json_dump FILE: every encrypted share into share<N>.age, the token into root.age.
json_dump() {
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for i, k in enumerate(d.get("unseal_keys_age", []), 1):
    open("share%d.age" % i, "w").write(k)
if "root_token_age" in d:
    open("root.age", "w").write(d["root_token_age"])
print(len(d.get("unseal_keys_age", [])), len(d.get("unseal_keys_hex", [])), repr(d.get("root_token", "")))
PY
}

# ---- refused before anything is generated ---------------------------------
LISTENER_EXTRA='idle_timeout = "1s";' start_server a
expect_exit 2 cli a operator init --key-shares 3 --key-threshold 2 --recipient "$R1" --recipient "$R2"
expect_exit 2 cli a operator init --key-shares 2 --recipient "$R1" --recipient "${R2}x"
expect_exit 2 cli a operator init --key-shares 1 --recipient "$R1" --root-token-recipient "$(head -n 3 h1.txt | tail -n 1)"
printf '# holders\n%s\nnot-a-recipient\n' "$R1" > bad-recipients.txt
out=$(cli a operator init --recipients-file bad-recipients.txt 2>&1 || true)
echo "$out" | grep -q "line 3" || fail "bad recipients file: $out"
# The server checks too (a client that skips the CLI's checks).
if command -v openssl >/dev/null && command -v xxd >/dev/null; then
  init_body() { printf '%s%s' "$(pb_uint 1 3)$(pb_uint 2 2)" "$*"; }
  out=$(raw_send a "$(raw_frame "$(raw_request 1 11 "$(init_body "$(pb_str 110 "$R1")$(pb_str 110 "$R2")")")")")
  echo "$out" | grep -q "code=1 .*2 age recipients for 3 key shares" || fail "server: count mismatch: $out"
  out=$(raw_send a "$(raw_frame "$(raw_request 1 11 "$(init_body "$(pb_str 110 "$R1")$(pb_str 110 age1qqq)$(pb_str 110 "$R3")")")")")
  echo "$out" | grep -q "code=1 .*recipient 2 is not an age recipient" || fail "server: bad recipient: $out"
  out=$(raw_send a "$(raw_frame "$(raw_request 1 11 "$(init_body "$(pb_str 110 "$R1")$(pb_str 110 "$R2")$(pb_str 110 "$R3")$(pb_str 111 "$R3"x)")")")")
  echo "$out" | grep -q "code=1 .*root token recipient is not an age recipient" || fail "server: bad root recipient: $out"
fi
out=$(cli a status --format json || true)
[ "$(echo "$out" | json initialized)" = false ] || fail "a refused init initialized the server: $out"
pass "bad recipients and a recipient count that differs from --key-shares: refused (CLI and server), nothing initialized"

# ---- init 3/2 with the shares and the token encrypted ---------------------
cli a operator init --key-shares 3 --key-threshold 2 --recipient "$R1" --recipient "$R2" \
  --recipient "$R3" --root-token-recipient "$RT" --format json > init.json || fail "init with recipients"
counts=$(json_dump init.json)
[ "$counts" = "3 0 ''" ] || fail "init response: age keys / clear keys / clear token = $counts"
for i in 1 2 3; do
  head -n 1 share$i.age | grep -qx -- "-----BEGIN AGE ENCRYPTED FILE-----" || fail "share $i is not armored"
done
age -d -i h1.txt share1.age > s1.txt || fail "holder 1: age -d"
age -d -i h2.txt share2.age > s2.txt || fail "holder 2: age -d"
age -d -i h3.txt share3.age > s3.txt || fail "holder 3: age -d"
age -d -i root.txt root.age > token.txt || fail "root token: age -d"
for f in s1 s2 s3; do
  grep -qxE '[0-9a-f]{66}' $f.txt || fail "$f is not a 33-byte hex share: $(wc -c < $f.txt) bytes"
  grep -qF "$(cat $f.txt)" init.json && fail "the init response holds $f in the clear"
done
grep -qF "$(cat token.txt)" init.json && fail "the init response holds the root token in the clear"
grep -q "$(cat s1.txt)" a.log 2>/dev/null && fail "a share reached the server log"
age -d -i h1.txt share2.age >/dev/null 2>&1 && fail "holder 1's identity opened share 2"
pass "init --recipient x3 --root-token-recipient: 3 armored shares, none in the clear; age -d opens each with its holder's key only"

# Table output names each holder.
start_server b
cli b operator init --key-shares 2 --key-threshold 2 --recipient "$R1" --recipient "$R2" > init-b.txt \
  || fail "init b (table)"
grep -q "Unseal Key 2 (age, for $R2):" init-b.txt || fail "table output: $(head -n 3 init-b.txt)"
grep -q "Initial Root Token: " init-b.txt || fail "table output without --root-token-recipient has no token"
pass "table output: 'Unseal Key N (age, for age1...)' blocks; the token in the clear without a token recipient"

# ---- unseal: one holder with age -d, one with --identity --------------------
expect_exit 2 cli a status
cli a operator unseal "$(cat s1.txt)" >/dev/null || true
[ "$(cli a status --format json | json progress)" = 1 ] || fail "age -d share not counted"
# A wrong identity and tampered armor are refused; progress is kept.
out=$(cli a operator unseal --identity h1.txt share2.age 2>&1 || true)
echo "$out" | grep -q "no age identity matches the file" || fail "wrong identity: $out"
awk 'NR==4{ $0 = (substr($0,1,1)=="A" ? "B" : "A") substr($0,2) } {print}' share2.age > tampered.age
out=$(cli a operator unseal --identity h2.txt tampered.age 2>&1 || true)
echo "$out" | grep -qi "age" || fail "tampered armor: $out"
sed 's/END AGE/end age/' share2.age > badframe.age
out=$(cli a operator unseal --identity h2.txt badframe.age 2>&1 || true)
echo "$out" | grep -q "malformed age armor" || fail "bad armor frame: $out"
out=$(cli a operator unseal --identity nosuch.txt share2.age 2>&1 || true)
echo "$out" | grep -q "cannot open nosuch.txt" || fail "missing identity file: $out"
expect_exit 2 cli a operator unseal --identity h2.txt --reset
[ "$(cli a status --format json | json progress)" = 1 ] || fail "a refused age file changed progress"
cli a operator unseal --identity h2.txt share2.age --format json > unseal.json || fail "unseal --identity"
[ "$(json sealed < unseal.json)" = false ] || fail "still sealed after 2 of 3: $(cat unseal.json)"
TOKEN=$(cat token.txt)
cli a kv put app/db password=hunter2 >/dev/null || fail "the decrypted root token does not work"
pass "unseal with an age -d share and an --identity share; wrong identity, tampered armor refused, progress kept; token works"

# ---- after a restart: --identity from stdin, and the third holder -----------
stop_server a TERM
start_server a
cli a operator unseal --identity h3.txt < share3.age >/dev/null || true
[ "$(cli a status --format json | json progress)" = 1 ] || fail "--identity from stdin not counted"
cli a operator unseal --identity h1.txt - < share1.age >/dev/null || fail "unseal --identity -"
[ "$(cli a kv get app/db --field password)" = hunter2 ] || fail "data lost across restart"
pass "restart: --identity from stdin (shares 3 and 1) unseals; data intact"

# ---- --recipients-file, share count from the file ---------------------------
start_server c
printf '# the key holders\n%s\n\n  %s\n%s\n' "$R1" "$R2" "$R3" > recipients.txt
cli c operator init --recipients-file recipients.txt --format json > init-c.json || fail "init --recipients-file"
rm -f share*.age root.age
[ "$(json_dump init-c.json | cut -d' ' -f1,2)" = "3 0" ] || fail "init --recipients-file: $(cat init-c.json)"
[ "$(json unseal_threshold < init-c.json)" = 3 ] || fail "threshold for 3 recipients: $(cat init-c.json)"
TOKEN=$(json root_token < init-c.json)
for i in 1 2 3; do cli c operator unseal --identity h$i.txt share$i.age >/dev/null || true; done
cli c status >/dev/null || fail "not unsealed with 3 --identity shares from --recipients-file"
pass "--recipients-file: one share per line's holder (3/3 by default), unsealed with --identity"

# ---- --output-dir: one file per holder, nothing overwritten -----------------
start_server d
mkdir -p shares
expect_exit 2 cli d operator init --key-shares 2 --key-threshold 2 --output-dir shares
expect_exit 2 cli d operator init --recipient "$R1" --recipient "$R2" --output-dir nosuchdir
touch shares/unseal-key-2.age
expect_exit 2 cli d operator init --recipient "$R1" --recipient "$R2" --output-dir shares
out=$(cli d status --format json || true)
[ "$(echo "$out" | json initialized)" = false ] || fail "a refused --output-dir initialized d: $out"
rm shares/unseal-key-2.age
cli d operator init --recipient "$R1" --recipient "$R2" --root-token-recipient "$RT" --output-dir shares \
  > init-d.txt || fail "init --output-dir"
grep -q "Unseal Key 2 (age, for $R2): shares/unseal-key-2.age" init-d.txt || fail "init --output-dir: $(cat init-d.txt)"
grep -q "BEGIN AGE" init-d.txt && fail "init --output-dir also printed the files"
TOKEN=$(age -d -i root.txt shares/root-token.age) || fail "root-token.age"
cli d operator unseal "$(age -d -i h1.txt shares/unseal-key-1.age)" >/dev/null || true
cli d operator unseal --identity h2.txt shares/unseal-key-2.age >/dev/null || fail "unseal from shares/unseal-key-2.age"
cli d token lookup >/dev/null || fail "token from root-token.age does not work"
pass "--output-dir: files per holder and for the token, checked before init (missing dir, existing file)"

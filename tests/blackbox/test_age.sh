#!/usr/bin/env bash
# common/age against the real age (Debian package `age`), both directions:
# keys made by age-keygen; our files (binary and armored, 0 B to 200 000 B,
# one and several recipients) opened by `age -d -i`; `age -r` and
# `age -a -r` files opened by ours; wrong identity, tampered armor,
# ciphertext and header MAC refused by both with the right error.
. "$(dirname "$0")/lib.sh"

: "${AGE_TOOL:?set AGE_TOOL to the age_tool binary}"
command -v age >/dev/null && command -v age-keygen >/dev/null || { echo "skip: age not installed"; exit 77; }

cd "$WORK"
age-keygen -o k1.txt 2>/dev/null && age-keygen -o k2.txt 2>/dev/null && age-keygen -o k3.txt 2>/dev/null \
  || fail "age-keygen"
R1=$(age-keygen -y k1.txt); R2=$(age-keygen -y k2.txt); R3=$(age-keygen -y k3.txt)
[ "$("$AGE_TOOL" recipient k1.txt)" = "$R1" ] || fail "our recipient of an age-keygen identity differs"
"$AGE_TOOL" keygen > ours.txt || fail "age_tool keygen"
RO=$("$AGE_TOOL" recipient ours.txt)
[ "$(age-keygen -y ours.txt)" = "$RO" ] || fail "age-keygen -y disagrees on our identity"
pass "keys: age-keygen identities parse, our identities are read by age-keygen"

head -c 200000 /dev/urandom > big.bin
: > empty.bin
printf 'share' > short.bin
head -c 131072 /dev/urandom > two.bin      # exactly 2 x 64 KiB
for f in empty short two big; do
  for a in "" -a; do
    "$AGE_TOOL" encrypt $a -r "$R1" -o "$f$a.age" "$f.bin" || fail "encrypt $f $a"
    age -d -i k1.txt "$f$a.age" > "$f$a.out" || fail "age -d of our $f $a"
    cmp -s "$f.bin" "$f$a.out" || fail "age -d of our $f $a: different plaintext"
  done
done
head -c 35 short-a.age | grep -q -- "-----BEGIN AGE ENCRYPTED FILE-----" || fail "no armor"
pass "age -d opens our files (0 B, short, 2 x 64 KiB, 200000 B; binary and armored)"

printf '# holders\n%s\n\n%s\n' "$R2" "$R3" > recipients.txt
"$AGE_TOOL" encrypt -a -r "$R1" -R recipients.txt -o multi.age short.bin || fail "encrypt to 3"
for k in k1 k2 k3; do
  [ "$(age -d -i $k.txt multi.age)" = share ] || fail "age -d with $k of a 3-recipient file"
done
pass "three recipients (-r and a recipients file): each age identity opens it"

for f in empty short two big; do
  age -r "$R2" -o "$f.age2" "$f.bin" || fail "age -r $f"
  age -a -r "$R2" -o "$f.age2a" "$f.bin" || fail "age -a -r $f"
  for s in age2 age2a; do
    "$AGE_TOOL" decrypt -i k2.txt -o "$f.$s.out" "$f.$s" || fail "our decrypt of age's $f.$s"
    cmp -s "$f.bin" "$f.$s.out" || fail "our decrypt of age's $f.$s: different plaintext"
  done
done
age -r "$R1" -r "$RO" -o both.age short.bin || fail "age -r x2"
[ "$("$AGE_TOOL" decrypt -i ours.txt both.age)" = share ] || fail "our identity, second stanza of age's file"
pass "we open age -r and age -a -r files (the same sizes, and the second of two stanzas)"

# Wrong identity.
expect_wrong() { # EXPECTED_CODE FILE [identity]
  local out rc=0
  out=$("$AGE_TOOL" decrypt -i "${3:-k1.txt}" "$2" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 1 ] || fail "$2: age_tool exit $rc, wanted 1"
  echo "$out" | grep -q "$1" || fail "$2: wanted $1, got: $out"
}
expect_wrong CS_EAGENOMATCH short.age2 k1.txt
expect_wrong CS_EAGENOMATCH short-a.age k3.txt
age -d -i k3.txt short-a.age >/dev/null 2>&1 && fail "age -d opened a file with the wrong identity"
pass "wrong identity: refused by both (CS_EAGENOMATCH)"

# Tampering: one base64 character of the armor body, one payload byte, the
# header MAC, the armor frame; each must fail in both implementations.
tamper_byte() { # FILE OFFSET OUT: flips the low bit of one byte
  python3 - "$@" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); o = int(sys.argv[2])
d[o] ^= 1
open(sys.argv[3], 'wb').write(d)
PY
}
size=$(stat -c %s short.age2)
tamper_byte short.age2 $((size - 3)) t-payload.age
expect_wrong CS_EAGEPAYLOAD t-payload.age k2.txt
age -d -i k2.txt t-payload.age >/dev/null 2>&1 && fail "age -d opened a tampered payload"
# The MAC line: change one base64 character of it (keeping it canonical).
python3 - short.age2 t-mac.age <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
i = d.index(b'\n--- ') + 5
c = b'B' if d[i:i+1] != b'B' else b'C'
open(sys.argv[2], 'wb').write(d[:i] + c + d[i+1:])
PY
expect_wrong CS_EAGEMAC t-mac.age k2.txt
age -d -i k2.txt t-mac.age >/dev/null 2>&1 && fail "age -d opened a file with a bad header MAC"
# Inside the armor: change one character of the second line's base64.
awk 'NR==3{ $0 = (substr($0,1,1)=="A" ? "B" : "A") substr($0,2) } {print}' short.age2a > t-armor.age
"$AGE_TOOL" decrypt -i k2.txt t-armor.age >/dev/null 2>&1 && fail "we opened tampered armor"
age -d -i k2.txt t-armor.age >/dev/null 2>&1 && fail "age -d opened tampered armor"
# The armor frame itself: a header line, a lowercase end line, trailing garbage.
sed '1a Comment: hi' short.age2a > t-frame1.age
sed 's/END AGE/end age/' short.age2a > t-frame2.age
{ cat short.age2a; echo garbage; } > t-frame3.age
for t in t-frame1 t-frame2 t-frame3; do
  expect_wrong CS_EAGEARMOR $t.age k2.txt
  age -d -i k2.txt $t.age >/dev/null 2>&1 && fail "age -d opened $t"
done
# Truncated: our decryptor releases nothing at all.
head -c $((size - 20)) short.age2 > t-trunc.age
out=$("$AGE_TOOL" decrypt -i k2.txt t-trunc.age 2>/dev/null || true)
[ -z "$out" ] || fail "a truncated file released plaintext"
expect_wrong CS_EAGEPAYLOAD t-trunc.age k2.txt
pass "tampered payload, header MAC, armor body and frame, truncation: refused by both"

# A malformed identity file or recipient: a clear error, not a crash.
echo "AGE-SECRET-KEY-1QQQ" > bad-id.txt
out=$("$AGE_TOOL" decrypt -i bad-id.txt short.age2 2>&1 || true)
echo "$out" | grep -q "CS_EAGEKEY: malformed age recipient or identity on line 1" || fail "bad identity: $out"
last=${R1: -1}; [ "$last" = q ] && swap=p || swap=q
out=$("$AGE_TOOL" encrypt -r "${R1%?}$swap" short.bin 2>&1 || true)
echo "$out" | grep -q CS_EAGEKEY || fail "bad recipient checksum: $out"
pass "bad identity file and bad recipient checksum: CS_EAGEKEY"

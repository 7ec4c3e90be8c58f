#!/usr/bin/env bash
# The CLI's own behaviour against a real custosd: per-command --help for
# every command (the list is read from `custos --help`, so a new command is
# covered without editing this file), --version, unknown options reported
# as unknown options of the command with its short usage, JSON errors on
# stderr under --format json with their class and exit code, exit codes,
# and hostile arguments (huge argv, an option given twice, NUL bytes in
# values from stdin/files, a share on stdin instead of the command line).
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "skip: python3 needed to check JSON"; exit 77; }
# jsonok FILE: FILE holds exactly one JSON document
jsonok() { python3 -c 'import json,sys; json.loads(open(sys.argv[1]).read())' "$1"; }
# jerr FILE KEY: the value of error.KEY in the JSON error in FILE
jerr() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["error"][sys.argv[2]])' "$1" "$2"; }

# ---- offline: nothing below connects (the address is a closed port)
off() { CUSTOS_ADDR=127.0.0.1:1 timeout 10 "$CUSTOS" "$@"; }

off --version > "$WORK/v" || fail "--version"
grep -qx "custos [0-9][0-9.]*" "$WORK/v" || fail "--version: $(cat "$WORK/v")"
off version > "$WORK/v2" && cmp -s "$WORK/v" "$WORK/v2" || fail "version differs from --version"
off version --format json > "$WORK/vj" && jsonok "$WORK/vj" && grep -q '"version":"' "$WORK/vj" \
  || fail "version --format json: $(cat "$WORK/vj")"
pass "--version, version, version --format json: $(cat "$WORK/v")"

off --help > "$WORK/help" || fail "--help"
off help > "$WORK/help2" && cmp -s "$WORK/help" "$WORK/help2" || fail "help differs from --help"
# The command words of every line of the Commands: section.
sed -n '/^Commands:/,/^$/p' "$WORK/help" | grep '^  [a-z]' | sed 's/^  //; s/  .*//' \
  | awk '{ w = ""; for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) w = w (w ? " " : "") $i; print w }' \
  | sort -u > "$WORK/cmds"
n=$(wc -l < "$WORK/cmds")
[ "$n" -ge 30 ] || fail "only $n commands listed in --help: $(tr '\n' ',' < "$WORK/cmds")"
while read -r words; do
  # shellcheck disable=SC2086
  off $words --help > "$WORK/h.out" 2> "$WORK/h.err" || fail "$words --help: exit $?"
  head -n1 "$WORK/h.out" | grep -q "^Usage: custos $words" || fail "$words --help: $(head -n2 "$WORK/h.out")"
  [ ! -s "$WORK/h.err" ] || fail "$words --help wrote to stderr: $(cat "$WORK/h.err")"
  grep -q "see 'custos --help'" "$WORK/h.out" || fail "$words --help lacks the global options pointer"
  # shellcheck disable=SC2086
  set +e; off $words --bogus-option > /dev/null 2> "$WORK/u.err"; rc=$?; set -e
  [ "$rc" = 2 ] || fail "$words --bogus-option: exit $rc"
  grep -q "^custos: $words: unknown option --bogus-option$" "$WORK/u.err" \
    || fail "$words: not reported as an unknown option of the command: $(cat "$WORK/u.err")"
  grep -q "^See 'custos $words --help'.$" "$WORK/u.err" || fail "$words: no help pointer: $(cat "$WORK/u.err")"
  [ "$(wc -l < "$WORK/u.err")" -le 8 ] || fail "$words: usage error prints more than the short usage"
done < "$WORK/cmds"
pass "$n commands: --help (exit 0, stdout only), unknown option named with the command, short usage"

for g in operator "operator raft" "operator snapshot" kv token policy audit; do
  # shellcheck disable=SC2086
  off $g --help > "$WORK/g.out" || fail "$g --help"
  grep -q "^Usage: custos $g <" "$WORK/g.out" && grep -q "^Commands:" "$WORK/g.out" || fail "$g --help: $(cat "$WORK/g.out")"
  # shellcheck disable=SC2086
  set +e; off $g > /dev/null 2> "$WORK/g.err"; rc=$?; set -e
  [ "$rc" = 2 ] && grep -q "^custos: $g: missing subcommand" "$WORK/g.err" || fail "$g alone: $rc $(cat "$WORK/g.err")"
done
expect_exit 2 off kv frob
grep -q 'custos: kv: unknown subcommand "frob"' "$WORK/err" || fail "unknown subcommand: $(cat "$WORK/err")"
expect_exit 2 off frob
grep -q 'custos: unknown command "frob"' "$WORK/err" || fail "unknown command: $(cat "$WORK/err")"
expect_exit 2 off --frob status
grep -q 'unknown option --frob' "$WORK/err" || fail "unknown top option: $(cat "$WORK/err")"
expect_exit 2 off
pass "groups: --help lists subcommands, a missing/unknown subcommand is a usage error (exit 2)"

# JSON usage errors: one line on stderr, nothing on stdout.
expect_exit 2 off --format json kv put --bogus
[ ! -s "$WORK/out" ] || fail "json usage error wrote stdout: $(cat "$WORK/out")"
[ "$(wc -l < "$WORK/err")" = 1 ] && jsonok "$WORK/err" || fail "json usage error is not one JSON line: $(cat "$WORK/err")"
[ "$(jerr "$WORK/err" code)" = usage ] && [ "$(jerr "$WORK/err" exit_code)" = 2 ] \
  && [ "$(jerr "$WORK/err" command)" = "kv put" ] || fail "json usage error: $(cat "$WORK/err")"
CUSTOS_FORMAT=json expect_exit 2 off token create
[ "$(jerr "$WORK/err" code)" = usage ] || fail "CUSTOS_FORMAT=json usage error: $(cat "$WORK/err")"
# A connection failure.
make_certs
CUSTOS_CACERT="$WORK/tls/ca.crt" expect_exit 1 off --format json status
[ "$(jerr "$WORK/err" code)" = unavailable ] && jerr "$WORK/err" message | grep -q "cannot connect" \
  || fail "json connection error: stderr [$(cat "$WORK/err")] stdout [$(cat "$WORK/out")] ca [$(ls -l "$WORK/tls/ca.crt" 2>&1)]"
CUSTOS_CACERT="$WORK/tls/ca.crt" expect_err "cannot connect" off status
# Addresses (common/addr.c): a clear message, a local ("client") error.
CUSTOS_CACERT="$WORK/tls/ca.crt" expect_err 'address "nowhere": no port' off --addr nowhere status
CUSTOS_CACERT="$WORK/tls/ca.crt" expect_err "more than one ':'" off --addr ::1:7200 status
CUSTOS_CACERT="$WORK/tls/ca.crt" expect_exit 1 off --format json --addr "[::1]:99999" status
[ "$(jerr "$WORK/err" code)" = client ] && jerr "$WORK/err" message | grep -q "port must be" \
  || fail "json bad address: $(cat "$WORK/err")"
pass "json errors: usage (exit 2), unavailable (exit 1), one line on stderr"

# ---- against a server
start_server a
init_server a 3 2
unseal_with a 1 2

# Server errors under --format json.
expect_exit 1 cli a --format json kv get no/such
[ ! -s "$WORK/out" ] || fail "json error wrote stdout: $(cat "$WORK/out")"
[ "$(jerr "$WORK/err" code)" = not_found ] && [ "$(jerr "$WORK/err" exit_code)" = 1 ] \
  || fail "json not found: $(cat "$WORK/err")"
TOKEN=bogus expect_exit 1 cli a kv get no/such --format json
[ "$(jerr "$WORK/err" code)" = permission_denied ] || fail "json permission denied: $(cat "$WORK/err")"
expect_exit 1 cli a --format json operator init
[ "$(jerr "$WORK/err" code)" = already_initialized ] || fail "json already initialized: $(cat "$WORK/err")"
expect_err "no secret at no/such" cli a kv get no/such
pass "server errors: json classes not_found / permission_denied / already_initialized, text 'Error: '"

# Successful output: JSON on stdout only, valid for a strict reader.
cli a kv put app/x "user=a\"b" "tab=a	b" > /dev/null
for c in "status" "kv get app/x" "kv list" "operator key-status" "operator rotate-config" \
         "token lookup" "policy list" "operator rekey --status" "kv put app/y k=v" "version"; do
  # shellcheck disable=SC2086
  cli a $c --format json > "$WORK/j.out" 2> "$WORK/j.err" || fail "$c --format json: $(cat "$WORK/j.err")"
  jsonok "$WORK/j.out" || fail "$c: not JSON: $(cat "$WORK/j.out")"
  [ ! -s "$WORK/j.err" ] || fail "$c wrote stderr: $(cat "$WORK/j.err")"
done
cli a kv get app/x > "$WORK/t.out"
grep -q '^tab     a\\x09b$' "$WORK/t.out" || fail "table escapes control bytes: $(cat "$WORK/t.out")"
pass "json output valid (strict reader) for 10 commands; the table shows control bytes as \\xNN"

# Exit codes: 0, 1, 2 usage, 2 sealed.
expect_exit 0 cli a status
expect_exit 2 cli a kv put app/x
expect_exit 1 cli a kv get app/x --field nope
cli a operator seal > /dev/null
expect_exit 2 cli a status
# A share on stdin rather than the command line (ps shows arguments).
key a 1 | cli a operator unseal > "$WORK/u1" 2>&1 || [ $? = 2 ] || fail "unseal from stdin: $(cat "$WORK/u1")"
key a 2 | cli a operator unseal - > "$WORK/u2" 2>&1 || fail "unseal from stdin (-): $(cat "$WORK/u2")"
expect_exit 0 cli a status
pass "exit codes 0/1/2 (usage, sealed); shares read from stdin"

# ---- hostile arguments
# An option given twice with different values is refused before sending.
expect_exit 2 cli a kv get app/x --field user --field tab
grep -q "option --field given twice" "$WORK/err" || fail "twice: $(cat "$WORK/err")"
cli a kv get app/x --field user --field user > "$WORK/o" || fail "the same value twice"
expect_exit 2 cli a --addr "127.0.0.1:$PORT_a" --addr 127.0.0.1:1 status
# A huge argv: far more fields than a request may carry; refused at once.
args=(); for i in $(seq 1 5000); do args+=("k$i=v"); done
start=$(date +%s%N)
expect_exit 2 cli a kv put app/big "${args[@]}"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q "unexpected argument" "$WORK/err" || fail "huge argv: $(head -c 300 "$WORK/err")"
[ "$(wc -c < "$WORK/err")" -lt 2048 ] || fail "huge argv: error of $(wc -c < "$WORK/err") bytes"
# A 100 KB option value and option name: bounded messages.
big=$(head -c 100000 /dev/zero | tr '\0' x)
expect_exit 2 cli a token create --policy p --ttl "$big"
[ "$(wc -c < "$WORK/err")" -lt 2048 ] || fail "huge value echoed whole"
expect_exit 2 cli a status "--$big"
[ "$(wc -c < "$WORK/err")" -lt 2048 ] || fail "huge option name echoed whole"
# NUL bytes cannot be in argv; values with NUL come from stdin or @FILE and
# arrive exactly.
printf 'a\0b\0' > "$WORK/nul"
cli a kv put app/nul v=@"$WORK/nul" w=- < "$WORK/nul" > /dev/null
cli a kv get app/nul --field v | cmp -s - "$WORK/nul" || fail "NUL bytes from @FILE"
cli a kv get app/nul --field w | cmp -s - "$WORK/nul" || fail "NUL bytes from stdin"
cli a kv get app/nul --format json > "$WORK/nj" && jsonok "$WORK/nj" || fail "NUL value in JSON"
printf '{"rules":[]}\0' > "$WORK/pnul"
expect_err "NUL" cli a policy write bad "$WORK/pnul"
# Secrets given as arguments leave argv once read: /proc/PID/cmdline (what
# ps shows) of a CLI waiting for its share on stdin no longer holds the
# --token value.
sleep 10 | CUSTOS_ADDR=127.0.0.1:1 CUSTOS_CACERT="$WORK/tls/ca.crt" "$CUSTOS" --token cs.TOPSECRET1 \
  operator unseal > /dev/null 2>&1 &
cpid=$!; PIDS+=("$cpid")
for i in $(seq 1 40); do tr '\0' ' ' < "/proc/$cpid/cmdline" 2>/dev/null | grep -q "operator unseal" && break; sleep 0.05; done
sleep 0.3
args=$(tr '\0' ' ' < "/proc/$cpid/cmdline" 2>/dev/null || true)
kill "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true
echo "$args" | grep -q "operator unseal" || fail "could not read the CLI's cmdline: $args"
echo "$args" | grep -q TOPSECRET1 && fail "the token is still in argv: $args"
pass "hostile: option twice refused, 5000-word argv refused in ${ms} ms, 100 KB value/name bounded, NUL bytes via @FILE/stdin exact, NUL policy refused"

#!/usr/bin/env bash
# The README's quick starts, run literally: every command line of the
# blocks after "paste them into another shell" (the CLI) and under "HTTP
# quick start" (curl), against a real dev server whose printed `export`
# lines are used as a user would paste them.  `build/custos` is the CLI
# under test.  A command that fails, or a block that disappears, fails the
# test: the README must stay true of the binary.
. "$(dirname "$0")/lib.sh"
README="$TESTS_DIR/../README.md"
[ -f "$README" ] || fail "no README.md at $README"
port=$(next_port)
"$CUSTOSD" --dev --dev-listen "127.0.0.1:$port" > "$WORK/dev.out" 2> "$WORK/dev.log" &
pid=$!
PIDS+=("$pid")
for i in $(seq 1 200); do grep -q "CUSTOS_TOKEN" "$WORK/dev.out" 2>/dev/null && break; sleep 0.05; done
eval "$(grep 'export CUSTOS_' "$WORK/dev.out")"
[ -n "${CUSTOS_TOKEN:-}" ] || fail "dev server printed no exports: $(cat "$WORK/dev.out")"

# block AFTER-PATTERN: the first ```sh block after the line matching the pattern.
block() {
  awk -v pat="$1" 'found == 0 && $0 ~ pat { found = 1; next }
    found == 1 && /^```sh/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }' "$README"
}
run_block() { # NAME PATTERN
  local name=$1 n=0
  block "$2" > "$WORK/$name.sh"
  [ -s "$WORK/$name.sh" ] || fail "README: no sh block after /$2/"
  # build/custos is the CLI under test.
  # curl -s alone exits 0 on an HTTP error: the test adds --fail-with-body.
  sed -i -e "s|build/custos |\"$CUSTOS\" |g" -e 's|curl -s |curl -s --fail-with-body |' "$WORK/$name.sh"
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    # One shell per line, with what earlier lines of the block set (C=...).
    local pre; pre=$( (grep -E '^[A-Z]+=' "$WORK/$name.sh" || true) | head -5 | tr '\n' ';')
    if ! out=$(cd "$WORK" && timeout 20 bash -c "set -eo pipefail; ${pre} $line" 2>&1); then
      fail "README $name line failed: $line
$out"
    fi
    echo "  \$ ${line:0:100}"
  done < "$WORK/$name.sh"
  pass "README $name: $n command lines ran"
}
run_block cli 'paste them into another shell'
run_block http '^### HTTP quick start'

# The hvac snippet right after it, with Debian's python3-hvac.
if /usr/bin/python3 -c 'import hvac' 2>/dev/null; then
  awk 'found == 0 && /^### HTTP quick start/ { found = 1; next }
    found == 1 && /^```python/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }' "$README" > "$WORK/readme_snippet.py"
  [ -s "$WORK/readme_snippet.py" ] || fail "README: no python block under HTTP quick start"
  out=$(timeout 30 /usr/bin/python3 "$WORK/readme_snippet.py" 2>&1) || fail "README hvac snippet: $out"
  echo "$out" | grep -q hunter || fail "README hvac snippet printed: $out"
  pass "README hvac snippet: $(echo "$out" | tr '\n' ' ' | cut -c1-120)"
fi

kill -TERM "$pid"; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
wait "$pid" 2>/dev/null || true

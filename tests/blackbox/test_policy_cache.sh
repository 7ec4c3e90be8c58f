#!/usr/bin/env bash
# Policy cache under collisions (issue 10, finding 1): tokens holding 2 to 16
# policies whose names share a slot of the old 64-slot direct-mapped cache
# (djb2 % 64), with a deny among them, a deleted one, a missing one.  The
# old cache freed a policy still in use by the same decision: the deny was
# ignored (release build) or the server crashed (use after free, ASan).
. "$(dirname "$0")/lib.sh"

# slot NAME: the old cache's slot of NAME (djb2 mod 64; 64 divides 2^64,
# so reducing at every step gives the same value).
slot() {
  local s=$1 h=5381 i c
  for ((i = 0; i < ${#s}; i++)); do printf -v c '%d' "'${s:i:1}"; h=$(( (h * 33 + c) % 64 )); done
  echo "$h"
}

start_server a
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
cli a kv put c/s v=top-secret >/dev/null
cli a kv put app/x v=app-secret >/dev/null

# The report's pair: app-cy denies app/*, app-read reads it; they collide.
[ "$(slot app-cy)" = "$(slot app-read)" ] || fail "test premise: app-cy and app-read must collide"
echo '{"rules":[{"path":"app/*","capabilities":["deny"]}]}' | cli a policy write app-cy - >/dev/null
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' | cli a policy write app-read - >/dev/null
for order in "app-cy app-read" "app-read app-cy"; do
  set -- $order
  T=$(cli a token create --policy "$1" --policy "$2" --format json | json token)
  [ -n "$T" ] || fail "token create ($order)"
  for k in 1 2 3; do
    TOKEN=$T expect_err "permission denied" cli a kv get app/x
  done
  kill -0 "$PID_a" || fail "custosd died ($order)"
done
pass "app-cy (deny) + app-read (read), either order: denied, server alive"

# 17 names in one slot: r* read c/*, d* deny c/*, g* deleted, m* never written.
target=$(slot r0)
R=() D=() G=() M=()
i=0
while [ ${#R[@]} -lt 16 ] || [ ${#D[@]} -lt 4 ] || [ ${#G[@]} -lt 2 ] || [ ${#M[@]} -lt 2 ]; do
  [ "$(slot "r$i")" = "$target" ] && [ ${#R[@]} -lt 16 ] && R+=("r$i")
  [ "$(slot "d$i")" = "$target" ] && [ ${#D[@]} -lt 4 ] && D+=("d$i")
  [ "$(slot "g$i")" = "$target" ] && [ ${#G[@]} -lt 2 ] && G+=("g$i")
  [ "$(slot "m$i")" = "$target" ] && [ ${#M[@]} -lt 2 ] && M+=("m$i")
  i=$((i + 1))
done
for p in "${R[@]}" "${G[@]}"; do
  echo '{"rules":[{"path":"c/*","capabilities":["read"]}]}' | cli a policy write "$p" - >/dev/null || fail "policy write $p"
done
for p in "${D[@]}"; do
  echo '{"rules":[{"path":"c/*","capabilities":["deny"]}]}' | cli a policy write "$p" - >/dev/null || fail "policy write $p"
done

# token_with NAMES...: a token holding these policies.
token_with() {
  local args=() p
  for p in "$@"; do args+=(--policy "$p"); done
  TOKEN=$ROOT cli a token create "${args[@]}" --format json | json token
}

# Tokens of n colliding read policies with one deny first, in the middle or
# last: the deny wins every time; without a deny they read.
for n in 2 3 4 5 8 12 16; do
  reads=("${R[@]:0:$((n - 1))}")
  for pos in 0 $(( (n - 1) / 2 )) $((n - 1)); do
    set -- "${reads[@]:0:$pos}" "${D[$((pos % 4))]}" "${reads[@]:$pos}"
    T=$(token_with "$@")
    [ -n "$T" ] || fail "token create ($*)"
    TOKEN=$T expect_err "permission denied" cli a kv get c/s
    TOKEN=$T expect_err "permission denied" cli a kv get c/s
  done
  T=$(token_with "${R[@]:0:$n}")
  [ "$(TOKEN=$T cli a kv get c/s --field v)" = top-secret ] || fail "$n colliding read policies cannot read"
  kill -0 "$PID_a" || fail "custosd died at n=$n"
done
pass "2..16 colliding policies: a deny anywhere wins, reads are granted, server alive"

# A deleted and a missing policy in the same slot as present ones.
T1=$(token_with "${G[0]}" "${D[0]}" "${R[0]}")
T2=$(token_with "${R[0]}" "${G[1]}")
T3=$(token_with "${D[1]}" "${M[0]}" "${R[1]}" "${M[1]}")
T4=$(token_with "${M[0]}" "${R[2]}")
cli a policy delete "${G[0]}" >/dev/null
cli a policy delete "${G[1]}" >/dev/null
for k in 1 2; do
  TOKEN=$T1 expect_err "permission denied" cli a kv get c/s
  [ "$(TOKEN=$T2 cli a kv get c/s --field v)" = top-secret ] || fail "a deleted colliding policy broke a present one"
  TOKEN=$T3 expect_err "permission denied" cli a kv get c/s
  [ "$(TOKEN=$T4 cli a kv get c/s --field v)" = top-secret ] || fail "a missing policy poisoned a present one"
done
kill -0 "$PID_a" || fail "custosd died"
pass "deleted and missing policies in a shared slot: grant nothing, poison nothing"

# Interleaved tokens, so every lookup evicts another's entry.
for k in 1 2 3; do
  TOKEN=$T4 cli a kv get c/s >/dev/null || fail "interleaved read"
  TOKEN=$T3 expect_err "permission denied" cli a kv get c/s
done
stop_server a
grep -q "AddressSanitizer\|runtime error" "$WORK/a.log" && fail "sanitizer report in the server log"
pass "interleaved colliding tokens: consistent decisions; clean shutdown"

#!/usr/bin/env bash
# Versioned KV (the kv mount) through the CLI: put prints the version, get
# --version, CAS, soft delete / undelete / destroy, metadata get / put /
# delete, max_versions pruning, cas_required, list; policies on the Vault
# paths (kv/data/, kv/metadata/, kv/delete/...); hostile input; 16
# writers racing on one path (every write acknowledged, versions distinct
# and gap-free) and 10 racing with the same --cas (exactly one wins);
# snapshot save/restore of versions and metadata; rotate --rewrap --retire
# over every version; per-term counts equal to a scan after a restart.
. "$(dirname "$0")/lib.sh"

start_server a
init_server a 3 2
ROOT=$TOKEN
expect_err "sealed" cli a kv put --mount kv x a=b
unseal_with a 1 2

# Put prints the version; get --version.
out=$(cli a kv put --mount kv app/db user=admin pw=one)
echo "$out" | grep -q "version 1)" || fail "put v1: $out"
out=$(cli a kv put --mount kv app/db user=admin pw=two --format json)
echo "$out" | grep -q '"version":2' || fail "put v2 json: $out"
echo "$out" | grep -q '"destroyed":false' || fail "put json metadata: $out"
[ "$(cli a kv get --mount kv app/db --field pw)" = two ] || fail "get current"
[ "$(cli a kv get --mount kv --version 1 app/db --field pw)" = one ] || fail "get --version 1"
out=$(cli a kv get --mount kv app/db --format json)
echo "$out" | grep -q '"data":{"user":"admin","pw":"two"}' || fail "get json data: $out"
echo "$out" | grep -q '"version":2' || fail "get json metadata: $out"
cli a kv get --mount kv app/db | grep -q "====== Data ======" || fail "get table"
expect_err "has no version 3" cli a kv get --mount kv --version 3 app/db
expect_err "no secret at app/none" cli a kv get --mount kv app/none
# v1 and v2 are separate: the v1 mount has no app/db.
expect_err "no secret at app/db" cli a kv get app/db
cli a kv put --mount secret app/v1 a=b >/dev/null || fail "v1 put with --mount secret"
[ "$(cli a kv get app/v1 --field a)" = b ] || fail "v1 get"
expect_err "reserved for the versioned mount" cli a kv put kv/data/x a=b
pass "put/get with versions, v1 unchanged"

# CAS.
expect_err "did not match the current version" cli a kv put --mount kv --cas 0 app/db pw=x
expect_err "did not match the current version" cli a kv put --mount kv --cas 1 app/db pw=x
cli a kv put --mount kv --cas 2 app/db pw=three | grep -q "version 3)" || fail "cas 2"
cli a kv put --mount kv --cas 0 app/new v=1 | grep -q "version 1)" || fail "cas 0 on a new path"
expect_exit 2 cli a kv put --mount kv --cas -1 app/db pw=x
expect_exit 2 cli a kv put --mount kv --cas 18446744073709551616 app/db pw=x
expect_err "did not match" cli a kv put --mount kv --cas 18446744073709551615 app/db pw=x
pass "check-and-set"

# Soft delete, undelete, destroy.
cli a kv delete --mount kv app/db >/dev/null || fail "delete latest"
expect_err "is deleted" cli a kv get --mount kv app/db
[ "$(cli a kv get --mount kv --version 2 app/db --field pw)" = two ] || fail "v2 after delete of v3"
cli a kv delete --mount kv --versions 1,2 app/db >/dev/null || fail "delete 1,2"
expect_err "is deleted" cli a kv get --mount kv --version 1 app/db
cli a kv undelete --versions 1,3 app/db >/dev/null || fail "undelete"
[ "$(cli a kv get --mount kv app/db --field pw)" = three ] || fail "undeleted v3"
[ "$(cli a kv get --mount kv --version 1 app/db --field pw)" = one ] || fail "undeleted v1"
cli a kv destroy --versions 3 app/db >/dev/null || fail "destroy"
expect_err "is destroyed" cli a kv get --mount kv app/db
cli a kv undelete --versions 3 app/db >/dev/null
expect_err "is destroyed" cli a kv get --mount kv app/db
expect_exit 2 cli a kv undelete app/db
expect_exit 2 cli a kv destroy --versions 0 app/db
expect_exit 2 cli a kv destroy --versions 1,,2 app/db
expect_exit 2 cli a kv destroy --versions 1, app/db
expect_exit 2 cli a kv destroy --versions -3 app/db
expect_exit 2 cli a kv destroy --mount secret --versions 1 app/db
cli a kv delete --mount kv app/never >/dev/null || fail "delete of a missing secret (Vault: 204)"
pass "delete / undelete / destroy"

# Metadata.
out=$(cli a kv metadata get app/db --format json)
echo "$out" | grep -q '"current_version":3' || fail "metadata current: $out"
echo "$out" | grep -q '"oldest_version":1' || fail "metadata oldest: $out"
echo "$out" | grep -q '"3":{[^}]*"destroyed":true' || fail "metadata v3 destroyed: $out"
cli a kv metadata put --max-versions 2 --custom-metadata owner=alice --custom-metadata team=db \
  app/db >/dev/null || fail "metadata put"
out=$(cli a kv metadata get app/db --format json)
echo "$out" | grep -q '"max_versions":2' || fail "max_versions: $out"
echo "$out" | grep -q '"custom_metadata":{"owner":"alice","team":"db"}' || fail "custom: $out"
echo "$out" | grep -q '"oldest_version":2' || fail "pruned to 2 versions: $out"
expect_err "has no version 1" cli a kv get --mount kv --version 1 app/db
for i in 1 2 3; do cli a kv put --mount kv app/db pw=p$i >/dev/null; done
cli a kv get --mount kv app/db --format json | grep -q '"custom_metadata":{"owner":"alice","team":"db"}' \
  || fail "custom metadata in get"
out=$(cli a kv metadata get app/db --format json)
echo "$out" | grep -q '"current_version":6' && echo "$out" | grep -q '"oldest_version":5' \
  || fail "pruning on write: $out"
cli a kv metadata put --cas-required true app/db >/dev/null
expect_err "check-and-set parameter required" cli a kv put --mount kv app/db pw=x
cli a kv put --mount kv --cas 6 app/db pw=seven | grep -q "version 7)" || fail "cas when required"
expect_exit 2 cli a kv metadata put --max-versions 1001 app/db
expect_exit 2 cli a kv metadata put --cas-required maybe app/db
cli a kv metadata put --clear-custom-metadata app/db >/dev/null
cli a kv metadata get app/db --format json | grep -q '"custom_metadata":{}' || fail "cleared custom"
cli a kv metadata delete app/db >/dev/null || fail "metadata delete"
expect_err "no secret at app/db" cli a kv metadata get app/db
expect_err "no secret at app/db" cli a kv get --mount kv --version 5 app/db
cli a kv put --mount kv app/db pw=again | grep -q "version 1)" || fail "fresh start after metadata delete"
pass "metadata get / put / delete, pruning, cas_required"

# List (metadata/): folders end in '/'.
cli a kv put --mount kv app/sub/one a=1 >/dev/null
out=$(cli a kv list --mount kv app --format json)
for k in db new sub/; do echo "$out" | grep -q "\"$k\"" || fail "list lacks $k: $out"; done
echo "$out" | grep -q '"v1"' && fail "v2 list shows the v1 secret: $out"
pass "list"

# Hostile input.
expect_err "path" cli a kv put --mount kv ../x a=b
expect_err "path" cli a kv put --mount kv a/./b a=b
expect_err "path" cli a kv get --mount kv "a//b"
long=$(head -c 489 /dev/zero | tr '\0' a)
expect_err "longer than 488" cli a kv put --mount kv "$long" a=b
cli a kv put --mount kv "${long:0:488}" a=b >/dev/null || fail "488-byte path"
args=(); for i in $(seq 1 65); do args+=(--custom-metadata "k$i=v"); done
expect_exit 2 cli a kv metadata put "${args[@]}" app/new
expect_err "longer than 512" cli a kv metadata put --custom-metadata "k=$(head -c 513 /dev/zero | tr '\0' v)" app/new
expect_exit 2 cli a kv put --mount elsewhere app/x a=b
pass "hostile paths and metadata refused"

# Policies on Vault's paths.
cat > "$WORK/ro.json" <<'EOF'
{"rules":[{"path":"kv/data/app/*","capabilities":["read"]},
          {"path":"kv/metadata/app/","capabilities":["list"]},
          {"path":"kv/metadata/app/*","capabilities":["read"]}]}
EOF
cat > "$WORK/rw.json" <<'EOF'
{"rules":[{"path":"kv/data/app/*","capabilities":["read","write","delete"]},
          {"path":"kv/delete/app/*","capabilities":["delete"]},
          {"path":"kv/undelete/app/*","capabilities":["write"]}]}
EOF
cli a policy write kv2ro "$WORK/ro.json" >/dev/null
cli a policy write kv2rw "$WORK/rw.json" >/dev/null
RO=$(cli a token create --policy kv2ro --format json | json token)
RW=$(cli a token create --policy kv2rw --format json | json token)
[ "$(TOKEN=$RO cli a kv get --mount kv app/new --field v)" = 1 ] || fail "ro read"
TOKEN=$RO cli a kv list --mount kv app >/dev/null || fail "ro list"
TOKEN=$RO cli a kv metadata get app/new >/dev/null || fail "ro metadata"
TOKEN=$RO expect_err "permission denied" cli a kv put --mount kv app/new v=2
TOKEN=$RO expect_err "permission denied" cli a kv delete --mount kv app/new
TOKEN=$RO expect_err "permission denied" cli a kv metadata put --max-versions 3 app/new
TOKEN=$RO expect_err "permission denied" cli a kv get --mount kv other
TOKEN=$RW cli a kv put --mount kv app/new v=2 >/dev/null || fail "rw put"
TOKEN=$RW cli a kv delete --mount kv app/new >/dev/null || fail "rw delete latest"
TOKEN=$RW cli a kv delete --mount kv --versions 1 app/new >/dev/null || fail "rw delete versions"
TOKEN=$RW cli a kv undelete --versions 1,2 app/new >/dev/null || fail "rw undelete"
TOKEN=$RW expect_err "permission denied" cli a kv destroy --versions 1 app/new
TOKEN=$RW expect_err "permission denied" cli a kv metadata delete app/new
TOKEN=$RW expect_err "permission denied" cli a kv metadata get app/new
pass "policies on kv/data/, kv/metadata/, kv/delete/, kv/undelete/, kv/destroy/"

# Two writers racing on one path: every write acknowledged with its own
# version; the versions are 1..N with no gap (the precondition made the
# loser rebuild on the winner's state).
cli a kv metadata put --max-versions 1000 race/k >/dev/null
pids=()
N=16   # concurrent TLS handshakes stay within the listener's limits, also under ASan
for i in $(seq 1 $N); do
  cli a kv put --mount kv race/k v="$i" --format json > "$WORK/race.$i" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a racing put failed"; done
vs=$(for i in $(seq 1 $N); do json version < "$WORK/race.$i"; done | sort -n | tr '\n' ' ')
[ "$vs" = "$(seq 1 $N | tr '\n' ' ')" ] || fail "racing versions not 1..$N: $vs"
for i in $(seq 1 $N); do
  v=$(json version < "$WORK/race.$i")
  [ "$(cli a kv get --mount kv --version "$v" race/k --field v)" = "$i" ] || fail "version $v is not write $i"
done
pass "$N concurrent writers: versions 1..$N, each one's data"

# Ten writers racing with the same --cas: exactly one wins, the others get
# the mismatch (the loser's write is decided on the winner's state).
cli a kv put --mount kv casrace v=0 >/dev/null || fail "casrace v1"
pids=()
for i in $(seq 1 10); do
  ( rc=0; cli a kv put --mount kv --cas 1 casrace v="$i" > "$WORK/cas.$i" 2> "$WORK/cas.$i.err" || rc=$?
    echo "$rc" > "$WORK/cas.$i.rc" ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
wins=$(cat "$WORK"/cas.*.rc | grep -c '^0$' || true)
[ "$wins" = 1 ] || fail "$wins writers won the same cas: $(cat "$WORK"/cas.*.rc "$WORK"/cas.*.err | tr '\n' ' ')"
losers=$(cat "$WORK"/cas.*.err | grep -c 'did not match the current version (1 given, current 2)' || true)
[ "$losers" = 9 ] || fail "$losers losers got the cas mismatch: $(cat "$WORK"/cas.*.err | tr '\n' ' ')"
out=$(cli a kv metadata get casrace --format json)
echo "$out" | grep -q '"current_version":2' || fail "cas race left: $out"
pass "10 writers with the same --cas: one wins, nine get the mismatch, current_version 2"

# A snapshot holds every version and the metadata; a restore brings back
# exactly that state (later versions gone, the metadata as it was).
cli a kv put --mount kv snap/k v=one >/dev/null
cli a kv put --mount kv snap/k v=two >/dev/null
cli a kv delete --mount kv --versions 1 snap/k >/dev/null
cli a operator snapshot save "$WORK/kv2.snap" >/dev/null || fail "snapshot save"
cli a kv put --mount kv snap/k v=three >/dev/null
cli a kv metadata put --custom-metadata after=yes snap/k >/dev/null
cli a operator snapshot restore "$WORK/kv2.snap" >/dev/null || fail "snapshot restore"
out=$(cli a kv metadata get snap/k --format json)
echo "$out" | grep -q '"current_version":2' || fail "restored metadata: $out"
echo "$out" | grep -q '"after"' && fail "custom metadata written after the snapshot survived: $out"
[ "$(cli a kv get --mount kv snap/k --field v)" = two ] || fail "restored v2"
expect_err "is deleted" cli a kv get --mount kv --version 1 snap/k
expect_err "has no version 3" cli a kv get --mount kv --version 3 snap/k
cli a kv put --mount kv --cas 2 snap/k v=again | grep -q "version 3)" || fail "cas after restore"
pass "snapshot save / restore of versions and metadata"

# Rewrap and retirement cover every version: after `rotate --rewrap
# --retire` the old terms are retired (their keys gone), and every version,
# the deleted ones and the metadata still read back under the new term.
cli a kv metadata put --max-versions 100 rw/k >/dev/null
for i in $(seq 1 12); do cli a kv put --mount kv rw/k v="w$i" >/dev/null; done
cli a kv delete --mount kv --versions 3,4 rw/k >/dev/null
cli a kv destroy --versions 5 rw/k >/dev/null
cli a operator rotate --rewrap --retire --rate 20000 > "$WORK/rw.out" 2> "$WORK/rw.err" \
  || fail "rotate --rewrap --retire: $(cat "$WORK/rw.err")"
cli a operator key-status --verify --format json > "$WORK/ks.json" || fail "key-status --verify: $(cat "$WORK/ks.json")"
/usr/bin/python3 - "$WORK/ks.json" <<'PY' || fail "terms after rewrap: $(cat "$WORK/ks.json")"
import json, sys
k = json.load(open(sys.argv[1]))
terms = k["terms"]
active = [t for t in terms if t["state"] == "active"]
assert len(active) == 1 and active[0]["values"] >= 12, terms
assert all(t["state"] == "retired" for t in terms if t["term"] != active[0]["term"]), terms
assert all(t.get("values", 0) == 0 for t in terms if t["term"] != active[0]["term"]), terms
PY
for i in $(seq 1 12); do
  case $i in
    3|4) expect_err "is deleted" cli a kv get --mount kv --version $i rw/k ;;
    5) expect_err "is destroyed" cli a kv get --mount kv --version $i rw/k ;;
    *) [ "$(cli a kv get --mount kv --version $i rw/k --field v)" = "w$i" ] || fail "rw/k v$i after rewrap" ;;
  esac
done
cli a kv undelete --versions 3 rw/k >/dev/null
[ "$(cli a kv get --mount kv --version 3 rw/k --field v)" = w3 ] || fail "undeleted v3 after rewrap"
[ "$(cli a kv get --mount kv --version 2 app/new --field v)" != "" ] || fail "app/new after rewrap"
pass "rotate --rewrap --retire: every version, deleted one and metadata re-encrypted, old terms retired"

# Counts equal a scan: every start recounts every value and says so when
# the maintained counts differed (store.c recount); after all of the above
# (versions, prunes, destroys, metadata deletes, the race) they must not.
stop_server a
start_server a
grep -q "did not match the data" "$WORK/a.log" && fail "value counts differed from the scan"
unseal_with a 1 2
[ "$(cli a kv get --mount kv --version $N race/k --field v)" != "" ] || fail "after restart"
cli a kv get --mount kv --version 2 app/new --field v >/dev/null || fail "undeleted v2 after restart"
pass "restart: counts equal the scan, data intact"

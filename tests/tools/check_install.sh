#!/usr/bin/env bash
# check_install: `cmake --install` puts custosd, custos, the docs and the
# systemd units where the units say they are.   check_install.sh BUILD SRC
# 1) deploy/custosd.service and deploy/cluster/custosd@.service name the
#    default-prefix paths (/usr/local/bin/custosd, /usr/local/share/doc/custos/),
#    which a plain `cmake --install` creates;
# 2) installed into a temporary prefix, each unit's ExecStart binary and its
#    Documentation file exist under that prefix (the units are rewritten to it).
set -u
build=$1 src=$2
tmp=$(mktemp -d /tmp/custos-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
for u in deploy/custosd.service deploy/cluster/custosd@.service; do
  grep -q '^ExecStart=/usr/local/bin/custosd ' "$src/$u" \
    || fail "$u: ExecStart is not /usr/local/bin/custosd (the default install path)"
  doc=$(sed -n 's/^Documentation=file:\(.*\)$/\1/p' "$src/$u")
  case "$doc" in /usr/local/share/doc/custos/*) ;; *) fail "$u: Documentation=$doc is not under /usr/local/share/doc/custos";; esac
done
cmake --install "$build" --prefix "$tmp/usr/local" > "$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; fail "cmake --install failed"; }
for name in custosd.service custosd@.service; do
  unit="$tmp/usr/local/lib/systemd/system/$name"
  [ -f "$unit" ] || fail "no unit installed at lib/systemd/system/$name"
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
  [ "$exe" = "$tmp/usr/local/bin/custosd" ] || fail "$name: ExecStart $exe is not the installed custosd"
  [ -x "$exe" ] || fail "$name: ExecStart $exe is not an installed executable"
  idoc=$(sed -n 's/^Documentation=file:\(.*\)$/\1/p' "$unit")
  [ -f "$idoc" ] || fail "$name: Documentation $idoc was not installed"
done
"$tmp/usr/local/bin/custosd" --version | grep -q '^custosd ' || fail "installed custosd --version"
[ -x "$tmp/usr/local/bin/custos" ] || fail "custos (the CLI) not installed in bin/"
[ -f "$tmp/usr/local/share/doc/custos/examples/custos.conf.example" ] || fail "custos.conf.example not installed"
echo "ok - installed: $(cd "$tmp" && find usr -type f | sort | tr '\n' ' ')"
echo "1 passed, 0 failed"

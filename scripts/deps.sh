#!/bin/sh
# Installs the Debian 12 packages custos needs to build, test and run,
# skipping those already present (age: the interop tests with the real age tool;
# xxd: the black-box tests' raw frames (lib.sh, test_wire);
# zlib1g-dev: the compressed CCTV age vectors).  Needs root (or sudo) and apt-get.
set -eu
PKGS="cmake make gcc pkg-config libuv1-dev libmbedtls-dev liblmdb-dev lmdb-utils
      libprotobuf-c-dev protobuf-c-compiler libraft-dev libconfig-dev libjansson-dev libcmocka-dev libhttp-parser-dev libsodium-dev nettle-dev
      openssl ca-certificates procps valgrind age zlib1g-dev curl python3-hvac xxd ${CUSTOS_EXTRA_PKGS:-}"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

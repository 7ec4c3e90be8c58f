#!/bin/sh
# gen-cluster-certs.sh: a cluster CA and one certificate per node.
#
#   gen-cluster-certs.sh [--san LIST] [--days N] DIR NODE...
#
# Writes DIR/ca.crt, DIR/ca.key (reused when present) and, for every NODE,
# DIR/NODE.crt and DIR/NODE.key (P-256, CN=NODE, extendedKeyUsage
# serverAuth+clientAuth: the same certificate serves the API listener and
# both ends of the mutually authenticated raft connections).
# Every node certificate names its node: subjectAltName DNS:NODE.node.custos
# (NODE must be the node's cluster.node_id).  Cluster peers check it on both
# ends of every connection: a certificate is only ever accepted as the node
# it names.
# --san adds names to every node certificate (default
# DNS:localhost,IP:127.0.0.1); give each node its own addresses in
# production, e.g. run the script once per node with --san.
# Private keys are mode 0600.  Keep ca.key offline once the nodes exist.
set -eu
SAN="DNS:localhost,IP:127.0.0.1"
DAYS=825
while [ $# -gt 0 ]; do
  case "$1" in
    --san) SAN=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--san LIST] [--days N] DIR NODE..." >&2; exit 2; }
DIR=$1; shift
command -v openssl >/dev/null 2>&1 || { echo "openssl not found" >&2; exit 1; }
mkdir -p "$DIR"
umask 077
if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/ca.key"
  openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 3650 -subj "/CN=custos cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$DIR/ca.crt" 2>/dev/null
fi
for node in "$@"; do
  case "$node" in ''|*[!A-Za-z0-9._-]*) echo "bad node name $node" >&2; exit 1 ;; esac
  [ "${#node}" -le 63 ] || { echo "node name $node longer than 63 characters" >&2; exit 1; }
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/$node.key"
  openssl req -new -key "$DIR/$node.key" -subj "/CN=$node" -out "$DIR/$node.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s.node.custos%s\n' \
    "$node" "${SAN:+,$SAN}" > "$DIR/$node.ext"
  openssl x509 -req -in "$DIR/$node.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days "$DAYS" -sha256 -extfile "$DIR/$node.ext" -out "$DIR/$node.crt" 2>/dev/null
  rm -f "$DIR/$node.csr" "$DIR/$node.ext"
done
chmod 0644 "$DIR"/*.crt
rm -f "$DIR/ca.srl"

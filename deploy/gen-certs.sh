#!/bin/sh
# gen-certs.sh: make a small private CA and TLS certificates for custosd.
#
#   ca.crt / ca.key            a CA (P-256, 10 years); reused when present
#   server.crt / server.key    the server certificate (P-256), signed by the CA
#   client-NAME.crt / .key     with --client NAME: a client certificate for
#                              listener.tls_client_ca_file = ".../ca.crt"
#
# Private keys are written with mode 0600.  Clients verify the server with
# ca.crt (custos --ca-cert DIR/ca.crt, or CUSTOS_CACERT=DIR/ca.crt).
set -eu

usage() {
  cat <<EOF
usage: $0 [--san LIST] [--days N] [--client NAME]... [--force] DIR

Creates DIR/ca.crt, DIR/ca.key, DIR/server.crt and DIR/server.key.

  --san LIST     subjectAltName of the server certificate, comma-separated
                 (default: DNS:localhost,IP:127.0.0.1), e.g.
                 --san DNS:vault.example.com,IP:10.0.0.5
  --days N       validity of the server and client certificates (default 825)
  --client NAME  also create DIR/client-NAME.crt and DIR/client-NAME.key
                 (CN=NAME); may be repeated
  --force        replace an existing CA (default: reuse DIR/ca.crt and
                 DIR/ca.key when both exist, so new certificates chain to it)
EOF
}

die() {
  echo "gen-certs.sh: $*" >&2
  exit 1
}

SAN="DNS:localhost,IP:127.0.0.1"
DAYS=825
CLIENTS=""
FORCE=0
DIR=""

while [ $# -gt 0 ]; do
  case "$1" in
    --san) [ $# -ge 2 ] || die "--san needs a value"; SAN=$2; shift 2 ;;
    --san=*) SAN=${1#--san=}; shift ;;
    --days) [ $# -ge 2 ] || die "--days needs a value"; DAYS=$2; shift 2 ;;
    --client) [ $# -ge 2 ] || die "--client needs a name"; CLIENTS="$CLIENTS $2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [ -z "$DIR" ] || { usage >&2; exit 2; }; DIR=$1; shift ;;
  esac
done
[ -n "$DIR" ] || { usage >&2; exit 2; }
case "$DAYS" in ''|*[!0-9]*) die "--days must be a number" ;; esac
for name in $CLIENTS; do
  case "$name" in *[!A-Za-z0-9._-]*) die "client name '$name': use letters, digits, . _ -" ;; esac
done
command -v openssl >/dev/null 2>&1 || die "openssl not found"

mkdir -p "$DIR"
umask 077
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gen-certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null || die "cannot create key $1"
  chmod 600 "$1"
}

# Signs $1.csr into $2 with the extensions file $3.
sign() {
  openssl x509 -req -in "$1" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -CAserial "$TMP/ca.srl" -days "$DAYS" -sha256 -extfile "$3" -out "$2" 2>"$TMP/err" ||
    { cat "$TMP/err" >&2; die "cannot sign $2"; }
  chmod 644 "$2"
}

if [ "$FORCE" = 1 ] || [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
  newkey "$DIR/ca.key"
  cat >"$TMP/ca.ext" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = custos CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -new -x509 -key "$DIR/ca.key" -sha256 -days 3650 -config "$TMP/ca.ext" \
    -out "$DIR/ca.crt" 2>"$TMP/err" || { cat "$TMP/err" >&2; die "cannot create the CA"; }
  chmod 644 "$DIR/ca.crt"
  echo "created $DIR/ca.crt and $DIR/ca.key"
else
  echo "reusing $DIR/ca.crt"
fi

# Server certificate.
newkey "$DIR/server.key"
openssl req -new -key "$DIR/server.key" -subj "/CN=custosd" -out "$TMP/server.csr" 2>"$TMP/err" ||
  { cat "$TMP/err" >&2; die "cannot create the server request"; }
cat >"$TMP/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $SAN
EOF
sign "$TMP/server.csr" "$DIR/server.crt" "$TMP/server.ext"
echo "created $DIR/server.crt and $DIR/server.key (subjectAltName $SAN)"

for name in $CLIENTS; do
  newkey "$DIR/client-$name.key"
  openssl req -new -key "$DIR/client-$name.key" -subj "/CN=$name" -out "$TMP/client.csr" \
    2>"$TMP/err" || { cat "$TMP/err" >&2; die "cannot create the request for $name"; }
  cat >"$TMP/client.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  sign "$TMP/client.csr" "$DIR/client-$name.crt" "$TMP/client.ext"
  echo "created $DIR/client-$name.crt and $DIR/client-$name.key"
done

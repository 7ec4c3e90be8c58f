#!/bin/sh
# audit_writes.sh BUILD_DIR: audit-log write(2) calls per request (strace), for 4000 GETs
# and 4000 PUTs over 8 connections x 16 pipelined.  A benchmark: prints, never fails on figures.
# Counting syscalls is deterministic, so it is valid on a loaded machine.  Needs strace.
set -eu
B=$1
W=$(mktemp -d /var/tmp/st.XXXX)
sh $(dirname "$0")/../../deploy/gen-certs.sh $W/tls >/dev/null 2>&1
mkdir -p $W/data
cat > $W/c.conf <<E2
storage = { path = "$W/data"; map_size_mb = 1024; };
listener = { address = "127.0.0.1:19251"; tls_cert_file = "$W/tls/server.crt"; tls_key_file = "$W/tls/server.key"; max_handshakes_per_address = 200; };
log_level = "warn";
audit = { file = "$W/audit.log"; };
E2
$B/custosd --config $W/c.conf > $W/d.log 2>&1 & P=$!
trap 'kill $P 2>/dev/null; wait $P 2>/dev/null; rm -rf $W' EXIT
sleep 0.5
export CUSTOS_ADDR=127.0.0.1:19251 CUSTOS_CACERT=$W/tls/ca.crt
I=$($B/custos operator init --key-shares 1 --key-threshold 1 --format json)
K=$(printf '%s' "$I" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
export CUSTOS_TOKEN=$(printf '%s' "$I" | sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p')
$B/custos operator unseal "$K" >/dev/null
$B/custos-bench --connections 8 --requests 2000 --op put --keys 1000 --pipeline 16 --value-size 64 >/dev/null 2>&1
FD=$(ls -l /proc/$P/fd | awk '/audit.log/ {print $9}')
for op in get put; do
  strace -f -p $P -e trace=write -e signal=none -o $W/st.$op 2>/dev/null & S=$!
  sleep 0.5
  R0=$(wc -l < $W/audit.log)
  $B/custos-bench --connections 8 --requests 4000 --op $op --keys 1000 --pipeline 16 --value-size 64 >/dev/null 2>&1
  R1=$(wc -l < $W/audit.log)
  kill $S; wait $S 2>/dev/null || true
  N=$(grep -c "write($FD," $W/st.$op || true)
  echo "$op (custos-bench also populates 1000 keys first): $((R1 - R0)) records, $N write(2) calls to the audit log ($(awk -v r=$((R1-R0)) -v n=$N 'BEGIN{printf "%.2f", n/(r/2)}') per request)"
done

#!/usr/bin/python3
"""A read that ends with a record failing TLS's check (tests/blackbox/test_pipeline.sh).

Usage: tls_tamper.py PORT CA N
Completes a TLS handshake with custosd, then sends, in one write, a record of
N status requests and a record with the last byte of its tag flipped.  Reads
what the server sends until it closes (10 s at most) and prints the number
of application-data records it sent before and after its first alert:
"answers before the alert: B", "answers after the alert: K" (answers after
it would be dropped by any client) and "alert records: A".
"""

import socket
import ssl
import struct
import sys

port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # records' types stay in the clear
sock = socket.create_connection(("127.0.0.1", port))
sock.settimeout(10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        sock.sendall(out.read())
        data = sock.recv(65536)
        if not data:
            sys.exit("closed during the handshake")
        inc.write(data)
sock.sendall(out.read())

def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


# A status request: 4-byte big-endian length, then Request{id = i, status {}}.
frames = b""
for i in range(1, n + 1):
    body = b"\x08" + varint(i) + b"\x52\x00"
    frames += struct.pack(">I", len(body)) + body
tls.write(frames)
good = out.read()
tls.write(b"\x00" * 16)
bad = bytearray(out.read())
bad[-1] ^= 1
sock.sendall(good + bytes(bad))

raw = b""
try:
    while True:
        data = sock.recv(65536)
        if not data:
            break
        raw += data
except (socket.timeout, ConnectionResetError):
    pass
before = after = alerts = 0
off = 0
while off + 5 <= len(raw):
    kind, length = raw[off], struct.unpack(">H", raw[off + 3:off + 5])[0]
    if kind == 23 and alerts == 0:
        before += 1
    elif kind == 23:
        after += 1
    alerts += kind == 21
    off += 5 + length
print("answers before the alert: %d" % before)
print("answers after the alert: %d" % after)
print("alert records: %d" % alerts)

#!/usr/bin/python3
"""Versioned writes queued behind one another on one path (one slot,
server/api/kv2_ops.c) racing the revocation of their token
(tests/blackbox/test_review_kv2_revoke.sh).

Usage: kv2_revoke_race.py PORT CA TOKEN ROOT_TOKEN CONNECTIONS
Opens CONNECTIONS connections, sends one kv2 put of kv/p with TOKEN on each
at once, then a revoke of TOKEN with ROOT_TOKEN on another connection, and
prints "revoke=<code> ok_after=<n> ok=<n> refused=<n>": ok_after counts the
puts answered OK after the revoke's answer arrived."""

import socket
import ssl
import struct
import sys
import select

port, ca, token, root, nconn = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), \
    sys.argv[4].encode(), int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)


def varint(n):
    out = b""
    while n >= 128:
        out += bytes([(n & 127) | 128])
        n >>= 7
    return out + bytes([n])


def fld(f, b):
    return varint((f << 3) | 2) + varint(len(b)) + b


def frame(i, tok, op, body):
    b = varint(1 << 3) + varint(i) + fld(2, tok) + fld(op, body)
    return struct.pack(">I", len(b)) + b


def read_varint(b, p):
    v = s = 0
    while True:
        c = b[p]
        p += 1
        v |= (c & 127) << s
        s += 7
        if c < 128:
            return v, p


def code_of(body):
    """The Error.code of a Response (0: no error)."""
    p = 0
    while p < len(body):
        key, p = read_varint(body, p)
        if key & 7 == 0:
            _, p = read_varint(body, p)
            continue
        n, p = read_varint(body, p)
        if key >> 3 == 2:
            sub, q = body[p:p + n], 0
            while q < len(sub):
                k2, q = read_varint(sub, q)
                if k2 == 8:
                    return read_varint(sub, q)[0]
                if k2 & 7 == 0:
                    _, q = read_varint(sub, q)
                else:
                    m, q = read_varint(sub, q)
                    q += m
            return -1
        p += n
    return 0


def connect():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


puts = [connect() for _ in range(nconn)]
rv = connect()
put = frame(1, token, 170, fld(1, b"p") + fld(2, fld(1, b"k") + fld(2, b"v")))
for s in puts:
    s.sendall(put)
rv.sendall(frame(2, root, 43, fld(1, token)))
buf = {s: b"" for s in puts + [rv]}
codes = {}
order = []
pending = set(puts + [rv])
while pending:
    ready, _, _ = select.select(list(pending), [], [], 20)
    if not ready:
        raise SystemExit("timeout waiting for answers")
    for s in ready:
        d = s.recv(65536)
        if not d:
            raise SystemExit("connection closed")
        buf[s] += d
        if len(buf[s]) >= 4 and len(buf[s]) >= 4 + struct.unpack(">I", buf[s][:4])[0]:
            n = struct.unpack(">I", buf[s][:4])[0]
            codes[s] = code_of(buf[s][4:4 + n])
            order.append(s)
            pending.discard(s)
after = order[order.index(rv) + 1:]
ok_after = sum(1 for s in after if codes[s] == 0)
ok = sum(1 for s in puts if codes[s] == 0)
print(f"revoke={codes[rv]} ok_after={ok_after} ok={ok} refused={nconn - ok}")

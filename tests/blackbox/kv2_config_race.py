#!/usr/bin/python3
"""Two writers of the versioned mount's settings (POST /v1/kv/config) at the
same instant, on two kept-alive HTTPS connections, each changing a
different setting; after both answered 204, the settings must hold both
changes (tests/blackbox/test_review_kv2_config.sh).

Usage: kv2_config_race.py PORT CA TOKEN ROUNDS
Prints "lost N of M" and exits 1 when any change was lost."""

import json
import socket
import ssl
import sys

port, ca, token, rounds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)


def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    return [s, b""]


def request(method, body=None):
    data = b"" if body is None else json.dumps(body).encode()
    return (f"{method} /v1/kv/config HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {token}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def answer(c):
    while b"\r\n\r\n" not in c[1]:
        d = c[0].recv(65536)
        if not d:
            raise SystemExit("connection closed")
        c[1] += d
    head, rest = c[1].split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        rest += c[0].recv(65536)
    c[1] = rest[n:]
    return status, rest[:n]


a, b = conn(), conn()
lost = 0
for i in range(rounds):
    want_max, want_cas = i % 50 + 1, i % 2 == 1
    a[0].sendall(request("POST", {"max_versions": want_max}))
    b[0].sendall(request("POST", {"cas_required": want_cas}))
    sa, ba = answer(a)
    sb, bb = answer(b)
    if sa != 204 or sb != 204:
        raise SystemExit(f"round {i}: answers {sa} {ba!r} / {sb} {bb!r}")
    a[0].sendall(request("GET"))
    st, body = answer(a)
    got = json.loads(body)["data"]
    if got["max_versions"] != want_max or got["cas_required"] != want_cas:
        lost += 1
print(f"lost {lost} of {rounds}")
sys.exit(1 if lost else 0)

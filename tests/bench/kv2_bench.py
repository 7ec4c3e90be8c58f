#!/usr/bin/python3
"""KV v2 GET or PUT of one versioned secret, over protobuf or HTTP, pipelined.

Usage: kv2_bench.py PORT CA_FILE TOKEN proto|http get|put REQUESTS DEPTH

Sends DEPTH requests at a time on one TLS connection and waits for their
DEPTH answers: `kv2_get` / `kv2_put` frames (hand-encoded protobuf, the
schema's field numbers) or `GET /v1/kv/data/bench/v2` / `POST` with
{"data":{"v":...}}.  The secret must exist first for get
(`custos kv put --mount kv bench/v2 v=...`).  Every answer is checked for
success (a protobuf Response without `error`, HTTP 200).  Prints the
client's throughput; the figure that compares the two transports is the
server's CPU time per request, read by the caller from /proc/PID/stat
around the run (see the "HTTP API" section of docs/performance.md).
Requests on one connection take effect in order and a kv2 put waits for
its commit, so put throughput is one commit per request.
"""
import socket
import ssl
import struct
import sys
import time

port, ca, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
transport, op, n, depth = sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
VALUE = b"x" * 100
PATH = b"bench/v2"


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):  # a length-delimited field
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def proto_request(i):
    if op == "get":
        body = field(171, field(1, PATH))  # Kv2GetReq {path}
    else:
        pair = field(1, b"v") + field(2, VALUE)  # KvPair {key, value}
        body = field(170, field(1, PATH) + field(2, pair))  # Kv2PutReq {path, data}
    msg = varint(1 << 3) + varint(i) + field(2, token.encode()) + body
    return struct.pack(">I", len(msg)) + msg


def http_request():
    if op == "get":
        return ("GET /v1/kv/data/bench/v2 HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\n\r\n"
                % token).encode()
    body = b'{"data":{"v":"' + VALUE + b'"}}'
    return ("POST /v1/kv/data/bench/v2 HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\n"
            "Content-Length: %d\r\n\r\n" % (token, len(body))).encode() + body


ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf, done, t0 = b"", 0, time.time()
hreq = http_request()
while done < n:
    if transport == "proto":
        s.sendall(b"".join(proto_request(done + k + 1) for k in range(depth)))
    else:
        s.sendall(hreq * depth)
    got = 0
    while got < depth:
        data = s.recv(1 << 20)
        if not data:
            sys.exit("connection closed")
        buf += data
        while True:
            if transport == "proto":
                if len(buf) < 4:
                    break
                length = struct.unpack(">I", buf[:4])[0]
                if len(buf) < 4 + length:
                    break
                msg = buf[4:4 + length]
                # Response.error is field 2 (tag 0x12) right after the id.
                j = 1
                while msg[j] & 0x80:
                    j += 1
                if msg[0] != 0x08 or msg[j + 1:j + 2] == b"\x12":
                    sys.exit("error answer: %r" % msg[:80])
                buf = buf[4 + length:]
            else:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    break
                head = buf[:i].decode()
                length = int(head.split("Content-Length: ")[1].split("\r\n")[0])
                if len(buf) < i + 4 + length:
                    break
                if not head.startswith("HTTP/1.1 200"):
                    sys.exit("unexpected answer: " + head.splitlines()[0])
                buf = buf[i + 4 + length:]
            got += 1
    done += depth
dt = time.time() - t0
print("%s %s: %d requests in %.2f s: %.0f/s" % (transport, op, done, dt, done / dt))

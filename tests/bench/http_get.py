#!/usr/bin/python3
"""GET of one KV v1 secret over the HTTP API, pipelined on one connection.

Usage: http_get.py PORT CA_FILE TOKEN REQUESTS DEPTH
Sends DEPTH pipelined `GET /v1/secret/bench/k` requests at a time (put the
secret there first: `custos kv put bench/k v=...`) and prints the client's
throughput.  The client is Python, so its own rate says little: compare the
server's CPU time per request with custos-bench's instead (see the "HTTP
API" section of docs/performance.md).
"""
import socket
import ssl
import sys
import time

port, ca, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n, depth = int(sys.argv[4]), int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = ("GET /v1/secret/bench/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\n\r\n" % token).encode()
buf, done, t0 = b"", 0, time.time()
while done < n:
    s.sendall(req * depth)
    got = 0
    while got < depth:
        buf += s.recv(1 << 20)
        while True:  # every whole answer in buf
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
print("http get: %d requests in %.2f s (%.0f/s at the Python client)" % (done, dt, done / dt))

#!/usr/bin/python3
"""Raw HTTP over TLS for the hostile-input tests (tests/blackbox/test_http.sh).

Usage: http_raw.py PORT CA PAYLOAD [--trickle SECONDS] [--wait SECONDS]
PAYLOAD is a Python bytes expression (literals, + and *) (b'GET / HTTP/1.1\\r\\n...').  Sends it in one
write (or, with --trickle, one byte per SECONDS), then prints everything the
server sends until it closes, and a last line "CLOSED" (a clean close: EOF
or close_notify) or "TIMEOUT" (still open after --wait, default 10 s).
"""

import socket
import ssl
import sys
import select

port, ca, payload = int(sys.argv[1]), sys.argv[2], eval(sys.argv[3], {"__builtins__": {}})  # the test script's own literal
trickle = wait = None
args = sys.argv[4:]
while args:
    if args[0] == "--trickle":
        trickle = float(args[1])
    elif args[0] == "--wait":
        wait = float(args[1])
    args = args[2:]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.settimeout(wait or 10)
out = b""
try:
    if trickle:
        # Stop sending once the server answers (it closes after a 408).
        for i in range(len(payload)):
            s.sendall(payload[i:i + 1])
            if select.select([s], [], [], trickle)[0]:
                break
    else:
        s.sendall(payload)
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    end = "CLOSED"
except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError) as e:
    end = "CLOSED (%s)" % type(e).__name__
except socket.timeout:
    end = "TIMEOUT"
sys.stdout.write(out.decode("utf-8", "replace"))
print("\n" + end)

#!/usr/bin/python3
"""Many KV values over one keep-alive HTTPS connection (the rewrap tests).

Usage:
  kv_bulk.py PORT CA TOKEN put PREFIX N [GEN]   writes PREFIX/k<i> = {"v": "<i>-<GEN>"}
  kv_bulk.py PORT CA TOKEN check PREFIX N [GEN] reads them back, each must be "<i>-<GEN>"
  kv_bulk.py PORT CA TOKEN journal FILE         checks a writer's journal: lines
      "P PATH VALUE" (sent) and "A PATH VALUE" (acknowledged), in order; each PATH
      must hold its last acknowledged value or a value sent after it
Prints one line "ok N" or the first problems and exits 1.  A 429/5xx or a dropped
connection is retried a few times (a server just restarted).
"""

import http.client
import json
import ssl
import sys
import time

port, ca, token, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
conn = None


def request(method, path, body=None):
    global conn
    for attempt in range(20):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
            hdrs = {"X-Vault-Token": token}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, "/v1/secret/" + path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            if r.status in (429, 500, 503) and attempt < 19:
                time.sleep(0.2)
                continue
            return r.status, payload
        except (OSError, http.client.HTTPException):
            conn = None
            time.sleep(0.2)
    raise SystemExit("kv_bulk: cannot reach the server")


def value_of(path):
    st, payload = request("GET", path)
    if st == 404:
        return None, st
    if st != 200:
        return "HTTP %d %s" % (st, payload[:200]), st
    return json.loads(payload)["data"].get("v"), st


bad = []
if mode in ("put", "check"):
    prefix, n = sys.argv[5], int(sys.argv[6])
    gen = sys.argv[7] if len(sys.argv) > 7 else "0"
    for i in range(n):
        path = "%s/k%06d" % (prefix, i)
        want = "%d-%s" % (i, gen)
        if mode == "put":
            st, payload = request("POST", path, {"v": want})
            if st not in (200, 204):
                bad.append("%s: put HTTP %d %s" % (path, st, payload[:200]))
        else:
            got, st = value_of(path)
            if got != want:
                bad.append("%s: %r, want %r" % (path, got, want))
        if len(bad) >= 5:
            break
    count = n
elif mode == "journal":
    acked, sent = {}, {}
    for line in open(sys.argv[5]):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) != 3:
            continue  # a line cut by the kill
        kind, path, val = parts
        if val == "-":
            val = None  # a delete
        if kind == "P":
            sent.setdefault(path, []).append(val)
        elif kind == "A":
            acked[path] = val
            sent[path] = []
    for path in sorted(set(acked) | set(sent)):
        ok = set(sent.get(path, []))
        if path in acked:
            ok.add(acked[path])
        got, st = value_of(path)
        if path not in acked and got is None:
            continue  # never acknowledged, never landed
        if got not in ok:
            bad.append("%s: %r, want one of %r" % (path, got, sorted(ok, key=str)))
        if len(bad) >= 5:
            break
    count = len(set(acked) | set(sent))
else:
    raise SystemExit("kv_bulk: unknown mode " + mode)
if bad:
    print("\n".join(bad))
    sys.exit(1)
print("ok %d" % count)

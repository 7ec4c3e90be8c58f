#!/usr/bin/python3
"""Offline check of a custosd store's value counts per term (termcount.h).

Usage: termcount_check.py DATA_DIR [--max-term-below N]

Reads the store with mdb_dump (a read transaction of its own, so it also works
while custosd runs), counts every value of the "data" database by its barrier
header with the rule of cs_termcount_classify (not core/seal-config,
core/restore, core/upgrade/*; a header of at least 33 bytes, version 1, term
not 0), and compares with the "term_counts" record custosd keeps in "meta".
Prints "ok TERM:COUNT ..." or the difference and exits 1.  With
--max-term-below N, also fails when a value is stored under a term below N.
"""

import subprocess
import sys

OVERHEAD = 4 + 1 + 12 + 16


def dump(path, db):
    out = subprocess.run(["mdb_dump", "-s", db, path], check=True, capture_output=True, text=True).stdout
    lines = out.split("\n")
    i = lines.index("HEADER=END") + 1
    pairs = []
    while i < len(lines) and lines[i] != "DATA=END":
        k = bytes.fromhex(lines[i].strip())
        v = bytes.fromhex(lines[i + 1].strip())
        pairs.append((k, v))
        i += 2
    return pairs


path = sys.argv[1]
below = None
if len(sys.argv) > 3 and sys.argv[2] == "--max-term-below":
    below = int(sys.argv[3])
scan = {}
for k, v in dump(path, "data"):
    if k in (b"core/seal-config", b"core/restore") or k.startswith(b"core/upgrade/"):
        continue
    if len(v) < OVERHEAD or v[4] != 1:
        continue
    t = int.from_bytes(v[0:4], "big")
    if t == 0:
        continue
    scan[t] = scan.get(t, 0) + 1
kept = {}
for k, v in dump(path, "meta"):
    if k == b"term_counts":
        for j in range(0, len(v), 12):
            kept[int.from_bytes(v[j:j + 4], "big")] = int.from_bytes(v[j + 4:j + 12], "big")
text = " ".join("%d:%d" % (t, scan[t]) for t in sorted(scan))
if scan != kept:
    print("MISMATCH scan %s kept %s" % (text, " ".join("%d:%d" % (t, kept[t]) for t in sorted(kept))))
    sys.exit(1)
if below is not None and any(t < below for t in scan):
    print("values under terms below %d: %s" % (below, text))
    sys.exit(1)
print("ok " + text)

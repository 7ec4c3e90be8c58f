#!/usr/bin/env python3
"""
check_includes: the include graph between source directories has no cycle,
and daemon.h is included only where it may be.

Every `#include "x.h"` of a .c/.h file is resolved the way the build does:
the including file's own directory first, then the one directory that holds
an x.h (a header name found in two other directories is reported: the
build's include path would pick one silently).  An include of a header in another
directory is an edge between the two directories; a cycle among them (say
server/ha -> server -> server/ha) is printed and fails the check.  Generated
headers (custos.pb-c.h) belong to proto/.

Run by ctest (check.includes) with the source directory as argument.
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
DIRS = ["common", "proto", "server", "client"]
GENERATED = {"custos.pb-c.h": "proto"}
# daemon.h: the daemon's insides.  Only main.c and daemon.c use them; the
# request path (server/api/) and snapshots.c / rewrapper.c see the daemon's
# cs_api_env (server/api/api.h).
DAEMON_H_USERS = {"server/main.c", "server/daemon.c"}

# Directories built into one target: a cycle among them is inside that
# target.  custosd = server/ + server/api/ (the api's handlers call
# snapshots.c and rewrapper.c, which take the api's env) until the api
# becomes a library below the daemon (then drop this).
SAME_TARGET = [{"server", "server/api"}]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for top in DIRS:
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def main():
    files = sorted(sources())
    where = {}
    for f in files:
        if f.endswith(".h"):
            where.setdefault(os.path.basename(f), set()).add(os.path.dirname(f))
    problems = []
    edges = {}
    for f in files:
        here = os.path.dirname(f)
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if base == "daemon.h" and f not in DAEMON_H_USERS and \
                    os.path.dirname(f) + "/*" not in DAEMON_H_USERS:
                problems.append("%s includes daemon.h (only %s may)" %
                                (f, ", ".join(sorted(DAEMON_H_USERS))))
            # "net/net.h" style: relative to the including directory or a parent
            cand = os.path.normpath(os.path.join(here, inc))
            if os.path.exists(os.path.join(ROOT, cand)):
                target = os.path.dirname(cand)
            elif "/" in inc and os.path.exists(os.path.join(ROOT, "server", inc)):
                target = os.path.dirname(os.path.normpath(os.path.join("server", inc)))
            elif base in GENERATED:
                target = GENERATED[base]
            elif base in where:
                seen = where[base]
                if f.startswith("server/") or f.startswith("common/") or f.startswith("proto/"):
                    # no server-side target has a client/ directory on its path
                    seen = {d for d in seen if not d.startswith("client")} or seen
                if len(seen) > 1:
                    # Two headers of one name, neither beside the includer:
                    # which one it gets depends on the include path's order.
                    problems.append("%s includes %s, which exists in %s" %
                                    (f, inc, ", ".join(sorted(seen))))
                target = sorted(seen)[0]
            else:
                continue  # a system or test header
            if target != here and not any(here in g and target in g for g in SAME_TARGET):
                edges.setdefault(here, {}).setdefault(target, []).append("%s -> %s" % (f, inc))
    # Cycles: Tarjan's strongly connected components.
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    nodes = set(edges) | {t for e in edges.values() for t in e}
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    for comp in comps:
        lines = ["include cycle between directories: %s" % " <-> ".join(comp)]
        for a in comp:
            for b, why in sorted(edges.get(a, {}).items()):
                if b in comp:
                    lines.append("    %s -> %s: %s%s" % (a, b, "; ".join(why[:3]),
                                                         " ..." if len(why) > 3 else ""))
        problems.append("\n".join(lines))
    if "-v" in sys.argv:
        for a in sorted(edges):
            print("%s -> %s" % (a, ", ".join(sorted(edges[a]))))
    for p in problems:
        print("FAIL:", p)
    print("%d passed, %d failed" % (0 if problems else 1, 1 if problems else 0))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

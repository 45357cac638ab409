#!/usr/bin/env python3
# tools/deps.py - which module includes which module header (README, "Layers"), and a
# check that the listed modules have no cycle among them. A module is a .c file with its
# .h; an edge A -> B means A.c or A.h includes B.h. Arguments: module prefixes to list
# (default: s2s/, core/handle, core/main). Exits 1 when there is a cycle.
import glob
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
mods = {}
for f in sorted(glob.glob('*/*.c')):
    if f.startswith(('tests/', 'build/', 'contrib/')):
        continue
    m = f[:-2]
    inc = set()
    for src in (f, m + '.h'):
        if not os.path.exists(src):
            continue
        for line in open(src):
            mm = re.match(r'#include "(.*)\.h"', line)
            if not mm:
                continue
            h = os.path.normpath(os.path.join(os.path.dirname(f), mm.group(1)))
            if not os.path.exists(h + '.h'):
                h = os.path.normpath(mm.group(1))
            if h != m:
                inc.add(h)
    mods[m] = sorted(inc)
want = sys.argv[1:] or ['s2s/', 'core/handle', 'core/main']
sel = [m for m in mods if any(m.startswith(w) for w in want)]
for m in sel:
    deps = mods[m]
    print('    %-14s -> %s' % (m, ' '.join(deps) if deps else '(none)'))
state, cycles = {}, []


def dfs(u, path):
    state[u] = 1
    for v in mods.get(u, []):
        if v not in sel:
            continue
        if state.get(v) == 1:
            cycles.append(path + [v])
        elif not state.get(v):
            dfs(v, path + [v])
    state[u] = 2


for m in sel:
    if not state.get(m):
        dfs(m, [m])
for c in cycles:
    print('cycle: ' + ' -> '.join(c))
sys.exit(1 if cycles else 0)

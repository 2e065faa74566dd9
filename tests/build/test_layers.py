#!/usr/bin/env python3
"""The core's structure, checked on the objects the build made.

src/ is one folder per layer (src/Makefile.inc lists them, lowest first);
a file may call files of its own layer and of the layers below it, never
above.  Within a layer, no two files call each other in a circle, and no
C folder holds more than 12 .c files, no .c file more than 1,500 lines.
Calls are read from the symbols each object defines and needs (nm).
"""

import glob
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
import harness  # noqa: E402

SRC = harness.TOP_SRCDIR
BUILD = harness.TOP_BUILDDIR
MAX_FILES, MAX_LINES = 12, 1500


def layers():
    """Layer names from src/Makefile.inc's header, lowest first."""
    with open(os.path.join(SRC, 'src', 'Makefile.inc'), encoding='utf-8') as fh:
        text = fh.read()
    head = text.split('\n\n', 1)[0]
    return re.findall(r'^#\s{3}(\w+)\s', head, re.M)


def symbols(obj):
    out = subprocess.run(['nm', obj], capture_output=True, text=True,
                         check=True).stdout
    defined, needed = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDBR':
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == 'U':
            needed.add(parts[1])
    return defined, needed


def objects():
    """{'ledger/ledger.c': path of its object} for every core file."""
    found = {}
    for c in glob.glob(os.path.join(SRC, 'src', '*', '*.c')):
        rel = os.path.relpath(c, os.path.join(SRC, 'src'))
        folder, base = os.path.split(rel)
        stem = base[:-2]
        cands = glob.glob(os.path.join(BUILD, 'src', folder, '.libs',
                                       '*%s.o' % stem)) + \
            glob.glob(os.path.join(BUILD, 'src', folder, '*%s.o' % stem))
        cands = [p for p in cands
                 if re.search(r'(^|[-_/])%s\.o$' % re.escape(stem), p)]
        if cands:
            found[rel] = sorted(cands, key=len)[0]
    return found


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(tap):
    order = layers()
    tap.ok(len(order) >= 5, 'src/Makefile.inc names the layers', order)
    objs = objects()
    sources = sorted(glob.glob(os.path.join(SRC, 'src', '*', '*.c')))
    tap.is_(len(objs), len(sources), 'an object for every file of src/',
            sorted(set(os.path.relpath(s, os.path.join(SRC, 'src'))
                       for s in sources) - set(objs)))
    syms = {rel: symbols(path) for rel, path in objs.items()}
    owner = {}
    for rel, (defined, _) in syms.items():
        for s in defined:
            owner[s] = rel
    graph = {rel: set() for rel in syms}
    for rel, (_, needed) in syms.items():
        for s in needed:
            if s in owner and owner[s] != rel:
                graph[rel].add(owner[s])
    upward = []
    for a, outs in sorted(graph.items()):
        la = a.split('/')[0]
        for b in sorted(outs):
            lb = b.split('/')[0]
            if la in order and lb in order and order.index(lb) > order.index(la):
                upward.append('%s calls up into %s' % (a, b))
    tap.is_(upward, [], 'no file calls a layer above its own')
    tap.is_(cycles(graph), [], 'no call circle between files')

    big, crowded = [], []
    for folder in ['src/' + l for l in order] + ['sdk'] + \
            [os.path.relpath(p, SRC) for p in
             glob.glob(os.path.join(SRC, 'providers', '*'))]:
        files = glob.glob(os.path.join(SRC, folder, '*.c'))
        if len(files) > MAX_FILES:
            crowded.append('%s: %d .c files' % (folder, len(files)))
        for f in files:
            with open(f, encoding='utf-8') as fh:
                n = sum(1 for _ in fh)
            if n > MAX_LINES:
                big.append('%s: %d lines' % (os.path.relpath(f, SRC), n))
    tap.is_(crowded, [], 'no source folder holds more than %d .c files'
            % MAX_FILES)
    tap.is_(big, [], 'no .c file is over %d lines' % MAX_LINES)


if __name__ == '__main__':
    t = harness.Tap()
    main(t)
    t.done()

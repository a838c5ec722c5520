#!/usr/bin/env bash
# Prints the library's module import graph (top-level module -> the top-level modules
# its non-test code names through `crate::` or escaping `super::` paths, `use crate::{a,
# b::c}` forms included) and its strongly connected components, i.e. the cycles.
# Deterministic and quick (no build), so .ci/run prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import pathlib, re, sys

src = pathlib.Path("src")
modules = sorted(
    p.stem if p.is_file() else p.name
    for p in src.iterdir()
    if (p.suffix == ".rs" and p.stem not in ("lib", "main")) or (p.is_dir() and p.name != "bin")
)

RAW = re.compile(r"r(#*)\"")
CHAR = re.compile(r"'(\\.[^']*|[^\\'])'")

def code(text):
    # Test modules sit at the end of a file; what they import is not a dependency.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
    # One pass, so `//` inside a string is no comment and `"` inside a char no string.
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i)
            i = len(text) if end < 0 else end + 2
        elif m := RAW.match(text, i):
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = len(text) if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif m := CHAR.match(text, i):
            i += len(m.group(0))
            out.append("' '")
        elif text[i] == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            out.append('""')
        else:
            out.append(text[i])
            i += 1
    return "".join(out)

def heads(tree):
    # `a, b::c, d::{e, f}` -> a, b, d (names at brace depth 0 before `::`).
    out, depth, token = [], 0, ""
    for ch in tree + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            name = token.strip().split("::")[0].split(" as ")[0].strip()
            if name:
                out.append(name)
            token = ""
            continue
        if depth == 0:
            token += ch
    return out

def imports(path, own):
    text = code(path.read_text())
    found = set()
    for tree in re.findall(r"crate::\{([^;]*?)\}\s*;", text, re.S):
        found.update(heads(tree))
    found.update(re.findall(r"crate::(\w+)", text))
    depth = len(path.relative_to(src).parts) - 1  # src/a/b.rs: super:: is still `a`
    for chain in re.findall(r"((?:super::)+)(\w+)", text):
        if chain[0].count("super::") > depth:
            found.add(chain[1])
    return {m for m in found if m in modules and m != own}

graph = {}
for module in modules:
    files = [src / f"{module}.rs"] if (src / f"{module}.rs").exists() else sorted((src / module).rglob("*.rs"))
    graph[module] = sorted(set().union(*(imports(f, module) for f in files)))

for module in modules:
    print(f"{module} -> {', '.join(graph[module]) or '(nothing)'}")

# Tarjan's strongly connected components.
index, low, stack, on, sccs = {}, {}, [], set(), []
def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        scc = []
        while True:
            w = stack.pop(); on.discard(w); scc.append(w)
            if w == v:
                break
        if len(scc) > 1:
            sccs.append(sorted(scc))
sys.setrecursionlimit(10000)
for v in modules:
    if v not in index:
        visit(v)
print()
if not sccs:
    print("cycles: none")
for scc in sorted(sccs, key=lambda s: (-len(s), s)):
    print(f"cycle ({len(scc)} modules): {', '.join(scc)}")
PY

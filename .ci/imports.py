#!/usr/bin/env python3
"""The import graph of tenancy-core at file granularity, and what the reshape promised of it.

Every path `crate::a::b…`, `super::…` and `self::…` written in a file of tenancy-core/src
(in `use` declarations and in code, grouped `{…}` imports expanded; comments and string
literals ignored; `super` inside an inline `mod x { … }` is the file's own module), and every
path `name::…` whose `name` is a child module of the file's, is resolved to the file of the
longest module prefix it names, and through that file's `pub use` re-exports to the file that
defines the item (`crate::Error` counts as an import of error.rs, not of lib.rs). Two files
that each name the other form a pair. Prints the pairs, the generic files that name a backend
folder (postgres/, mysql/, sqlite/), and the library files over 1,000 lines; with --check,
exits 1 if any generic file names a backend, if there are more than 3 pairs, or if a library
file is over 1,000 lines.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tenancy-core", "src")
BACKENDS = ("postgres", "pg", "mysql", "sqlite")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return rel


def file_of(parts):
    """The file of the longest prefix of `parts` that is a module, and the parts after it."""
    for n in range(len(parts), -1, -1):
        base = os.path.join(ROOT, *parts[:n])
        if n == 0:
            return os.path.join(ROOT, "lib.rs"), parts
        for cand in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.isfile(cand):
                return cand, parts[n:]
    return None, parts


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def expand(prefix, body):
    """`a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e'] (roughly)."""
    out, depth, cur = [], 0, ""
    for ch in body + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            item = cur.strip()
            cur = ""
            if not item:
                continue
            m = re.match(r"^([\w:]*?)::\{(.*)\}$", item, re.S)
            if m:
                out += expand(prefix + m.group(1) + "::", m.group(2))
            else:
                out.append(prefix + item)
        else:
            cur += ch
    return out


def inline_modules(text):
    """The inline `mod name { … }` blocks of a file: (name, start, end) offsets."""
    out = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append((m.group(1), m.start(), i))
    return out


PATH = re.compile(r"(?<![\w:])(crate|super|self|[a-z_]\w*)((?:::\w+)*)(::\{)?")


def paths(text):
    """(inline module path, written path) of every path in the file: `crate::…`, `super::…`,
    `self::…`, and `name::…` where `name` may be a child module (checked when resolving)."""
    text = strip(text)
    mods = inline_modules(text)
    found = []
    for m in PATH.finditer(text):
        if not m.group(2) and not m.group(3):
            continue
        head = m.group(1) + m.group(2)
        inside = [name for name, a, b in mods if a <= m.start() < b]
        if m.group(3):
            # grouped: find the matching brace
            start = m.end()
            depth, i = 1, start
            while i < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            found += [(inside, p) for p in expand(head + "::", text[start:i - 1])]
        else:
            found.append((inside, head))
    return found


def reexports(path):
    """The names a module file re-exports with `pub use`: name -> written path."""
    with open(path) as h:
        text = strip(h.read())
    out = {}
    for m in re.finditer(r"\bpub(?:\([\w:]+\))?\s+use\s+([^;]+);", text):
        body = re.sub(r"\s+", " ", m.group(1)).strip()
        for item in expand("", body):
            item = item.strip()
            alias = None
            if " as " in item:
                item, alias = [x.strip() for x in item.split(" as ")]
            name = alias or item.split("::")[-1]
            if name != "*":
                out[name] = item
    return out


def resolve(src_file, inside, path, depth=0):
    """The file `path` names, written inside the inline modules `inside` of `src_file`: the
    file of the item it names, following `pub use` re-exports (`crate::Error` is error.rs)."""
    base = module_of(src_file) + inside
    parts = [p for p in path.split("::") if p]
    if parts[0] == "crate":
        parts = parts[1:]
    elif parts[0] in ("self", "super"):
        if parts[0] == "self":
            parts = parts[1:]
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        parts = base + parts
    else:
        # `name::…`: a path relative to a child module, or else not of this crate.
        child, rest = file_of(base + parts[:1])
        if child is None or rest:
            return None
        parts = base + parts
    parts = [p for p in parts if p not in ("self",)]
    found, rest = file_of(parts)
    if found and rest and depth < 8:
        target = reexports(found).get(rest[0])
        if target:
            again = resolve(found, [], target, depth + 1)
            if again:
                return again
    return found


def main():
    files = []
    for d, _, names in os.walk(ROOT):
        files += [os.path.join(d, n) for n in names if n.endswith(".rs")]
    edges = {}
    for f in files:
        with open(f) as h:
            text = h.read()
        # A file's own `#[cfg(test)] mod tests` imports are the file's own.
        targets = set()
        for inside, p in paths(text):
            t = resolve(f, inside, p)
            if t and os.path.abspath(t) != os.path.abspath(f):
                targets.add(os.path.abspath(t))
        edges[os.path.abspath(f)] = targets
    rel = lambda p: os.path.relpath(p, ROOT)
    pairs = sorted({tuple(sorted((rel(a), rel(b)))) for a, ts in edges.items() for b in ts
                    if a in edges.get(b, set())})
    backend_of = lambda p: rel(p).split(os.sep)[0] if rel(p).split(os.sep)[0] in BACKENDS else None
    leaks = sorted({(rel(a), rel(b)) for a, ts in edges.items() for b in ts
                    if backend_of(b) and not backend_of(a) and rel(a) != "lib.rs"})
    big = []
    for f in files:
        with open(f) as h:
            n = sum(1 for _ in h)
        if n > 1000:
            big.append((rel(f), n))
    print(f"{len(files)} files, {sum(len(t) for t in edges.values())} file-to-file imports")
    print(f"{len(pairs)} pairs of files that import each other:")
    for a, b in pairs:
        print(f"  {a} <-> {b}")
    print(f"{len(leaks)} imports of a backend folder by a generic file:")
    for a, b in leaks:
        print(f"  {a} -> {b}")
    print(f"{len(big)} library files over 1,000 lines:")
    for f, n in sorted(big):
        print(f"  {f}: {n}")
    if "--check" in sys.argv and (len(pairs) > 3 or leaks or big):
        sys.exit(1)


if __name__ == "__main__":
    main()

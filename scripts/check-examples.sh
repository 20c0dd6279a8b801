#!/usr/bin/env bash
# Every public function, method and type of the given source trees
# (default: src/net and src/fs) has an `# Examples` section in its doc
# comment. Lists each one that has none (path:line: kind name) and exits 1;
# prints "check-examples: ok" and exits 0 when there is none.
#
# "Public" is what the crate exports: a plain `pub` item (the crate warns on
# `unreachable_pub`, so such an item is reachable). Not counted: `pub(crate)`
# / `pub(super)` / private items; methods of trait impls (documented on the
# trait); methods of an `impl` of a type the scanned trees declare non-public;
# anything inside a function body, a non-`pub` inline module or under
# `#[cfg(test)]`.
#
# Usage: scripts/check-examples.sh [DIR_OR_FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  set -- src/net src/fs
fi
exec python3 - "$@" <<'PY'
import pathlib
import re
import sys

ITEM = re.compile(
    r'^\s*pub\s+(?:(?:const|async|unsafe|extern\s+"[^"]*")\s+)*'
    r'(fn|struct|enum|trait|type|union)\s+([A-Za-z_][A-Za-z0-9_]*)'
)
TYPE_DECL = re.compile(
    r'^\s*(pub(?:\([^)]*\))?\s+)?(?:struct|enum|union|type|trait)\s+([A-Za-z_][A-Za-z0-9_]*)'
)
STRING = re.compile(r'b?"(?:\\.|[^"\\])*"')
CHAR = re.compile(r"b?'(?:\\.|[^\\'])'")


def rust_files(args):
    for arg in args:
        p = pathlib.Path(arg)
        if p.is_dir():
            yield from sorted(p.rglob('*.rs'))
        elif p.suffix == '.rs':
            yield p


class Cleaner:
    """Strips strings, char literals and comments from lines of Rust, so
    that braces can be counted (block comments may span lines)."""

    def __init__(self):
        self.in_block = False

    def clean(self, line):
        out = ''
        i = 0
        line = CHAR.sub("' '", STRING.sub('""', line))
        while i < len(line):
            if self.in_block:
                end = line.find('*/', i)
                if end < 0:
                    return out
                self.in_block = False
                i = end + 2
            elif line.startswith('/*', i):
                self.in_block = True
                i += 2
            elif line.startswith('//', i):
                return out
            else:
                out += line[i]
                i += 1
        return out


def impl_type(header):
    """The type an `impl` header is for, or None for a trait impl."""
    h = re.sub(r'^(unsafe\s+)?impl\s*', '', header)
    if h.startswith('<'):
        depth = 0
        for i, c in enumerate(h):
            depth += {'<': 1, '>': -1}.get(c, 0)
            if depth == 0:
                h = h[i + 1:]
                break
    if re.search(r'\bfor\b', re.sub(r'for\s*<', '', h)):
        return None
    m = re.match(r'\s*(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Za-z_][A-Za-z0-9_]*)', h)
    return m.group(1) if m else ''


def classify(header, cfg_test):
    h = ' '.join(header.split())
    if cfg_test:
        return ('skip', None)
    if re.match(r'(unsafe\s+)?impl\b', h):
        t = impl_type(h)
        return ('trait_impl', None) if t is None else ('impl', t)
    if re.search(r'\bfn\b', h):
        return ('fn', None)
    if re.match(r'(pub(\([^)]*\))?\s+)?(unsafe\s+)?trait\b', h):
        return ('trait', None)
    if re.match(r'(pub(\([^)]*\))?\s+)?mod\b', h):
        # Items of a private inline module are not the crate's API (a
        # sealed trait's helpers), even if marked `pub`.
        return ('block', None) if h.startswith('pub mod') else ('skip', None)
    return ('block', None)


def scan(files):
    public, private = set(), set()
    for f in files:
        for line in f.read_text().splitlines():
            m = TYPE_DECL.match(line)
            if m:
                vis = (m.group(1) or '').strip()
                (public if vis == 'pub' else private).add(m.group(2))
    hidden = private - public

    missing = []
    for f in files:
        cleaner = Cleaner()
        stack = []          # (kind, type) per open brace
        header = ''         # code since the last `;`, `{` or `}`
        doc = []            # the doc comment lines before the next item
        cfg_test = False    # a `#[cfg(test)]` before the next item
        attr = 0            # open brackets of an attribute spanning lines
        for no, raw in enumerate(f.read_text().splitlines(), 1):
            s = raw.strip()
            if attr > 0:
                attr += s.count('[') - s.count(']')
                continue
            if s.startswith('///'):
                doc.append(s)
                continue
            if s.startswith('#[') or s.startswith('#!['):
                if re.match(r'#\[cfg\((.*\b)?test\b', s) and 'not(test)' not in s:
                    cfg_test = True
                attr = s.count('[') - s.count(']')
                continue
            code = cleaner.clean(raw)
            m = ITEM.match(code)
            if m:
                kinds = [k for k, _ in stack]
                skipped = cfg_test or any(
                    k in ('skip', 'fn', 'trait_impl', 'trait') for k in kinds
                )
                impls = [t for k, t in stack if k == 'impl']
                if impls and impls[-1] in hidden:
                    skipped = True
                kind, name = m.group(1), m.group(2)
                if kind == 'fn' and impls:
                    name = f'{impls[-1]}::{name}'
                    kind = 'method'
                if not skipped and not any('# Examples' in d for d in doc):
                    missing.append(f'{f}:{no}: {kind} {name}')
            if code.strip():
                doc = []
            for c in code:
                if c == '{':
                    stack.append(classify(header, cfg_test))
                    header, cfg_test = '', False
                elif c == '}':
                    if stack:
                        stack.pop()
                    header = ''
                elif c == ';':
                    header, cfg_test = '', False
                else:
                    header += c
            header += ' '
    return missing


files = list(rust_files(sys.argv[1:]))
if not files:
    sys.exit('check-examples: no Rust files under ' + ' '.join(sys.argv[1:]))
missing = scan(files)
for line in missing:
    print(line)
if missing:
    print(f'check-examples: {len(missing)} public items without an `# Examples` section')
    sys.exit(1)
print(f'check-examples: ok ({len(files)} files)')
PY

#!/usr/bin/env python3
"""Writes the README's marked code blocks out as files, for
tests/package/consume.sh to build against the installed package.

A block is marked by an HTML comment on the line before its opening fence:

    <!-- snippet: my_proxy.cpp -->
    ```cpp
    ...
    ```

and is written, exactly as it stands, to OUT_DIR/my_proxy.cpp. Fails (exit 1)
when a marker is not followed by a fenced block, a name repeats or is not a
plain file name, or a name in --require is missing.

  readme_snippets.py README.md OUT_DIR [--require NAME ...]
"""
import argparse
import os
import re
import sys

MARKER = re.compile(r"^<!--\s*snippet:\s*(\S+)\s*-->\s*$")
FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")


def extract(text):
    """[(name, code)] in README order."""
    lines = text.splitlines()
    out, names = [], set()
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        name = m.group(1)
        if "/" in name or name.startswith("."):
            sys.exit(f"line {i + 1}: snippet name {name!r} is not a plain file name")
        if name in names:
            sys.exit(f"line {i + 1}: snippet {name!r} appears twice")
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if not fence:
            sys.exit(f"line {i + 1}: snippet {name!r} is not followed by a fenced code block")
        body = []
        for j in range(i + 2, len(lines)):
            if lines[j].strip() == fence.group(1):
                break
            body.append(lines[j])
        else:
            sys.exit(f"line {i + 1}: snippet {name!r}: its code block never closes")
        names.add(name)
        out.append((name, "\n".join(body) + "\n"))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("readme")
    parser.add_argument("out_dir")
    parser.add_argument("--require", nargs="*", default=[])
    args = parser.parse_args()
    with open(args.readme, encoding="utf-8") as f:
        snippets = extract(f.read())
    missing = set(args.require) - {name for name, _ in snippets}
    if missing:
        sys.exit(f"{args.readme}: no snippet named {', '.join(sorted(missing))}")
    os.makedirs(args.out_dir, exist_ok=True)
    for name, code in snippets:
        with open(os.path.join(args.out_dir, name), "w", encoding="utf-8") as f:
            f.write(code)
        print(f"{name}: {code.count(chr(10))} lines")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Unit tests mirror source paths.

The test of lib/<part>/<path>/<file>.cpp is tests/unit/<part>/<path>/test_<file>.cpp
(a header-only piece, lib/<part>/<path>/<file>.hpp, is tested the same way).
This check fails, listing the offenders, when a tests/unit/**/test_X.cpp has
no lib/**/X.cpp or X.hpp at the mirrored path, or is named by no test target
(then it would never be compiled).

usage: check_test_paths.py [SOURCE_DIR]   (default: this script's parent's parent)
"""
import sys
from pathlib import Path

# Test files allowed to break the rule, each with its reason. Keep it short.
EXCEPTIONS: set[str] = set()


def offenders(root: Path) -> list[str]:
    unit = root / "tests" / "unit"
    lib = root / "lib"
    found = []
    for test in sorted(unit.rglob("test_*.cpp")):
        rel = test.relative_to(unit)
        if rel.as_posix() in EXCEPTIONS:
            continue
        stem = rel.name[len("test_"):-len(".cpp")]
        parent = rel.parent
        if parent == Path("."):
            found.append(f"tests/unit/{rel.as_posix()}: at tests/unit/ root; "
                         f"move it to tests/unit/<part>/ beside the source it tests")
            continue
        if not any((lib / parent / (stem + ext)).is_file() for ext in (".cpp", ".hpp")):
            found.append(f"tests/unit/{rel.as_posix()}: no lib/{(parent / stem).as_posix()}.cpp "
                         f"(or .hpp)")
    # A test file the build does not name is never compiled: it passes
    # without running. Every one must appear in tests/CMakeLists.txt or a
    # tests/unit/**/sources.cmake list.
    lists = [root / "tests" / "CMakeLists.txt", *sorted(unit.rglob("sources.cmake"))]
    named = "\n".join(p.read_text() for p in lists if p.is_file())
    for test in sorted(unit.rglob("test_*.cpp")):
        rel = test.relative_to(unit).as_posix()
        short = test.relative_to(unit / rel.split("/")[0]).as_posix() if "/" in rel else rel
        if f"unit/{rel}" not in named and f"/{short}" not in named:
            found.append(f"tests/unit/{rel}: not in any test target (tests/CMakeLists.txt, sources.cmake)")
    for entry in sorted(EXCEPTIONS):
        if not (unit / entry).is_file():
            found.append(f"tests/unit/{entry}: listed in EXCEPTIONS but does not exist; drop the entry")
    return found


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    bad = offenders(root)
    if bad:
        print("unit tests must mirror source paths: the test of lib/<part>/<file>.cpp is "
              "tests/unit/<part>/test_<file>.cpp (DEVELOPERS.md, Tests)")
        for line in bad:
            print("  " + line)
        return 1
    print("unit test paths mirror lib/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

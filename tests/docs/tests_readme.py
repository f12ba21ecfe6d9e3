#!/usr/bin/env python3
"""tests_readme.py: every test that ctest knows is described in tests/README.md, under its label.

    python3 tests/docs/tests_readme.py CTEST BUILD_DIR tests/README.md

Reads the registered tests with `CTEST --show-only=json-v1` in BUILD_DIR, and the README's tables: a
heading `## ... (`ctest -L LABEL`)` opens the section of LABEL; a table row under it whose first cell
holds `NAME` or `PREFIX*` (backticked, several allowed) covers the test of that exact name or every test
whose name starts with PREFIX (the exact name wins, then the longest prefix). A row whose last cell says
`long` covers tests labelled long, and only those.
Fails (exit 1), naming each, when a test is covered by no row, when its row is under a label the test
does not carry, when its long-ness differs from the row's, or when a row's NAME is not registered or no
registered test starts with its PREFIX, unless the row says "only with" or "only when" (tests that a
build may leave out: no LLVM, no NNC_FUZZ...).
Exit 2 on a usage error or when ctest cannot list the tests.
What it does not do: judge the descriptions, or run any test.
"""
import json
import re
import subprocess
import sys


def read_rows(path):
    """[(label, patterns, long, optional, line number)] from the README's tables"""
    rows, label = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"^##+ .*`ctest -L ([\w.-]+)`", line)
            if m:
                label = m.group(1)
                continue
            if line.startswith("## "):
                label = None
            if not line.startswith("| `") or label is None:
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            pats = re.findall(r"`([^`]+)`", cells[0])
            optional = "only with" in line or "only when" in line
            rows.append((label, pats, "long" in cells[-1], optional, n))
    return rows


def list_tests(ctest, build):
    try:
        out = subprocess.run([ctest, "--show-only=json-v1"], cwd=build, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"tests_readme.py: cannot list the tests of {build}: {e}")
        sys.exit(2)
    tests = {}
    for t in json.loads(out.stdout).get("tests", []):
        labels = []
        for p in t.get("properties", []):
            if p.get("name") == "LABELS":
                labels = p.get("value", [])
        tests[t["name"]] = set(labels)
    return tests


def row_of(name, rows):
    exact = [r for r in rows if name in r[1]]
    if exact:
        return exact[0]
    best, best_len = None, -1
    for r in rows:
        for p in r[1]:
            if p.endswith("*") and name.startswith(p[:-1]) and len(p) > best_len:
                best, best_len = r, len(p)
    return best


def main():
    if len(sys.argv) != 4:
        print(__doc__.split("\n")[2].strip())
        return 2
    ctest, build, readme = sys.argv[1:]
    rows = read_rows(readme)
    tests = list_tests(ctest, build)
    if not rows or not tests:
        print(f"tests_readme.py: {len(rows)} rows in {readme}, {len(tests)} tests in {build}")
        return 2
    bad = []
    for name, labels in sorted(tests.items()):
        r = row_of(name, rows)
        if r is None:
            bad.append(f"{name} (labels {','.join(sorted(labels)) or 'none'}): not in {readme}")
            continue
        label, _, long_row, _, line = r
        if label not in labels:
            bad.append(f"{name}: README line {line} puts it under `{label}`, its labels are {sorted(labels)}")
        if long_row != ("long" in labels):
            bad.append(f"{name}: README line {line} says it is {'' if long_row else 'not '}long, its labels say otherwise")
    for label, pats, _, optional, line in rows:
        for p in pats:
            hit = any(t.startswith(p[:-1]) for t in tests) if p.endswith("*") else p in tests
            if not hit and not optional:
                bad.append(f"README line {line} ({p}, `{label}`): no such test is registered")
    for b in bad:
        print("FAIL " + b)
    if bad:
        return 1
    print(f"ok: {len(tests)} tests under {len({l for l in (r[0] for r in rows)})} labels, every one in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

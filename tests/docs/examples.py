#!/usr/bin/env python3
"""examples.py: the ```nn examples of docs/*.md are what the docs say they are, and links resolve.

  examples.py NNC SOURCE_DIR

Every ```nn block must pass `nnc check` silently (exit 0, no output), except
  - a block followed, before the next code block, by "`nnc check NAME.nn` prints" and a ```text block:
    written as NAME.nn, `nnc check NAME.nn` must print exactly that text and exit 1;
  - a file of several models (`the file defines N models`): each model must pass with --model NAME.
Every relative link of README.md, examples/README.md, bench/README.md and docs/*.md must name a file of
the tree, and a `#anchor` a heading of that file (GitHub's rule: lower case, punctuation dropped, spaces
made hyphens). Prints each failure; exits 0 when every block and link holds, 1 otherwise. What it does
not check: code blocks of other languages (C, shell), messages quoted in prose, or web links.
"""
import os
import re
import subprocess
import sys
import tempfile


def blocks(text):
    """(lang, body, prose after the block up to the next block) for every fenced block."""
    parts = re.split(r"^```(\w*)\n(.*?)^```\n", text, flags=re.S | re.M)
    out = []
    # re.split gives [prose, lang, body, prose, lang, body, ..., prose]
    for i in range(1, len(parts) - 1, 3):
        out.append((parts[i], parts[i + 1], parts[i + 2]))
    return out


def check(nnc, cwd, name, *args):
    r = subprocess.run([nnc, "check", name, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def slug(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(path):
    """The text of a markdown file without its fenced code blocks."""
    text = open(path, encoding="utf-8").read()
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def check_links(src):
    failures = 0
    docs = [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(src, "docs"))) if f.endswith(".md")]
    for doc in ["README.md", "examples/README.md", "bench/README.md"] + docs:
        if not os.path.exists(os.path.join(src, doc)):
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(os.path.join(src, doc))):
            if re.match(r"\w+:", target):
                continue
            name, _, anchor = target.partition("#")
            path = os.path.normpath(os.path.join(src, os.path.dirname(doc), name)) if name else os.path.join(src, doc)
            if not os.path.exists(path):
                print("FAIL  %s: link to a missing file: %s" % (doc, target))
                failures += 1
            elif anchor and path.endswith(".md"):
                heads = {slug(h) for h in re.findall(r"^#+ (.*)$", prose(path), flags=re.M)}
                if anchor not in heads:
                    print("FAIL  %s: link to a missing heading: %s" % (doc, target))
                    failures += 1
    return failures


def main(nnc, src):
    docs = os.path.join(src, "docs")
    failures = check_links(src)
    count = 0
    with tempfile.TemporaryDirectory(prefix="nnc_docs_") as tmp:
        for doc in sorted(f for f in os.listdir(docs) if f.endswith(".md")):
            bl = blocks(open(os.path.join(docs, doc), encoding="utf-8").read())
            for k, (lang, body, after) in enumerate(bl):
                if lang != "nn":
                    continue
                count += 1
                where = "%s, nn example %d" % (doc, k + 1)
                m = re.search(r"`nnc check (\w+\.nn)` prints", after)
                if m and k + 1 < len(bl) and bl[k + 1][0] == "text":
                    name, want, want_rc = m.group(1), bl[k + 1][1], 1
                else:
                    name, want, want_rc = "example.nn", "", 0
                open(os.path.join(tmp, name), "w", encoding="utf-8").write(body)
                models = re.findall(r"^model (\w+)", body, flags=re.M)
                runs = [[]] if len(models) < 2 or want_rc else [["--model", m] for m in models]
                for extra in runs:
                    rc, got = check(nnc, tmp, name, *extra)
                    if rc != want_rc or got != want:
                        failures += 1
                        print("FAIL  %s: nnc check %s %s exits %d (want %d)" % (where, name, " ".join(extra), rc, want_rc))
                        for line in got.splitlines()[:12]:
                            print("    got:  " + line)
                        for line in want.splitlines()[:12]:
                            print("    want: " + line)
    if count == 0:
        print("FAIL  no ```nn examples in %s" % docs)
        return 1
    print("%d nn examples; %d failures (links included)" % (count, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: examples.py NNC SOURCE_DIR")
    sys.exit(main(os.path.abspath(sys.argv[1]), sys.argv[2]))

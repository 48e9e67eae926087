#!/usr/bin/env python3
"""Every Bazel label and GP_TEST case the docs name exists.

    scripts/doc_labels_check.py [--root DIR] [-v]

Reads README.md, docs/*.md, interop-tests/README.md and bench/README.md.
Exit 0 when all hold, 1 with one line per finding. From the source text
alone (no Bazel query: this runs as a test, inside Bazel):

- `//pkg:target`: pkg/BUILD exists and defines `name = "target"` (or the
  as a string literal, as a list comprehension gives it, or a target a macro
  derives from one: gp_fuzz_target's NAME_corpus_test, the proto and Go
  rules' NAME_pb, NAME_build, ...), or target is a file in pkg. `:target` alone is in the package of the label before it.
  `//pkg`, `//pkg/...`, `//pkg:all` need the package (or folder) only.
  `t:X` and `t:pkg:X` (docs/interop.md's short form) are
  `//interop-tests:X` and `//interop-tests/pkg:X`.
- `GP_TEST(name)`: a case of that name is in the sources of the target named
  last before it in the same paragraph or table row (its srcs, read from its
  BUILD rule; the whole package when the rule lists none it can read); with
  no target before it, anywhere in the tree.
"""

import argparse
import os
import re
import sys

DOCS = ["README.md", "interop-tests/README.md", "bench/README.md"]
SKIP_DIRS = {".git", "node_modules"}

LABEL = re.compile(r"(?<![\w/:])(//[A-Za-z0-9_./-]*(?::[A-Za-z0-9_.+-]+)?)|"
                   r"`(t:[A-Za-z0-9_.+-]+(?::[A-Za-z0-9_.+-]+)?)`|"
                   r"(?<![\w/:])`(:[A-Za-z0-9_.+-]+)`|"
                   r"GP_TEST\(([A-Za-z0-9_]+)\)")
CASE = re.compile(r"GP_TEST\(\s*([A-Za-z0-9_]+)\s*\)")
DERIVED = ("_pb", "_gp", "_pb_gen", "_protos", "_options", "_build")
SRC = re.compile(r'"([^"$:]+\.(?:c|h|py|go|sh))"')


def doc_files(root):
    out = [d for d in DOCS if os.path.exists(os.path.join(root, d))]
    ddir = os.path.join(root, "docs")
    if os.path.isdir(ddir):
        out += sorted("docs/" + f for f in os.listdir(ddir) if f.endswith(".md"))
    return out


def build_file(root, pkg):
    for b in ("BUILD", "BUILD.bazel"):
        p = os.path.join(root, pkg, b)
        if os.path.isfile(p):
            return p
    return None


def rule_block(text, name):
    """The text of the rule whose name is NAME, or None."""
    m = re.search(r'\bname\s*=\s*"%s"' % re.escape(name), text)
    if not m:
        return None
    start = text.rfind("\n", 0, text.rfind("(", 0, m.start())) + 1
    depth, i = 0, text.find("(", start)
    while i < len(text):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    return text[start:]


class Tree:
    def __init__(self, root):
        self.root = root
        self.builds = {}
        self.cases_by_file = {}

    def build_text(self, pkg):
        if pkg not in self.builds:
            p = build_file(self.root, pkg)
            self.builds[pkg] = open(p).read() if p else None
        return self.builds[pkg]

    def has_target(self, pkg, target):
        text = self.build_text(pkg)
        if text is None:
            return False
        # Names built in a list comprehension or by a macro show up as string
        # literals; targets a macro derives from a name carry a suffix.
        if '"%s"' % target in text:
            return True
        for suffix in DERIVED:
            base = target[:-len(suffix)]
            if target.endswith(suffix) and '"%s"' % base in text:
                return True
        # gp_fuzz_target(name = X, corpus = ...) also makes X_corpus_test.
        if target.endswith("_corpus_test"):
            block = rule_block(text, target[:-len("_corpus_test")])
            if block and "gp_fuzz_target" in block and "corpus" in block:
                return True
        return os.path.exists(os.path.join(self.root, pkg, target))

    def cases(self, path):
        if path not in self.cases_by_file:
            try:
                text = open(path, errors="replace").read()
            except OSError:
                text = ""
            self.cases_by_file[path] = set(CASE.findall(text))
        return self.cases_by_file[path]

    def walk(self, top):
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith("bazel-")]
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.join(d, f)

    def target_sources(self, pkg, target):
        text = self.build_text(pkg) or ""
        block = rule_block(text, target) or ""
        srcs = [os.path.join(self.root, pkg, s) for s in SRC.findall(block)]
        srcs = [s for s in srcs if os.path.isfile(s)]
        if not srcs:
            srcs = list(self.walk(os.path.join(self.root, pkg)))
        return srcs

    def case_in(self, name, pkg, target):
        if pkg is None:
            files = self.walk(self.root)
        else:
            files = self.target_sources(pkg, target)
        return any(name in self.cases(f) for f in files)


def check(root, verbose=False):
    tree = Tree(root)
    bad, seen = [], 0
    for doc in doc_files(root):
        ctx = (None, None)
        for ln, line in enumerate(open(os.path.join(root, doc)), 1):
            if not line.strip() or line.lstrip().startswith("|"):
                ctx = (None, None)
            for m in LABEL.finditer(line):
                full, alias, short, case = m.groups()
                if alias:
                    # docs/interop.md: "`t:` is `//interop-tests/`".
                    rest = alias[2:]
                    full = "//interop-tests" + ("/" + rest if ":" in rest else ":" + rest)
                where = "%s:%d" % (doc, ln)
                seen += 1
                if case:
                    if not tree.case_in(case, *ctx):
                        own = "//%s:%s" % ctx if ctx[0] is not None else "the tree"
                        bad.append("%s: GP_TEST(%s) is not in %s" % (where, case, own))
                    continue
                if short:
                    if ctx[0] is None:
                        seen -= 1  # `:name` with no label before: not a label
                        continue
                    pkg, target = ctx[0], short[1:]
                    full = "//%s:%s" % (pkg, target)
                else:
                    body = full[2:].rstrip(".")
                    pkg, _, target = body.partition(":")
                    pkg = pkg.rstrip("/")
                    if pkg.endswith("/..."):
                        pkg, target = pkg[:-4], "..."
                    elif pkg == "...":
                        pkg, target = "", "..."
                full_dir = os.path.join(root, pkg)
                if target in ("", "all", "..."):
                    if not os.path.isdir(full_dir):
                        bad.append("%s: %s: no folder %s" % (where, full, pkg or "."))
                    elif target == "" and not build_file(root, pkg) and not full.endswith("/"):
                        bad.append("%s: %s: no BUILD in %s" % (where, full, pkg))
                    continue
                if not tree.has_target(pkg, target):
                    bad.append("%s: %s does not exist" % (where, full))
                    ctx = (None, None)
                    continue
                ctx = (pkg, target)
    for b in bad:
        print(b)
    if verbose or bad:
        print("%d labels and cases checked, %d not found" % (seen, len(bad)))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    root = a.root
    if root is None:
        # Under Bazel the script is a symlink into the workspace: read the
        # real tree there (as layering.py does).
        root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return check(root, a.v)


if __name__ == "__main__":
    sys.exit(main())

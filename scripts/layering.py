#!/usr/bin/env python3
"""Layering check for transport/ (docs/architecture.md, docs/contributing.md).

    scripts/layering.py [--root DIR] [-v]

Exit 0 when the tree keeps its layers, 1 (with one line per finding) when not.
Three checks, all from the source text (no Bazel query, no compiler):

1. Includes go down the layers. Every library file (.c/.h under transport/,
   not *_test.c, *_fuzz.c, fuzz_*.c, *_bench.c, testdata/, transport/testing/,
   interop/) may include, with `#include "transport/..."`, only its own layer
   and the layers below it (LAYERS; a layer's folder includes its subfolders,
   so wire/grpc/proto/ is wire/grpc). The order, bottom up, as the real include
   graph has it (d51ef71):

     base                                       strbuf, log, err, sync
     handshake net tls process msg supervise core
                                                each on base alone: these seven
                                                never include each other
     yamux  wire/netrpc/gob                     on the row above; not on each other
                                                (yamux, go-plugin's multiplexer,
                                                serves both wires: netrpc runs on
                                                it, gRPC's multiplexed broker too)
     wire/netrpc/rpc                            on yamux and gob
     wire/netrpc                                on rpc (and so yamux, gob)
     wire/grpc                                  on the second row and yamux; never netrpc,
                                                nor netrpc grpc: the two wires
                                                meet only in core
     wire (wires_*.c, the link-time choice)     on both wires
     host   plugin                              on the second row only: they reach
                                                a wire through core/wire.h (the
                                                wire table), never through a
                                                wire's header; not on each other
     store                                      on host (the plugin store: records,
                                                blobs, the lock; gpctl and the
                                                manager sit on it)

   transport/testing is never included by library code. A folder missing from
   LAYERS is an error: add it to the table (and to docs/architecture.md).

2. No cycles between files. A node is a file name without its extension
   (x.c and x.h are one node). x -> y when x.c or x.h includes y.h, and when
   x.c names a function that y.c defines (not static; found by name in the
   text without comments and strings), which is what the linker sees: x.o
   needs y.o. So a header implemented in several files (wire/grpc/grpc.h) or
   declared far from its definition (gp__netrpc_serve_service: service.h,
   plugin.c) leads to the file that really does the work. A header's own
   prototypes are not uses, and a name a file defines itself (main, the two
   gp__wire_find) is not one either. Each loop is printed as its set of nodes,
   one loop through them, and every include or use inside the set.

3. No cycles between Bazel packages under transport/: from each BUILD file's
   `deps` and `actual` labels (tests too; not data), plus what the project's
   macros add (MACRO_DEPS), an edge package -> package. A test that links a
   package above its own closes a loop: it belongs in that higher package.

What exists today and is being removed is in the ALLOWED_* lists below, each
with why. A finding inside an allowed entry passes; anything else fails, so a
new violation or a new node in an old cycle fails. An allowed entry that no
longer matches is printed as a note: delete it.
"""

import argparse
import ast
import os
import re
import sys

# ---------------------------------------------------------------------------
# The layers: each names the layers it sits on directly; "may include" is the
# transitive closure of this plus the layer itself.

_ROW2 = ["handshake", "net", "tls", "process", "msg", "supervise", "core"]
LAYERS = {
    "base": [],
    **{name: ["base"] for name in _ROW2},
    "yamux": _ROW2,
    "wire/netrpc/gob": _ROW2,
    "wire/netrpc/rpc": ["yamux", "wire/netrpc/gob"],
    "wire/netrpc": ["wire/netrpc/rpc"],
    "wire/grpc": _ROW2 + ["yamux"],
    "wire": ["wire/grpc", "wire/netrpc"],
    "host": _ROW2,
    "plugin": _ROW2,
    "store": ["host"],
}
# Layers whose folder is exactly transport/<name> (no subfolders): a new
# folder under transport/wire/ is not "the wire table choice" by accident.
_EXACT_FOLDER = {"wire"}

# Includes that break the rules today, as (including file, included file).
ALLOWED_INCLUDES = set()

# File cycles that exist today (sets of nodes, see 2. above). A cycle passes
# when all its nodes are inside one entry, so shrinking it passes and growing
# it fails.
ALLOWED_FILE_CYCLES = [
    # The gRPC broker and the conns and servers it makes: client.c and
    # server.c run a broker (broker.h) on every connection; broker.c makes
    # client conns on brokered fds (gp__grpc_conn_from_fd) and servers for
    # the ids it serves. (Streams borrow their conn through a table now.)
    # client_tls: brokered connections use the main one's TLS, so broker.c
    # dials with gp__grpc_conn_dial_tls too (client_tls.c, on client.c).
    {
        "transport/wire/grpc/broker",
        "transport/wire/grpc/client",
        "transport/wire/grpc/client_tls",
        "transport/wire/grpc/server",
    },
    # The host's files share client_internal.h and call each other:
    # client.c -> client_detach.c (release, verify_pid) -> client.c
    # (gp__client_fail); client_registry.c kills clients (gp_client_kill) that
    # client.c and client_config.c register.
    {
        "transport/host/client",
        "transport/host/client_config",
        "transport/host/client_detach",
        "transport/host/client_registry",
    },
    # yamux's private header includes the public one, and mux_session.c
    # includes the private one: an include loop, no use loop (mux_session.c
    # calls nothing in mux_stream.c).
    {"transport/yamux/mux_internal", "transport/yamux/mux_session"},
]

# Package cycles that exist today (sets of packages), same rule as above.
# Only tests close them today.
ALLOWED_PACKAGE_CYCLES = []

# Deps the project's macros add that a BUILD file does not spell out.
MACRO_DEPS = {
    "gp_fuzz_target": ["//transport/testing:fuzz_main"],  # bazel/defs.bzl
    "goplugin_c_proto_library": ["//transport/core", "//transport/msg"],  # bazel/goplugin.bzl
    "nanopb_library": ["//transport/msg"],  # codegen/nanopb.bzl
}

_INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"(transport/[^"]+)"')
_TEST_FILE_RE = re.compile(r"(_test\.c|_fuzz\.c|_bench\.c)$|^fuzz_.*\.c$")
_SKIP_DIRS = {"testdata", "interop"}


def closure(layers):
    """layer -> every layer it may include (itself and everything below)."""
    out = {}

    def walk(name, seen):
        for below in layers[name]:
            if below not in seen:
                seen.add(below)
                walk(below, seen)
        return seen

    for name in layers:
        out[name] = walk(name, {name})
    return out


def layer_of(rel):
    """The layer of a path relative to the root, "testing", or None."""
    parts = rel.split("/")
    if parts[0] != "transport" or len(parts) < 3:
        return None
    folder = "/".join(parts[1:-1])
    if folder == "testing" or folder.startswith("testing/"):
        return "testing"
    best = None
    for name in LAYERS:
        exact = folder == name
        inside = folder.startswith(name + "/") and name not in _EXACT_FOLDER
        if (exact or inside) and (best is None or len(name) > len(best)):
            best = name
    return best


def library_files(root):
    """Library .c/.h files under transport/, as paths relative to root."""
    out = []
    top = os.path.join(root, "transport")
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _SKIP_DIRS and not (rel_dir == "transport" and d == "testing"))
        for f in sorted(filenames):
            if f.endswith((".c", ".h")) and not _TEST_FILE_RE.search(f):
                out.append(rel_dir + "/" + f)
    return out


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
        return fh.read()


def includes(text):
    """[(line number, "transport/...")] for each quoted transport include."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _INCLUDE_RE.match(line)
        if m:
            out.append((n, os.path.normpath(m.group(1)).replace(os.sep, "/")))
    return out


# ---------------------------------------------------------------------------
# Which functions a header declares and a .c defines: enough C to find
# top-level prototypes and definitions in this project's style.

_STRIP_RE = re.compile(
    r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_NAME_BEFORE_PAREN_RE = re.compile(r"([A-Za-z_]\w*)\s*$")
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")


def _clean(text):
    text = _STRIP_RE.sub(lambda m: '""' if m.group(0)[0] in "\"'" else " ", text)
    # Preprocessor lines, with their continuations.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    # __attribute__((...)) anywhere: its parentheses are not a function's.
    while True:
        i = text.find("__attribute__")
        if i < 0:
            return text
        j = text.find("(", i)
        if j < 0:
            return text[:i] + text[i + len("__attribute__"):]
        depth, k = 0, j
        while k < len(text):
            depth += {"(": 1, ")": -1}.get(text[k], 0)
            k += 1
            if depth == 0:
                break
        text = text[:i] + " " + text[k:]


def _top_level(text):
    """(head, has_body) for each top-level declaration or definition."""
    out, cur, depth = [], [], 0
    for ch in _clean(text):
        if ch == "{":
            if depth == 0 and "".join(cur).rstrip().endswith(")"):
                out.append(("".join(cur), True))  # a function definition
                cur = None
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and cur is None:
                cur = []
        elif depth == 0 and cur is not None:
            if ch == ";":
                out.append(("".join(cur), False))
                cur = []
            else:
                cur.append(ch)
    return out


def _function_name(head, with_static=False):
    head = head.strip()
    if re.match(r"typedef\b", head) or "(" not in head:
        return None
    if not with_static and re.match(r"static\b", head):
        return None
    before = head[: head.index("(")]
    if "=" in before:
        return None
    m = _NAME_BEFORE_PAREN_RE.search(before)
    return m.group(1) if m else None


def declared(text):
    names = set()
    for head, has_body in _top_level(text):
        name = _function_name(head)
        if name and not has_body:
            names.add(name)
    return names


def defined(text, with_static=False):
    names = set()
    for head, has_body in _top_level(text):
        name = _function_name(head, with_static)
        if name and has_body:
            names.add(name)
    return names


# ---------------------------------------------------------------------------
# Graphs.

def sccs(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so deep graphs do not hit the recursion limit.
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph, comp):
    """A shortest loop through the component's first node, for the message."""
    start = min(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in comp and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


def allowed_cycle(comp, allowed):
    return any(comp <= entry for entry in allowed)


# ---------------------------------------------------------------------------
# The three checks. Each returns (errors, allowed findings, notes).

def check_includes(root, files, texts):
    may = closure(LAYERS)
    errors, allowed, seen_allowed = [], [], set()
    for rel in files:
        mine = layer_of(rel)
        if mine is None:
            errors.append("%s: in no layer (add its folder to LAYERS in scripts/layering.py)" % rel)
            continue
        for line, inc in includes(texts[rel]):
            theirs = layer_of(inc)
            if theirs == mine or (theirs is not None and theirs in may[mine]):
                continue
            if theirs is None:
                why = "which is in no layer"
            elif theirs == "testing":
                why = "test-only code"
            elif mine in may[theirs]:
                why = "an upward include"
            else:
                why = "%s may include only %s" % (
                    mine, ", ".join(sorted(may[mine])))
            msg = "%s:%d: %s (layer %s) includes %s (layer %s): %s" % (
                rel, line, rel, mine, inc, theirs, why)
            if (rel, inc) in ALLOWED_INCLUDES:
                allowed.append(msg)
                seen_allowed.add((rel, inc))
            else:
                errors.append(msg)
    notes = ["allowed include %s -> %s no longer occurs: delete it from ALLOWED_INCLUDES" % e
             for e in sorted(ALLOWED_INCLUDES - seen_allowed)]
    return errors, allowed, notes


def node_of(rel):
    return os.path.splitext(rel)[0]


def file_graph(files, texts):
    """node -> {node: [evidence]}: includes, and functions used from another .c."""
    definers = {}
    for rel in files:
        if rel.endswith(".c"):
            for name in defined(texts[rel]):
                definers.setdefault(name, set()).add(node_of(rel))
    graph = {}
    for rel in files:
        src = node_of(rel)
        edges = graph.setdefault(src, {})
        for line, inc in includes(texts[rel]):
            if node_of(inc) != src:
                edges.setdefault(node_of(inc), []).append("%s:%d includes %s" % (rel, line, inc))
        if not rel.endswith(".c"):
            continue  # a header's prototypes are not uses
        mine = defined(texts[rel], with_static=True)  # its own statics shadow
        used = {}
        for name in set(_IDENT_RE.findall(_clean(texts[rel]))) - mine:
            for dst in definers.get(name, ()):
                used.setdefault(dst, []).append(name)
        for dst, names in used.items():
            names.sort()
            more = " and %d more" % (len(names) - 3) if len(names) > 3 else ""
            edges.setdefault(dst, []).append("%s uses %s%s (defined in %s.c)" % (
                rel, ", ".join(names[:3]), more, dst))
    return graph


def describe_cycle(kind, graph, comp, show):
    loop = one_cycle(graph, comp)
    lines = ["%s cycle among %s" % (kind, ", ".join(sorted(comp))),
             "  for example: " + " -> ".join(loop)]
    for src in sorted(comp):
        for dst in sorted(graph.get(src, ())):
            if dst in comp:
                for ev in show(src, dst):
                    lines.append("  %s -> %s: %s" % (src, dst, ev))
    return "\n".join(lines)


def check_file_cycles(files, texts):
    graph = file_graph(files, texts)
    errors, allowed = [], []
    found = sccs(graph)
    for comp in found:
        msg = describe_cycle("file", graph, comp, lambda s, d: graph[s][d])
        (allowed if allowed_cycle(comp, ALLOWED_FILE_CYCLES) else errors).append(msg)
    notes = ["allowed file cycle %s no longer occurs: delete it from ALLOWED_FILE_CYCLES"
             % ", ".join(sorted(entry)) for entry in ALLOWED_FILE_CYCLES
             if not any(comp & entry for comp in found)]
    return errors, allowed, notes


def _strings(node):
    """Every string constant in an expression, except dict keys (select())."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Dict):
        return [s for v in node.values for s in _strings(v)]
    return [s for child in ast.iter_child_nodes(node) for s in _strings(child)]


def package_of(label, here):
    if label.startswith("@"):
        return None  # another repository: cannot loop back into ours
    if label.startswith("//"):
        return label[2:].split(":")[0]
    return here  # ":name" or "name"


def build_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "transport")):
        dirnames.sort()
        for f in ("BUILD", "BUILD.bazel"):
            if f in filenames:
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
                break
    return out


def package_graph(root, builds):
    """package -> {package: [evidence "target -> label"]}, and parse errors."""
    graph, errors = {}, []
    for rel in builds:
        here = os.path.dirname(rel)
        graph.setdefault(here, {})
        try:
            tree = ast.parse(read(root, rel), filename=rel)
        except SyntaxError as e:
            errors.append("%s:%s: cannot parse: %s" % (rel, e.lineno, e.msg))
            continue
        for stmt in tree.body:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            kw = {k.arg: k.value for k in call.keywords if k.arg}
            name = kw.get("name")
            target = "//%s:%s" % (here, name.value if isinstance(name, ast.Constant) else "?")
            labels = list(MACRO_DEPS.get(call.func.id, []))
            for attr in ("deps", "actual"):
                if attr in kw:
                    labels += _strings(kw[attr])
            for label in labels:
                pkg = package_of(label, here)
                if pkg is None or pkg == here:
                    continue
                if pkg != "transport" and not pkg.startswith("transport/"):
                    continue
                graph[here].setdefault(pkg, []).append(
                    "%s:%d: %s -> %s" % (rel, call.lineno, target, label))
    return graph, errors


def check_package_cycles(root):
    builds = build_files(root)
    graph, errors = package_graph(root, builds)
    allowed = []
    found = sccs(graph)
    for comp in found:
        msg = describe_cycle("package", graph, comp, lambda s, d: graph[s][d])
        (allowed if allowed_cycle(comp, ALLOWED_PACKAGE_CYCLES) else errors).append(msg)
    notes = ["allowed package cycle %s no longer occurs: delete it from ALLOWED_PACKAGE_CYCLES"
             % ", ".join(sorted(entry)) for entry in ALLOWED_PACKAGE_CYCLES
             if not any(comp & entry for comp in found)]
    return errors, allowed, notes, len(builds)


def main(argv):
    default_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=default_root,
                    help="the workspace root (default: the one holding this script)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print what the allow-lists let through")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)

    files = library_files(root) if os.path.isdir(os.path.join(root, "transport")) else []
    if not files:
        print("layering: no library files under %s/transport: wrong --root?" % root)
        return 1
    texts = {rel: read(root, rel) for rel in files}

    errors, allowed, notes = [], [], []
    for e, a, n in (check_includes(root, files, texts), check_file_cycles(files, texts)):
        errors += e
        allowed += a
        notes += n
    e, a, n, nbuild = check_package_cycles(root)
    errors += e
    allowed += a
    notes += n

    for msg in errors:
        print("error: " + msg)
    if args.verbose:
        for msg in allowed:
            print("allowed for now: " + msg)
    for msg in notes:
        print("note: " + msg)
    summary = "%d library files, %d BUILD files under %s/transport" % (len(files), nbuild, root)
    if errors:
        print("layering: FAILED, %d finding(s) (%s). The rules and what to do: "
              "scripts/layering.py header, docs/contributing.md" % (len(errors), summary))
        return 1
    print("layering: ok (%s; %d allowed for now%s)" % (
        summary, len(allowed), "" if args.verbose else ", -v lists them"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

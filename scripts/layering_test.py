#!/usr/bin/env python3
"""scripts/layering.py against a small synthetic tree: clean, it passes; with
one fault injected (an upward or sibling include, a file cycle, a package
cycle, ...), it exits 1 and names the fault. Ends "N passed, N failed".

Runs from the source tree (python3 scripts/layering_test.py) or as
//scripts:layering_test.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "layering.py")

# The clean tree: one or two files per layer, includes and calls that follow
# the rules, the allow-listed gRPC broker/client loop, a select() and a macro in BUILD files, and test files that break the
# rules (which the check must ignore).
CLEAN = {
    "transport/base/strbuf.h": "void gp__sb_init(void);\n",
    "transport/base/strbuf.c": '#include "transport/base/strbuf.h"\nvoid gp__sb_init(void) {}\n',
    "transport/base/base_test.c": '#include "transport/host/client.h"\nint main(void) { return 0; }\n',
    "transport/base/BUILD": (
        'load("//bazel:defs.bzl", "gp_fuzz_target")\n'
        'cc_library(name = "base", srcs = ["strbuf.c"], hdrs = ["strbuf.h"],\n'
        '           deps = ["//include:goplugin_headers", "@jansson//:jansson"])\n'
        'gp_fuzz_target(name = "f", srcs = ["f_fuzz.c"], deps = [":base"])\n'),
    "transport/net/net.h": '#include "transport/base/strbuf.h"\nint gp__dial(void);\n',
    "transport/net/dial.c": (
        '#include "transport/net/net.h"\n'
        '/* gp__client_start() in a comment or a string is no use (it would\n'
        ' * close a loop with host/client.c) */\n'
        'static const char *s = "gp__client_start()";\n'
        'int gp__dial(void) { gp__sb_init(); return s != 0; }\n'),
    "transport/net/BUILD": (
        'cc_library(name = "net", srcs = ["dial.c"], hdrs = ["net.h"],\n'
        '           deps = ["//transport/base"] + select({\n'
        '               "//transport/host:never": [],\n'
        '               "//conditions:default": [],\n'
        '           }))\n'),
    "transport/tls/stream.h": "int gp__tls_open(void);\n",
    "transport/tls/stream.c": '#include "transport/tls/stream.h"\n#include "transport/base/strbuf.h"\nint gp__tls_open(void) { return 0; }\n',
    "transport/tls/BUILD": 'cc_library(name = "tls", srcs = ["stream.c"], deps = ["//transport/base"])\n',
    "transport/core/wire.h": "typedef struct gp__wire gp__wire;\nconst gp__wire *gp__wire_find(int p);\n",
    "transport/core/conn.h": '#include "transport/core/wire.h"\nvoid gp__conn_free(void);\n',
    "transport/core/conn.c": '#include "transport/core/conn.h"\nvoid gp__conn_free(void) {}\n',
    "transport/core/BUILD": 'cc_library(name = "core", srcs = ["conn.c"], deps = ["//transport/base"])\n',
    "transport/wire/grpc/grpc.h": '#include "transport/core/conn.h"\nint gp__grpc_dial(void);\nint gp__grpc_broker(void);\n',
    "transport/wire/grpc/client.c": (
        '#include "transport/wire/grpc/grpc.h"\n#include "transport/net/net.h"\n'
        "int gp__grpc_dial(void) { return gp__dial() + gp__grpc_broker(); }\n"),
    "transport/wire/grpc/broker.c": (
        '#include "transport/wire/grpc/grpc.h"\n'
        "int gp__grpc_broker(void) { return gp__grpc_dial(); }\n"),
    "transport/wire/grpc/proto/plugin.pb.h": "struct pb;\n",
    "transport/wire/grpc/BUILD": (
        'cc_library(name = "grpc", srcs = ["client.c", "broker.c"], hdrs = ["grpc.h"],\n'
        '           deps = ["//transport/core", "//transport/net", "//transport/wire/grpc/proto:pb"])\n'),
    "transport/wire/grpc/proto/BUILD": 'alias(name = "pb", actual = ":plugin_pb")\n',
    "transport/yamux/mux_session.h": '#include "transport/tls/stream.h"\nint gp__mux_open(void);\n',
    "transport/yamux/mux_session.c": '#include "transport/yamux/mux_session.h"\nint gp__mux_open(void) { return gp__tls_open(); }\n',
    "transport/yamux/BUILD": 'cc_library(name = "yamux", deps = ["//transport/tls"])\n',
    "transport/wire/netrpc/gob/gob.h": "int gp__gob_enc(void);\n",
    "transport/wire/netrpc/gob/gob.c": '#include "transport/wire/netrpc/gob/gob.h"\nint gp__gob_enc(void) { return 0; }\n',
    "transport/wire/netrpc/gob/BUILD": 'cc_library(name = "gob")\n',
    "transport/wire/netrpc/rpc/rpc_codec.h": (
        '#include "transport/wire/netrpc/gob/gob.h"\n'
        '#include "transport/yamux/mux_session.h"\nint gp__rpc_call(void);\n'),
    "transport/wire/netrpc/rpc/rpc_codec.c": '#include "transport/wire/netrpc/rpc/rpc_codec.h"\nint gp__rpc_call(void) { return gp__gob_enc() + gp__mux_open(); }\n',
    "transport/wire/netrpc/rpc/BUILD": (
        'cc_library(name = "rpc_codec", deps = ["//transport/wire/netrpc/gob",\n'
        '                                      "//transport/yamux"])\n'),
    "transport/wire/netrpc/netrpc.h": '#include "transport/core/conn.h"\nint gp__netrpc_dial(void);\n',
    "transport/wire/netrpc/host.c": (
        '#include "transport/wire/netrpc/netrpc.h"\n#include "transport/wire/netrpc/rpc/rpc_codec.h"\n'
        "int gp__netrpc_dial(void) { return gp__rpc_call(); }\n"),
    "transport/wire/netrpc/BUILD": (
        'cc_library(name = "netrpc", deps = ["//transport/core",\n'
        '    "//transport/wire/netrpc/rpc:rpc_codec"])\n'),
    "transport/wire/wires_all.c": (
        '#include "transport/core/wire.h"\n#include "transport/wire/grpc/grpc.h"\n'
        '#include "transport/wire/netrpc/netrpc.h"\n'
        "const gp__wire *gp__wire_find(int p) { return p ? 0 : 0; }\n"),
    "transport/wire/wires_netrpc.c": (
        '#include "transport/core/wire.h"\n#include "transport/wire/netrpc/netrpc.h"\n'
        "const gp__wire *gp__wire_find(int p) { return p ? 0 : 0; }\n"),
    "transport/wire/BUILD": (
        'cc_library(name = "all", deps = ["//transport/wire/grpc", "//transport/wire/netrpc"])\n'),
    "transport/host/client.h": '#include "transport/core/wire.h"\nint gp__client_start(void);\n',
    "transport/host/client.c": (
        '#include "transport/host/client.h"\n#include "transport/net/net.h"\n'
        "int gp__client_start(void) { return gp__dial() + (gp__wire_find(1) != 0); }\n"),
    "transport/host/client_test.c": '#include "transport/testing/gp_test.h"\n#include "transport/plugin/server.h"\n',
    "transport/host/BUILD": (
        'cc_library(name = "host", deps = ["//transport/core", "//transport/net"])\n'
        'cc_test(name = "client_test", deps = [":host", "//transport/testing"])\n'),
    "transport/plugin/server.h": "int gp__serve(void);\n",
    "transport/plugin/server.c": '#include "transport/plugin/server.h"\n#include "transport/core/wire.h"\nint gp__serve(void) { return gp__wire_find(0) != 0; }\n',
    "transport/plugin/BUILD": 'cc_library(name = "plugin", deps = ["//transport/core"])\n',
    "transport/testing/gp_test.h": '#include "transport/host/client.h"\n',
    "transport/testing/BUILD": 'cc_library(name = "testing")\ncc_library(name = "fuzz_main")\n',
    "transport/wire/netrpc/interop/peer.c": '#include "transport/host/client.h"\n',
    "transport/BUILD": (
        'cc_library(name = "goplugin", deps = ["//transport/host", "//transport/plugin",\n'
        '                                     "//transport/wire:all"])\n'),
}

passed = failed = 0


def make_tree(base, changes):
    """A fresh copy of base with `changes` applied: path -> text to append
    (a file that does not exist is created)."""
    root = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    for rel, text in base.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    for rel, text in changes.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as f:
            f.write(text)
    return root


def case(name, changes, rc, expect=(), absent=(), base=CLEAN):
    """Runs the check on base + changes; wants exit status rc, every string
    in expect in the output, none in absent."""
    global passed, failed
    root = make_tree(base, changes)
    try:
        p = subprocess.run([sys.executable, CHECK, "--root", root],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    finally:
        shutil.rmtree(root)
    out = p.stdout.replace(root + "/", "")
    problems = []
    if p.returncode != rc:
        problems.append("exit status %d, expected %d" % (p.returncode, rc))
    problems += ["output lacks %r" % s for s in expect if s not in out]
    problems += ["output has %r" % s for s in absent if s in out]
    if problems:
        failed += 1
        print("FAIL %s: %s\n--- output:\n%s---" % (name, "; ".join(problems), out))
    else:
        passed += 1
        print("ok   %s" % name)


def main():
    case("clean tree passes", {}, 0, ["layering: ok"], ["error:"])

    # (a) includes against the layers.
    case("upward include", {
        "transport/base/x.c": '#include "transport/base/strbuf.h"\n#include "transport/host/client.h"\n',
    }, 1, ["transport/base/x.c:2: transport/base/x.c (layer base) includes "
           "transport/host/client.h (layer host): an upward include"])
    case("sibling include: net -> tls", {
        "transport/net/dial.c": '#include "transport/tls/stream.h"\n',
    }, 1, ["transport/net/dial.c:6: transport/net/dial.c (layer net) includes "
           "transport/tls/stream.h (layer tls)"])
    case("the wires meet only in core", {
        "transport/wire/grpc/client.c": '#include "transport/wire/netrpc/netrpc.h"\n',
    }, 1, ["(layer wire/grpc) includes transport/wire/netrpc/netrpc.h (layer wire/netrpc)"])
    case("host does not include plugin", {
        "transport/host/client.h": '#include "transport/plugin/server.h"\n',
    }, 1, ["transport/host/client.h:3: transport/host/client.h (layer host) includes "
           "transport/plugin/server.h (layer plugin)"])
    case("plugin does not include a wire", {
        "transport/plugin/server.c": '#include "transport/wire/netrpc/netrpc.h"\n',
    }, 1, ["(layer plugin) includes transport/wire/netrpc/netrpc.h (layer wire/netrpc)"])
    case("gob sits below rpc", {
        "transport/wire/netrpc/gob/gob.h": '#include "transport/wire/netrpc/rpc/rpc_codec.h"\n',
    }, 1, ["(layer wire/netrpc/gob) includes transport/wire/netrpc/rpc/rpc_codec.h "
           "(layer wire/netrpc/rpc): an upward include"])
    case("yamux does not include gob", {
        "transport/yamux/mux_session.c": '#include "transport/wire/netrpc/gob/gob.h"\n',
    }, 1, ["(layer yamux) includes transport/wire/netrpc/gob/gob.h (layer wire/netrpc/gob)"])
    case("the host never names a wire", {
        "transport/host/other.c": '#include "transport/wire/grpc/grpc.h"\n',
    }, 1, ["transport/host/other.c:1: transport/host/other.c (layer host) includes "
           "transport/wire/grpc/grpc.h (layer wire/grpc)"])
    case("library code does not include the test harness", {
        "transport/core/conn.c": '#include "transport/testing/gp_test.h"\n',
    }, 1, ["(layer core) includes transport/testing/gp_test.h (layer testing): test-only code"])
    case("a folder outside the table", {
        "transport/extra/x.c": "int x;\n",
    }, 1, ["transport/extra/x.c: in no layer"])

    # (b) file cycles.
    case("include cycle", {
        "transport/net/a.h": "int gp__a(void);\n",
        "transport/net/a.c": '#include "transport/net/b.h"\n',
        "transport/net/b.h": "int gp__b(void);\n",
        "transport/net/b.c": '#include "transport/net/a.h"\n',
    }, 1, ["error: file cycle among transport/net/a, transport/net/b",
           "transport/net/a.c:1 includes transport/net/b.h"])
    case("use cycle through one shared header", {
        "transport/net/net.h": "int gp__c(void);\nint gp__d(void);\n",
        "transport/net/c.c": '#include "transport/net/net.h"\nint gp__c(void) { return gp__d(); }\n',
        "transport/net/d.c": '#include "transport/net/net.h"\nint gp__d(void) { return gp__c(); }\n',
    }, 1, ["error: file cycle among transport/net/c, transport/net/d",
           "transport/net/c.c uses gp__d (defined in transport/net/d.c)"])
    case("a file's own static of the same name is no use", {
        "transport/net/dial.c": "static int gp__client_start(void) { return 1; }\n"
                                "int gp__dial2(void) { return gp__client_start(); }\n",
    }, 0, ["layering: ok"], ["error:"])
    case("an allowed cycle that grows fails", {
        "transport/wire/grpc/grpc.h": "int gp__grpc_extra(void);\n",
        "transport/wire/grpc/extra.c": '#include "transport/wire/grpc/grpc.h"\nint gp__grpc_extra(void) { return gp__grpc_dial(); }\n',
        "transport/wire/grpc/broker.c": "int gp__grpc_more(void) { return gp__grpc_extra(); }\n",
    }, 1, ["error: file cycle among transport/wire/grpc/broker, transport/wire/grpc/client, "
           "transport/wire/grpc/extra"])

    # (c) package cycles.
    case("package cycle", {
        "transport/net/BUILD": 'cc_library(name = "up", deps = ["//transport/wire/grpc:grpc"])\n',
    }, 1, ["error: package cycle among transport/net, transport/wire/grpc",
           "transport/net/BUILD:6: //transport/net:up -> //transport/wire/grpc:grpc"])
    case("package cycle through a select()", {
        "transport/core/BUILD": 'cc_library(name = "x", deps = select({"//c:x": ["//transport/plugin"]}))\n',
    }, 1, ["error: package cycle among transport/core, transport/plugin"])
    case("package cycle through a macro's own deps", {
        "transport/testing/BUILD": 'cc_library(name = "more", deps = ["//transport/base"])\n',
    }, 1, ["error: package cycle among transport/base, transport/testing",
           "//transport/base:f -> //transport/testing:fuzz_main"])
    case("a test target closes a package cycle", {
        "transport/core/BUILD": 'cc_test(name = "t", deps = ["//transport:goplugin"])\n',
    }, 1, ["error: package cycle among transport, transport/core"])

    # The command line.
    case("no tree under --root", {"README": ""}, 1, ["no library files"], base={})

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""nanopb_library: .proto files to nanopb C, in goplugin-c's memory style.

    nanopb_library(
        name = "kv_pb",
        srcs = ["kv.proto"],
        options = ["kv.options"],
    )

gives a cc_library whose headers are included as "<package>/kv.pb.h" (for
example "examples/kv/kv.pb.h"). Protos import each other by workspace path;
google/protobuf/*.proto comes from the system (its nanopb code is in
//codegen:wkt_empty_pb, add it to deps when you import empty.proto).

An x.options file must sit next to x.proto (nanopb finds it by the proto's
path). Without it every string and bytes field becomes a pb_callback_t; see
transport/msg/msg.h for the lines that select char * and gp_bytes.
"""

load("//bazel:defs.bzl", "GP_COPTS")

_PROTOC = "@system_tools//:protoc"
_PLUGIN = "@system_tools//:protoc-gen-nanopb"
_WKT = "@system_tools//:well_known_protos"

# Labels of this repository, so they resolve here when the macros are called
# from another workspace (a plain "//x" names the caller's repository).
_NANOPB = Label("@nanopb//:nanopb")
_HEADERS = Label("//include:goplugin_headers")
_MSG = Label("//transport/msg")

def repo_root():
    """The calling package's repository root as an exec path: "" for the
    main workspace, "external/<name>" for an external one. Protos are named
    (and outputs written) relative to it, so generated includes read
    "<package>/x.pb.h" in either case."""
    r = native.repository_name()
    return "" if r == "@" else "external/" + r[1:]

def proto_root():
    """repo_root() as a protoc -I argument."""
    return repo_root() or "."

def gen_root():
    """Where outputs of the calling package's repository go: $(GENDIR)/<root>."""
    root = repo_root()
    return "$(GENDIR)/" + root if root else "$(GENDIR)"

# nanopb 0.4.7's output compiles clean under the project's warnings.
_GEN_COPTS = GP_COPTS

def _protoc_cmd(srcs_expr, out_dir, options_roots):
    # The well-known protos root is the directory above google/protobuf/.
    return " ".join([
        "for f in $(locations %s); do WKT=$${f%%/google/protobuf/*}; break; done;" % _WKT,
        "$(location %s)" % _PROTOC,
        "-I" + proto_root(),
        "-I$$WKT",
        "--plugin=protoc-gen-nanopb=$(location %s)" % _PLUGIN,
    ] + ["--nanopb_opt=-I%s" % r for r in options_roots] + [
        "--nanopb_out=%s" % out_dir,
        srcs_expr,
    ])

def nanopb_library(name, srcs, options = [], deps = [], includes = [], imports = [], visibility = None, **kwargs):
    """nanopb C for `srcs` (protos of this package) as a cc_library `name`.

    Args:
      name: the cc_library.
      srcs: .proto files in this package.
      options: their nanopb .options files (x.options next to x.proto, or
        generated into this package by a rule of the same name).
      deps: nanopb_library targets of imported protos.
      imports: the .proto files of other packages that srcs import (protoc
        reads them; the sandbox holds only declared inputs).
      includes: extra include dirs for the cc_library.
      visibility: as usual.
      **kwargs: passed to the cc_library.
    """
    for o in options:
        if not o.endswith(".options") or o[:-len(".options")] + ".proto" not in srcs:
            fail("nanopb_library %s: %s must be named after one of srcs (x.proto -> x.options)" % (name, o))
    bases = [s[:-len(".proto")] for s in srcs]
    outs = [b + ".pb.h" for b in bases] + [b + ".pb.c" for b in bases]

    # nanopb looks for <root>/<proto path>.options; our protos are named by
    # repository path, so the root is the repository's root. Without this
    # flag the options are silently ignored when protoc runs elsewhere.
    # gen_root() is the root of generated .options (goplugin_c_proto_library).
    native.genrule(
        name = name + "_gen",
        srcs = srcs + options + imports + [_WKT],
        outs = outs,
        tools = [_PROTOC, _PLUGIN],
        cmd = _protoc_cmd(" ".join(["$(location %s)" % s for s in srcs]), gen_root(), [proto_root(), gen_root()]),
        message = "nanopb %s" % name,
    )
    native.cc_library(
        name = name,
        srcs = [b + ".pb.c" for b in bases],
        hdrs = [b + ".pb.h" for b in bases],
        includes = includes,
        copts = _GEN_COPTS,
        deps = deps + [_NANOPB, _HEADERS, _MSG],
        visibility = visibility,
        **kwargs
    )

def nanopb_well_known_library(name, protos, options = None, deps = [], visibility = None):
    """nanopb C for google/protobuf/<p>.proto, included as "google/protobuf/<p>.pb.h".

    Args:
      name: the cc_library.
      protos: base names under google/protobuf/ ("empty", "descriptor").
      options: optional label of one .options file applied to all of them
        (fully qualified names, e.g. google.protobuf.FileDescriptorProto.name).
      deps: what the options' include lines need (e.g. //transport/msg).
      visibility: as usual.
    """
    outs = []
    for p in protos:
        outs += ["wkt/google/protobuf/%s.pb.h" % p, "wkt/google/protobuf/%s.pb.c" % p]
    cmd = _protoc_cmd(
        " ".join(["google/protobuf/%s.proto" % p for p in protos]),
        "%s/%s/wkt" % (gen_root(), native.package_name()),
        [],
    )
    if options:
        # nanopb's -f with no %s in it names one file for every proto; -q
        # keeps it from listing the lines that match only in other protos.
        cmd = cmd.replace("--nanopb_out=", "--nanopb_opt=-f$(location %s) --nanopb_opt=-q --nanopb_out=" % options)
    native.genrule(
        name = name + "_gen",
        srcs = [_WKT] + ([options] if options else []),
        outs = outs,
        tools = [_PROTOC, _PLUGIN],
        cmd = cmd,
        message = "nanopb %s" % name,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".c")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["wkt"],
        copts = _GEN_COPTS,
        deps = [_NANOPB] + deps,
        visibility = visibility,
    )

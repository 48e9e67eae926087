"""goplugin_c_proto_library: a .proto to typed goplugin-c C, in one rule.

    load("//bazel:goplugin.bzl", "goplugin_c_proto_library")
    # from another workspace: load("@goplugin//bazel:goplugin.bzl", ...)

    goplugin_c_proto_library(
        name = "kv",
        srcs = ["kv.proto"],
    )

gives a cc_library `kv` whose headers are included by workspace path:
"<package>/kv.gp.h" (method descriptors, client stubs, server vtable; see
docs/codegen.md) and the nanopb messages it includes, "<package>/kv.pb.h".

Behind it:
  - <name>_options: protoc-gen-goplugin-c writes x.options for every src the
    caller gave no options for (strings, repeated fields and maps become
    malloc'd pointers, bytes become gp_bytes), so nobody writes .options;
  - <name>_pb: nanopb_library (//codegen:nanopb.bzl) with those options;
  - <name>_gp: protoc-gen-goplugin-c writes x.gp.h and x.gp.c;
  - <name>_protos: the .proto files, for libraries that import these.

deps are other goplugin_c_proto_library targets whose protos srcs import.
The well-known types Debian ships (google/protobuf/empty.proto, timestamp,
duration, any, struct, wrappers, field_mask, api, type, source_context) can
be imported without any deps entry: their nanopb C is always linked.
"""

load("//bazel:defs.bzl", "GP_COPTS")
load("//codegen:nanopb.bzl", "gen_root", "nanopb_library", "proto_root")

_PROTOC = "@system_tools//:protoc"
_WKT = "@system_tools//:well_known_protos"
# Label(): these name goplugin-c's own targets even when the macro is called
# from another workspace (a plain "//x" would name the caller's).
_GENERATOR = Label("//codegen/protoc-gen-goplugin-c:protoc-gen-goplugin-c")
_WKT_EMPTY = Label("//codegen:wkt_empty_pb")
_WKT_REST = Label("//codegen/protoc-gen-goplugin-c:wkt_pb")
_HEADERS = Label("//include:goplugin_headers")
_CORE = Label("//transport/core")

# Generated C compiles under the project's flags, no exceptions.
_GP_GEN_COPTS = GP_COPTS

def _protos_of(dep):
    """The <name>_protos filegroup beside a goplugin_c_proto_library label."""
    if ":" in dep:
        return dep + "_protos"
    return dep + ":" + dep.split("/")[-1] + "_protos"

def _protoc(param, srcs, generator):
    # Imports resolve against the calling repository's root and Debian's
    # well-known protos (the directory above google/protobuf/).
    return " ".join([
        "for f in $(locations %s); do WKT=$${f%%/google/protobuf/*}; break; done;" % _WKT,
        "$(location %s)" % _PROTOC,
        "-I" + proto_root(),
        "-I$$WKT",
        "--plugin=protoc-gen-goplugin-c=$(location %s)" % generator,
        "--goplugin-c_out=%s%s" % (param, gen_root()),
    ] + ["$(location %s)" % s for s in srcs])

def goplugin_c_proto_library(name, srcs, deps = [], options = [], visibility = None):
    """Typed goplugin-c C for `srcs` as a cc_library `name`.

    Args:
      name: the cc_library.
      srcs: .proto files of this package.
      deps: goplugin_c_proto_library targets of the protos srcs import.
      options: optional hand-written nanopb x.options for some of srcs
        (they must keep goplugin-c's memory style, goplugin/method.h).
      visibility: as usual.
    """
    for s in srcs:
        if not s.endswith(".proto") or ":" in s or s.startswith("/"):
            fail("goplugin_c_proto_library %s: srcs must be .proto files of this package, got %s" % (name, s))
    bases = [s[:-len(".proto")] for s in srcs]
    given = [o[:-len(".options")] for o in options]
    missing = [b for b in bases if b not in given]
    dep_protos = [_protos_of(d) for d in deps]

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + dep_protos,
        visibility = visibility,
    )

    gen_options = []
    if missing:
        gen_options = [b + ".options" for b in missing]
        native.genrule(
            name = name + "_options",
            srcs = [b + ".proto" for b in missing] + dep_protos + [_WKT],
            outs = gen_options,
            tools = [_PROTOC, _GENERATOR],
            cmd = _protoc("options:", [b + ".proto" for b in missing], _GENERATOR),
            message = "goplugin-c options %s" % name,
        )

    nanopb_library(
        name = name + "_pb",
        srcs = srcs,
        options = options + gen_options,
        imports = dep_protos,
        deps = deps + [_WKT_EMPTY, _WKT_REST],
        visibility = visibility,
    )

    native.genrule(
        name = name + "_gp",
        srcs = srcs + dep_protos + [_WKT],
        outs = [b + ".gp.h" for b in bases] + [b + ".gp.c" for b in bases],
        tools = [_PROTOC, _GENERATOR],
        cmd = _protoc("", srcs, _GENERATOR),
        message = "goplugin-c %s" % name,
    )

    native.cc_library(
        name = name,
        srcs = [b + ".gp.c" for b in bases],
        hdrs = [b + ".gp.h" for b in bases],
        copts = _GP_GEN_COPTS,
        deps = [":" + name + "_pb", _HEADERS, _CORE],
        visibility = visibility,
    )

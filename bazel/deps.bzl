"""goplugin_dependencies(): every repository goplugin-c's BUILD files name.

From another workspace, these three lines and nothing else:

    local_repository(name = "goplugin", path = "/path/to/goplugin-c")
    load("@goplugin//bazel:deps.bzl", "goplugin_dependencies")
    goplugin_dependencies()

It declares Debian's libraries and tools (@grpc, @mbedtls, @system_tools:
bazel/system_libs.bzl), nanopb's runtime and jansson built from Debian's
source packages (@nanopb, @jansson: bazel/debian_source.bzl; run
scripts/deps.sh in the goplugin-c checkout first), whether lld is there for
a static plugin link (@gp_static_link: bazel/static_link.bzl) and the
offline stubs of the repositories bazel_tools itself names (@rules_cc, @rules_java,
@remote_coverage_tools), so Bazel downloads nothing. A repository the
workspace already declares under one of these names is left alone.
"""

load("//bazel:debian_source.bzl", "debian_source")
load("//bazel:static_link.bzl", "static_link")
load("//bazel:system_libs.bzl", "system_library", "system_tools")

def _stub_repository_impl(rctx):
    # The stub's files, wherever this repository is checked out: a label of
    # this package gives its directory (local_repository needs a path, and a
    # macro cannot know where @goplugin lives).
    src = rctx.path(Label("//bazel:BUILD")).dirname.get_child("stubs").get_child(rctx.attr.stub)
    for child in src.readdir():
        rctx.symlink(child, child.basename)

_stub_repository = repository_rule(
    implementation = _stub_repository_impl,
    attrs = {"stub": attr.string(mandatory = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    if name not in native.existing_rules():
        rule(name = name, **kwargs)

def goplugin_dependencies():
    """Declares the repositories goplugin-c needs (all local, no downloads)."""
    for stub in ["rules_cc", "rules_java", "remote_coverage_tools"]:
        _maybe(_stub_repository, stub, stub = stub)

    _maybe(
        system_library,
        "grpc",
        build_file = Label("//bazel:grpc.BUILD"),
        package = "libgrpc-dev",
        probe = "include/grpc/grpc.h",
        # Static: a plugin then loads 5 shared objects instead of 59, which
        # halves its start time and trims its resident memory (bench/RESULTS.md).
        static_pkgconfig = "grpc",
        hot_code = Label("//bazel:grpc_hot_code.txt"),
    )
    # nanopb's runtime and jansson from Debian's source packages, which
    # scripts/deps.sh unpacks (bazel/debian_source.bzl).
    _maybe(
        debian_source,
        "nanopb",
        build_file = Label("//bazel:nanopb.BUILD"),
        package = "nanopb",
        files = ["pb.h", "pb_common.h", "pb_decode.h", "pb_encode.h",
                 "pb_common.c", "pb_decode.c", "pb_encode.c"],
        # Our pb_realloc/pb_free: the decode budget (bazel/nanopb.BUILD).
        extra_files = {
            Label("//bazel:nanopb_alloc.c"): "gp_pb_alloc.c",
            Label("//bazel:nanopb_alloc.h"): "gp_pb_alloc.h",
        },
    )
    _maybe(
        system_library,
        "mbedtls",
        build_file = Label("//bazel:mbedtls.BUILD"),
        package = "libmbedtls-dev",
        probe = "include/mbedtls/ssl.h",
    )
    _maybe(
        debian_source,
        "jansson",
        build_file = Label("//bazel:jansson.BUILD"),
        package = "jansson",
        files = ["src/" + f for f in [
            "dump.c", "error.c", "hashtable.c", "hashtable_seed.c", "load.c", "memory.c",
            "pack_unpack.c", "strbuffer.c", "strconv.c", "utf.c", "value.c", "version.c",
            "hashtable.h", "jansson.h", "jansson_private.h", "lookup3.h", "strbuffer.h", "utf.h",
        ]],
        extra_files = {Label("//bazel:jansson_private_config.h"): "src/jansson_private_config.h"},
        # The header Debian's build generated for this version.
        system_files = {"src/jansson_config.h": "/usr/include/jansson_config.h"},
    )
    _maybe(system_tools, "system_tools")
    # lld or not, for the static examples/kv:kv-plugin-netrpc.
    _maybe(static_link, "gp_static_link")

"""Debian's libraries and tools as local Bazel repositories (no downloads).

A missing package fails the fetch with the apt-get line that fixes it.
"""

def _multiarch(rctx):
    res = rctx.execute(["gcc", "-print-multiarch"])
    arch = res.stdout.strip() if res.return_code == 0 else ""
    return arch or "x86_64-linux-gnu"

def _system_library_impl(rctx):
    probe = "/usr/" + rctx.attr.probe
    if not rctx.path(probe).exists:
        fail("%s not found: run 'apt-get install %s' (or 'make deps')" % (probe, rctx.attr.package))
    rctx.symlink("/usr/include", "include")
    rctx.symlink("/usr/lib/" + _multiarch(rctx), "lib")
    rctx.template("BUILD.bazel", rctx.attr.build_file, {})

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "build_file": attr.label(mandatory = True),
        "package": attr.string(mandatory = True),
        "probe": attr.string(mandatory = True),
    },
    local = True,
)

_TOOLS = {
    "protoc": "protobuf-compiler",
    "protoc-gen-nanopb": "nanopb",
    "grpc_python_plugin": "protobuf-compiler-grpc",
    "go": "golang-go",
}

def _system_tools_impl(rctx):
    for tool, pkg in _TOOLS.items():
        path = "/usr/bin/" + tool
        if not rctx.path(path).exists:
            fail("%s not found: run 'apt-get install %s' (or 'make deps')" % (path, pkg))
        rctx.symlink(path, tool)
    rctx.symlink("/usr/include/google/protobuf", "wkt/google/protobuf")
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])
exports_files({tools})
filegroup(name = "well_known_protos", srcs = glob(["wkt/google/protobuf/*.proto"]))
""".format(tools = repr(list(_TOOLS.keys()))))

system_tools = repository_rule(implementation = _system_tools_impl, local = True)

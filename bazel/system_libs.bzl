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
    libdir = "/usr/lib/" + _multiarch(rctx)
    rctx.symlink("/usr/include", "include")
    rctx.symlink(libdir, "lib")
    static = _static_linkopts(rctx, libdir)
    rctx.template("BUILD.bazel", rctx.attr.build_file, {
        "%{STATIC_LINKOPTS}": repr(static + _RUNTIME_LINKOPTS if static else []),
        "%{OPT_LINKOPTS}": repr(static + _opt_linkopts(rctx) if static else []),
    })

def _static_linkopts(rctx, libdir):
    """Link flags that pull rctx.attr.static_pkgconfig's libraries in from
    their static archives (one group, so their order does not matter);
    libraries without an archive stay dynamic. Archives are named by file
    (-l:libX.a) rather than between -Bstatic and -Bdynamic, which would turn
    dynamic search back on after them: a binary linked -static (the
    example gRPC plugin) must be able to stay fully static."""
    if not rctx.attr.static_pkgconfig:
        return []
    res = rctx.execute(["pkg-config", "--libs", "--static", rctx.attr.static_pkgconfig])
    if res.return_code != 0:
        fail("pkg-config %s failed: %s (apt-get install pkg-config %s)" %
             (rctx.attr.static_pkgconfig, res.stderr, rctx.attr.package))
    static, dynamic = [], []
    for flag in res.stdout.strip().replace("\n", " ").split(" "):
        if not flag.startswith("-l"):
            continue
        lib = flag[2:]
        if rctx.path("%s/lib%s.a" % (libdir, lib)).exists:
            if ("-l:lib%s.a" % lib) not in static:
                static.append("-l:lib%s.a" % lib)
        elif flag not in dynamic:
            dynamic.append(flag)
    return ["-Wl,--start-group"] + static + ["-Wl,--end-group"] + dynamic

_RUNTIME_LINKOPTS = ["-lstdc++", "-lm", "-ldl", "-lrt", "-pthread"]

def _opt_linkopts(rctx):
    """The tail of an -c opt link: smaller resident memory for binaries
    with gRPC core in them (docs/grpc.md, "Footprint", has what each saves).
    Only -c opt, so sanitizer builds keep their usual runtime and PIE.

    - libstdc++ static: only the parts gRPC uses, beside its code, instead of
      mapping all of libstdc++.so (the toolchain's own -lstdc++ is then
      dropped by --as-needed);
    - -no-pie: Debian's gRPC archives are not PIC anyway; it drops 30,000
      relative relocations that start-up would read and apply (as Go
      binaries, which are not PIE either);
    - with lld (when installed): the functions a plugin and a host run
      (bazel/grpc_hot_code.txt, scripts/grpc_hot_code.sh) are laid out
      first, so they share fewer 64 KiB fault-around windows."""
    opts = ["-l:libstdc++.a", "-Wl,--as-needed",
            "-lm", "-ldl", "-lrt", "-pthread", "-no-pie"]
    hot = rctx.path(rctx.attr.hot_code) if rctx.attr.hot_code else None
    if hot and rctx.which("ld.lld"):
        # A copy named by its content: an edit of the list changes the
        # links' command lines, so they run again (the links do not see
        # the file itself, only its path).
        text = rctx.read(hot)
        copy = "hot_code_%d.txt" % (hash(text) & 0x7fffffff)
        rctx.file(copy, text)
        opts += ["-fuse-ld=lld", "-Wl,--symbol-ordering-file=%s" % rctx.path(copy),
                 "-Wl,--no-warn-symbol-ordering"]
    return opts

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "build_file": attr.label(mandatory = True),
        "package": attr.string(mandatory = True),
        "probe": attr.string(mandatory = True),
        "static_pkgconfig": attr.string(doc = "link this pkg-config module statically"),
        "hot_code": attr.label(doc = "functions to lay out first in -c opt links (lld)"),
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

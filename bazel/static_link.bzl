"""@gp_static_link: link flags for a fully static plugin binary.

examples/kv's netrpc plugin links with STATIC_LINKOPTS (outside sanitizer
builds) to cut its resident memory and start time (docs/netrpc.md, "Start
and footprint"). The library never forces a static link on its users: this
is one binary's choice.

    load("@gp_static_link//:defs.bzl", "STATIC_LINKOPTS")

- -static -no-pie: no ld.so, no libc.so mapped whole; only the parts of libc
  the plugin uses are in the binary, and nothing is relocated at start;
- with lld (when installed): the functions the plugin runs from exec to its
  calls (bazel/netrpc_hot_code.txt, scripts/netrpc_hot_code.sh) are laid out
  first, so they share fewer of the kernel's 64 KiB fault-around windows.
  Without lld the toolchain's linker links it static, unordered.
"""

def _static_link_impl(rctx):
    opts = ["-static", "-no-pie"]
    if rctx.which("ld.lld"):
        hot = rctx.path(rctx.attr.hot_code)
        opts += ["-fuse-ld=lld", "-Wl,--symbol-ordering-file=%s" % hot,
                 "-Wl,--no-warn-symbol-ordering"]
    rctx.file("BUILD.bazel", "")
    rctx.file("defs.bzl", "STATIC_LINKOPTS = %r\n" % opts)

static_link = repository_rule(
    implementation = _static_link_impl,
    attrs = {"hot_code": attr.label(mandatory = True, doc = "functions to lay out first (lld)")},
    local = True,
)

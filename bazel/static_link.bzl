"""@gp_static_link: whether lld is installed, for a static plugin link.

examples/kv's netrpc plugin links fully static (outside sanitizer builds) to
cut its resident memory and start time (docs/netrpc.md, "Start and
footprint"); the library never forces a static link on its users, this is
one binary's choice. With lld, the functions the plugin runs from exec to
its calls (bazel/netrpc_hot_code.txt, scripts/netrpc_hot_code.sh) are laid
out first, so they share fewer of the kernel's 64 KiB fault-around windows;
without it the toolchain's linker links it static, unordered.

    load("@gp_static_link//:defs.bzl", "HAVE_LLD")
"""

def _static_link_impl(rctx):
    rctx.file("BUILD.bazel", "")
    rctx.file("defs.bzl", "HAVE_LLD = %s\n" % bool(rctx.which("ld.lld")))

static_link = repository_rule(implementation = _static_link_impl, local = True)

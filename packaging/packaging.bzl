"""Installable libraries from the Bazel build (see packaging/BUILD, make install).

gp_static_archive: one lib<name>.a holding the objects of every cc_library of
this repository in the transitive closure of `deps`, and those of nanopb's
runtime (@nanopb, built from source with 32-bit field sizes: Debian's
libprotobuf-nanopb is 16-bit and cannot serve our structs). The system
libraries (@grpc, @mbedtls, @jansson) are left out on purpose: the .pc file
names them in Libs.private, so a program that also links gRPC or mbedTLS
does not get two copies of them.
"""

# External repositories whose objects go into the archive.
_BUNDLED = ["nanopb"]

def _static_archive_impl(ctx):
    archives = []
    for dep in ctx.attr.deps:
        for li in dep[CcInfo].linking_context.linker_inputs.to_list():
            # Our own code and the bundled runtimes: the owner of an
            # external library's input lives in another repository.
            ws = li.owner.workspace_name
            if ws != ctx.label.workspace_name and ws not in _BUNDLED:
                continue
            for lib in li.libraries:
                a = lib.pic_static_library or lib.static_library
                if a and a not in archives:
                    archives.append(a)
    ctx.actions.run(
        executable = ctx.executable._merge,
        arguments = [ctx.outputs.out.path] + [a.path for a in archives],
        inputs = archives,
        outputs = [ctx.outputs.out],
        mnemonic = "GpArchive",
        progress_message = "Merging %d archives into %s" % (len(archives), ctx.outputs.out.short_path),
    )
    return [DefaultInfo(files = depset([ctx.outputs.out]))]

gp_static_archive = rule(
    implementation = _static_archive_impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "out": attr.output(mandatory = True),
        "_merge": attr.label(
            default = Label("//packaging:merge_archives.sh"),
            executable = True,
            cfg = "host",
            allow_single_file = True,
        ),
    },
)

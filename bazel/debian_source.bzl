"""Debian source packages as local Bazel repositories (no downloads).

scripts/deps.sh (`make deps`) unpacks `apt-get source <package>` at the
installed binary package's version into <goplugin checkout>/.cache/debian-src/
<package>; debian_source links the files a BUILD file names from there, so
the C is compiled by Bazel with the configuration's own flags (the
sanitizers, --config=fuzz's instrumentation, nanopb's PB_FIELD_32BIT).
"""

def _debian_source_impl(rctx):
    # This repository's checkout, wherever it is: a label of ours gives it.
    root = rctx.path(Label("//bazel:BUILD")).dirname.dirname
    src = "%s/.cache/debian-src/%s" % (root, rctx.attr.package)
    stamp = rctx.path(src + ".version")
    if not stamp.exists:
        fail("%s not unpacked: run scripts/deps.sh (or 'make deps') in %s" % (src, root))

    # Re-fetched when deps.sh unpacks another version.
    rctx.file("VERSION", rctx.read(stamp))
    for f in rctx.attr.files:
        p = rctx.path("%s/%s" % (src, f))
        if not p.exists:
            fail("%s: no %s (run scripts/deps.sh again)" % (src, f))
        rctx.symlink(p, f)
    for label, dest in rctx.attr.extra_files.items():
        rctx.symlink(label, dest)
    for dest, path in rctx.attr.system_files.items():
        if not rctx.path(path).exists:
            fail("%s not found: run scripts/deps.sh (or 'make deps')" % path)
        rctx.symlink(path, dest)
    rctx.symlink(rctx.attr.build_file, "BUILD.bazel")

debian_source = repository_rule(
    implementation = _debian_source_impl,
    attrs = {
        "package": attr.string(mandatory = True, doc = "source package name"),
        "build_file": attr.label(mandatory = True),
        "files": attr.string_list(doc = "paths inside the unpacked source to link"),
        "extra_files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "files of ours to add, label -> path in the repository",
        ),
        "system_files": attr.string_dict(doc = "path in the repository -> system file"),
    },
    local = True,
)

"""@go_plugin_18: an offline GOPATH for Go test peers on go-plugin 1.8.

go-plugin 1.8 is not packaged by Debian. The project's shared folder (beside
the repository, read-only) holds its sources and env.sh, which prepares a
GOPATH from them plus Debian's packages. This rule runs env.sh once, into the
repository's own (writable) folder in Bazel's output base, and records the
outcome in a file `state`:

  ok       the GOPATH is ready; `gopath` holds the GOPATH value to build with
  absent   no go-plugin 1.8 folder was found: 1.8 peers are not built and the
           tests that need them report themselves as skipped

Where the folder is looked for, first hit wins:
  <repo>/../shared/peers/go-plugin-1.8   (the usual layout, CI included)
  <main checkout>/../shared/peers/...    (when <repo> is a `git worktree`)
or, when GP_SHARED is set in the environment, only in
$GP_SHARED/peers/go-plugin-1.8 (GP_SHARED=/nonexistent shows the skips).

A folder that is present but whose env.sh fails is an error (the fetch fails
with env.sh's words), never a skip. After adding the folder later, run
`bazel sync --configure` (or change GP_SHARED) to look again.
"""

_SUB = "peers/go-plugin-1.8"

def _candidates(rctx):
    ws = rctx.path(Label("//:WORKSPACE")).dirname
    env = rctx.os.environ.get("GP_SHARED", "")
    if env:
        return ["%s/%s" % (env, _SUB)]
    out = []
    out.append("%s/../shared/%s" % (ws, _SUB))

    # A git worktree's .git is a file naming the main checkout's .git.
    dotgit = "%s/.git" % ws
    if rctx.execute(["test", "-f", dotgit]).return_code == 0:
        line = rctx.read(dotgit).strip()
        if line.startswith("gitdir: ") and "/.git/" in line:
            main = line[len("gitdir: "):].split("/.git/")[0]
            out.append("%s/../shared/%s" % (main, _SUB))
    return out

def _go_plugin_18_impl(rctx):
    tried = _candidates(rctx)
    found = None
    for c in tried:
        if rctx.path(c + "/env.sh").exists:
            found = c
            break
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])
exports_files(["state", "gopath"])
""")
    if not found:
        rctx.file("state", "absent\ngo-plugin 1.8 sources not found (looked in %s)\n" %
                           ", ".join(tried))
        rctx.file("gopath", "")
        return
    rctx.report_progress("preparing the go-plugin 1.8 GOPATH (%s/env.sh)" % found)
    res = rctx.execute(["sh", found + "/env.sh", str(rctx.path("out"))], timeout = 900)
    if res.return_code != 0:
        fail("%s/env.sh failed (exit %d): %s" % (found, res.return_code, res.stderr[-2000:]))
    gopath = ""
    for line in res.stdout.splitlines():
        # export GOPATH="a:b:c"
        if line.startswith("export GOPATH="):
            gopath = line[len("export GOPATH="):].strip().strip('"')
    if not gopath:
        fail("%s/env.sh printed no GOPATH: %s" % (found, res.stdout))
    rctx.file("state", "ok\ngo-plugin 1.8 from %s\n" % found)
    rctx.file("gopath", gopath + "\n")

go_plugin_18_repository = repository_rule(
    implementation = _go_plugin_18_impl,
    environ = ["GP_SHARED"],
    local = True,
    configure = True,
)

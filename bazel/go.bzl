"""Go peers on hashicorp/go-plugin, built with plain `go build`.

Two versions: 1.0.1 (Debian's package, the default) and 1.8 (go_plugin =
"1.8": the GOPATH that @go_plugin_18 prepares from ../shared, see
bazel/go_plugin_18.bzl). When that folder is absent a 1.8 peer is built as a
stub that explains itself and exits 1; tests that use 1.8 peers then report
themselves as skipped (interop-tests/go18/go18.bzl), never as passed.

There is no rules_go offline, so a genrule lays the sources out as a GOPATH
tree in a temporary directory and builds in GOPATH mode against
/usr/share/gocode. Nothing is downloaded (GOPROXY=off, GO111MODULE=off,
CGO_ENABLED=0). GOCACHE is shared and persistent, so each Go package is
compiled once and reused by every Bazel configuration (fastbuild, opt, asan).
"""

GO_GOCACHE = "/tmp/goplugin-c-gocache"
GO_GOPATH = "/usr/share/gocode"

_CHECK_DEBIAN = """
for f in /usr/bin/protoc-gen-go:golang-goprotobuf-dev \\
         {gopath}/src/github.com/hashicorp/go-plugin/client.go:golang-github-hashicorp-go-plugin-dev \\
         {gopath}/src/google.golang.org/grpc/server.go:golang-google-grpc-dev; do
  [ -e "$${{f%%:*}}" ] || {{ echo "$${{f%%:*}} not found: run 'apt-get install $${{f##*:}}' (or 'make deps')" >&2; exit 1; }}
done
""".format(gopath = GO_GOPATH)

def go_proto_src(name, proto, out):
    """Go code for `proto` (messages and gRPC stubs, protoc-gen-go 1.3)."""
    native.genrule(
        name = name,
        srcs = [proto],
        outs = [out],
        tools = ["@system_tools//:protoc"],
        cmd = _CHECK_DEBIAN + """
d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT
$(location @system_tools//:protoc) --plugin=protoc-gen-go=/usr/bin/protoc-gen-go \\
    -I$$(dirname $(location {proto})) --go_out=plugins=grpc:$$d $(location {proto})
cp $$d/*.pb.go $@
""".format(proto = proto),
    )

# go-plugin 1.8: the stub written instead of a peer when @go_plugin_18 is
# "absent", and the GOPATH (1.8 first, then Debian's) when it is "ok".
_GP18_SETUP = """
state=$$(head -n 1 $(location @go_plugin_18//:state))
if [ "$$state" != ok ]; then
  why=$$(sed -n 2p $(location @go_plugin_18//:state))
  printf '#!/bin/sh\\necho "%s: not built: %s" >&2\\nexit 1\\n' "{name}" "$$why" >$@
  chmod +x $@
  exit 0
fi
gopath=$$(head -n 1 $(location @go_plugin_18//:gopath))
"""

_GP18_FILES = ["@go_plugin_18//:state", "@go_plugin_18//:gopath"]

def go_peer_binary(name, srcs, packages = {}, tags = [], go_plugin = "1.0.1", **kwargs):
    """A Go main package built against go-plugin in GOPATH mode.

    Args:
      name: the binary.
      srcs: the main package's .go files.
      packages: {import path: label}; the label's files become the package at
        $GOPATH/src/<import path> (e.g. {"kvpeer": "//interop-tests/go:kvpeer"}).
      tags: extra tags; "no-sandbox" is always added (the shared GOCACHE).
      go_plugin: "1.0.1" (Debian's) or "1.8" (@go_plugin_18).
    """
    if go_plugin == "1.0.1":
        setup, gopath, extra = _CHECK_DEBIAN, GO_GOPATH, []
    elif go_plugin == "1.8":
        setup, gopath, extra = _GP18_SETUP.format(name = name), "$$gopath", _GP18_FILES
    else:
        fail("go_plugin: expected \"1.0.1\" or \"1.8\", got %r" % go_plugin)
    labels = sorted(packages.keys())
    copy = "\n".join([
        'mkdir -p "$$gp/src/{ip}" && cp -L $(locations {label}) "$$gp/src/{ip}/"'.format(
            ip = ip,
            label = packages[ip],
        )
        for ip in labels
    ])
    native.genrule(
        # The output file is the binary's label: //pkg:name.
        name = name + "_build",
        srcs = srcs + [packages[ip] for ip in labels] + extra,
        outs = [name],
        tools = ["@system_tools//:go"],
        executable = True,
        tags = tags + ["no-sandbox"],
        cmd = setup + """
gp=$$(mktemp -d) && trap 'rm -rf "$$gp"' EXIT
out=$$PWD/$@
gobin=$$PWD/$(location @system_tools//:go)
mkdir -p "$$gp/src/{name}.main" && cp -L {main} "$$gp/src/{name}.main/"
{copy}
mkdir -p {cache}
cd "$$gp/src/{name}.main"
env -i PATH=/usr/bin:/bin HOME="$$gp" GOPATH="$$gp:{gopath}" GO111MODULE=off GOFLAGS= \\
    GOPROXY=off CGO_ENABLED=0 GOCACHE={cache} \\
    "$$gobin" build -trimpath -buildvcs=false -o "$$out" . >&2
""".format(
            name = name,
            main = " ".join(["$(locations %s)" % s for s in srcs]),
            copy = copy,
            cache = GO_GOCACHE,
            gopath = gopath,
        ),
        **kwargs
    )

"""Go peers (hashicorp/go-plugin 1.0.1 from Debian) built with plain `go build`.

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

def go_peer_binary(name, srcs, packages = {}, tags = [], **kwargs):
    """A Go main package built against Debian's go-plugin in GOPATH mode.

    Args:
      name: the binary.
      srcs: the main package's .go files.
      packages: {import path: label}; the label's files become the package at
        $GOPATH/src/<import path> (e.g. {"kvpeer": "//interop-tests/go:kvpeer"}).
      tags: extra tags; "no-sandbox" is always added (the shared GOCACHE).
    """
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
        srcs = srcs + [packages[ip] for ip in labels],
        outs = [name],
        tools = ["@system_tools//:go"],
        executable = True,
        tags = tags + ["no-sandbox"],
        cmd = _CHECK_DEBIAN + """
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
            gopath = GO_GOPATH,
        ),
        **kwargs
    )

// go-big-peer: the Go side of big_interop_test.sh (go-plugin 1.0.1, gRPC).
//
//	go-big-peer plugin        serves gp.interop.big.Big
//	go-big-peer host PLUGIN   starts PLUGIN (with the argument "plugin"),
//	                          calls Big.Swap once and checks the reply
//
// Exit status 0 when everything matched. The blobs follow the PATTERN
// comment of big_peer.c: byte i of a blob with seed s is (i*31 + s) & 0xff.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"bigpb"
)

const mib = 1 << 20

type shape struct {
	n    int
	seed int
}

var (
	reqChunks  = []shape{{mib, 1}, {5, 2}, {0, 0}}
	reqBlob    = shape{mib + 1, 3}
	respChunks = []shape{{mib + 3, 4}, {mib, 5}}
	respBlob   = shape{mib, 6}
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "GP_BIG_INTEROP",
	MagicCookieValue: "big",
}

func makeBlob(s shape) []byte {
	b := make([]byte, s.n)
	for i := range b {
		b[i] = byte((i*31 + s.seed) & 0xff)
	}
	return b
}

func mismatch(what string, b []byte, s shape) error {
	if len(b) != s.n {
		return fmt.Errorf("%s: %d bytes, expected %d", what, len(b), s.n)
	}
	for i, c := range b {
		if c != byte((i*31+s.seed)&0xff) {
			return fmt.Errorf("%s: byte %d differs", what, i)
		}
	}
	return nil
}

func check(m *bigpb.Blobs, cs []shape, bl shape) error {
	if len(m.Chunks) != len(cs) {
		return fmt.Errorf("%d chunks, expected %d", len(m.Chunks), len(cs))
	}
	for i, s := range cs {
		if err := mismatch(fmt.Sprintf("chunk %d", i), m.Chunks[i], s); err != nil {
			return err
		}
	}
	blob, ok := m.Payload.(*bigpb.Blobs_Blob)
	if !ok {
		return fmt.Errorf("the oneof does not hold blob")
	}
	return mismatch("blob", blob.Blob, bl)
}

func fill(cs []shape, bl shape) *bigpb.Blobs {
	m := &bigpb.Blobs{Payload: &bigpb.Blobs_Blob{Blob: makeBlob(bl)}}
	for _, s := range cs {
		m.Chunks = append(m.Chunks, makeBlob(s))
	}
	return m
}

type server struct{}

func (server) Swap(_ context.Context, req *bigpb.Blobs) (*bigpb.Blobs, error) {
	if err := check(req, reqChunks, reqBlob); err != nil {
		return nil, fmt.Errorf("Go plugin: request %v", err)
	}
	return fill(respChunks, respBlob), nil
}

type bigPlugin struct{ plugin.Plugin }

func (bigPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	bigpb.RegisterBigServer(s, server{})
	return nil
}

func (bigPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return bigpb.NewBigClient(c), nil
}

func logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "go-big-peer", Level: hclog.Error, Output: os.Stderr})
}

func host(path string) error {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          map[string]plugin.Plugin{"big": bigPlugin{}},
		Cmd:              exec.Command(path, "plugin"),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	raw, err := rpc.Dispense("big")
	if err != nil {
		return err
	}
	req := fill(reqChunks, reqBlob)
	resp, err := raw.(bigpb.BigClient).Swap(context.Background(), req)
	if err != nil {
		return err
	}
	if err := check(resp, respChunks, respBlob); err != nil {
		return fmt.Errorf("reply %v", err)
	}
	fmt.Printf("go-big-peer: swapped %d+%d chunks and two blobs of about 1 MiB\n", len(req.Chunks), len(resp.Chunks))
	return nil
}

func main() {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "plugin":
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: handshake,
			Plugins:         map[string]plugin.Plugin{"big": bigPlugin{}},
			GRPCServer:      plugin.DefaultGRPCServer,
			Logger:          logger(),
		})
	case len(os.Args) == 3 && os.Args[1] == "host":
		if err := host(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "go-big-peer: %v\n", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: go-big-peer plugin | go-big-peer host PLUGIN")
		os.Exit(2)
	}
}

// greeter-go-host PLUGIN grpc|netrpc NAME...: the greeter host on
// hashicorp/go-plugin 1.0.1, to show a C plugin built out of tree serves a Go
// host. Same output as the C greeter-host. greeter.pb.go comes from
// protoc-gen-go at test time (packaging/test/install_test.sh).
package main

import (
	"context"
	"fmt"
	"net/rpc"
	"os"
	"os/exec"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"greeter"
)

// The C plugin's gob structs mirror greeter.proto field for field.
type GreetRequest struct {
	Name string
	Blob []byte
}
type GreetReply struct {
	Message string
	Count   int64
}
type Empty struct{}
type StatsReply struct {
	Greeted int64
}

type greeterAPI interface {
	Greet(name string) (string, int64, error)
	Stats() (int64, error)
}

type greeterPlugin struct{}

func (greeterPlugin) Server(*plugin.MuxBroker) (interface{}, error) {
	return nil, fmt.Errorf("host only")
}
func (greeterPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return rpcClient{c}, nil
}
func (greeterPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("host only")
}
func (greeterPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return grpcClient{greeter.NewGreeterClient(c)}, nil
}

type rpcClient struct{ c *rpc.Client }

func (r rpcClient) Greet(name string) (string, int64, error) {
	var resp GreetReply
	err := r.c.Call("Plugin.Greet", GreetRequest{Name: name, Blob: []byte(name)}, &resp)
	return resp.Message, resp.Count, err
}
func (r rpcClient) Stats() (int64, error) {
	var resp StatsReply
	err := r.c.Call("Plugin.Stats", Empty{}, &resp)
	return resp.Greeted, err
}

type grpcClient struct{ c greeter.GreeterClient }

func (g grpcClient) Greet(name string) (string, int64, error) {
	r, err := g.c.Greet(context.Background(), &greeter.GreetRequest{Name: name, Blob: []byte(name)})
	if err != nil {
		return "", 0, err
	}
	return r.Message, r.Count, nil
}
func (g grpcClient) Stats() (int64, error) {
	r, err := g.c.Stats(context.Background(), &emptypb.Empty{})
	if err != nil {
		return 0, err
	}
	return r.Greeted, nil
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: greeter-go-host PLUGIN grpc|netrpc NAME...")
		os.Exit(2)
	}
	proto := plugin.Protocol(os.Args[2])
	cmd := exec.Command(os.Args[1])
	cmd.Env = append(os.Environ(), "GREETER_PROTO="+os.Args[2])
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "GREETER_PLUGIN",
			MagicCookieValue: "8d1f3c",
		},
		Plugins:          plugin.PluginSet{"greeter": greeterPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{proto},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
	})
	defer client.Kill()
	err := run(client, proto)
	if err != nil {
		fmt.Fprintln(os.Stderr, "greeter-go-host:", err)
		client.Kill()
		os.Exit(1)
	}
}

func run(client *plugin.Client, proto plugin.Protocol) error {
	rpcc, err := client.Client()
	if err != nil {
		return err
	}
	raw, err := rpcc.Dispense("greeter")
	if err != nil {
		return err
	}
	g := raw.(greeterAPI)
	for _, name := range os.Args[3:] {
		msg, n, err := g.Greet(name)
		if err != nil {
			return fmt.Errorf("Greet: %v", err)
		}
		fmt.Printf("%s #%d\n", msg, n)
	}
	n, err := g.Stats()
	if err != nil {
		return fmt.Errorf("Stats: %v", err)
	}
	fmt.Printf("greeted %d over %s\n", n, proto)
	return nil
}

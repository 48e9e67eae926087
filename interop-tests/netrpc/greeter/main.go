// go-greeter-plugin: a netrpc plugin shaped like go-plugin's examples/basic
// (hashicorp/go-plugin 1.0.1): plugin "greeter", net/rpc methods whose
// argument is an interface{} and whose reply is a string. The C host drives
// it through the dynamic gob API (greeter_host_test.c).
package main

import (
	"fmt"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"net/rpc"
)

// GreeterServer is the net/rpc receiver (exported, as net/rpc requires).
type GreeterServer struct{}

// Greet ignores its argument, as the basic example does. It also writes
// to os.Stdout and os.Stderr, which go-plugin forwards over yamux streams
// 3 and 5 (the test checks they reach the host's logger).
func (GreeterServer) Greet(args interface{}, resp *string) error {
	fmt.Fprintln(os.Stdout, "greet: a line on stdout")
	fmt.Fprintln(os.Stderr, "greet: a line on stderr")
	*resp = "Hello!"
	return nil
}

// GreetName greets the string carried by its interface{} argument.
func (GreeterServer) GreetName(args interface{}, resp *string) error {
	name, ok := args.(string)
	if !ok {
		return fmt.Errorf("expected a string name, got %T", args)
	}
	*resp = "Hello, " + name + "!"
	return nil
}

// Sum adds the ints of an interface{} holding a []int.
func (GreeterServer) Sum(args interface{}, resp *int) error {
	xs, ok := args.([]int)
	if !ok {
		return fmt.Errorf("expected []int, got %T", args)
	}
	for _, x := range xs {
		*resp += x
	}
	return nil
}

type greeterPlugin struct{}

func (greeterPlugin) Server(*plugin.MuxBroker) (interface{}, error) { return GreeterServer{}, nil }

func (greeterPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return c, nil
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-greeter-plugin", Level: hclog.Debug,
		Output: os.Stderr, JSONFormat: true})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 1,
			MagicCookieKey: "BASIC_PLUGIN", MagicCookieValue: "hello"},
		Plugins: map[string]plugin.Plugin{"greeter": greeterPlugin{}},
		Logger:  logger,
	})
}

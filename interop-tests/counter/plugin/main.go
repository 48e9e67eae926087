// go-counter-plugin: the Counter plugin on go-plugin 1.0.1 (the Go peer of
// //examples/counter:counter-host). COUNTER_PLUGIN_PROTO = grpc (default) or
// netrpc, as //examples/counter:counter-plugin.
package main

import (
	"fmt"
	"os"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"counterpeer"
)

func main() {
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-counter-plugin", Level: hclog.Debug,
		Output: os.Stderr, JSONFormat: true})
	cfg := &plugin.ServeConfig{
		HandshakeConfig: counterpeer.Handshake,
		Plugins:         counterpeer.PluginMap(counterpeer.NewStore()),
		Logger:          logger,
	}
	switch p := os.Getenv("COUNTER_PLUGIN_PROTO"); p {
	case "", "grpc":
		cfg.GRPCServer = plugin.DefaultGRPCServer
	case "netrpc":
	default:
		fmt.Fprintf(os.Stderr, "go-counter-plugin: COUNTER_PLUGIN_PROTO: expected grpc or netrpc, got %q\n", p)
		os.Exit(1)
	}
	plugin.Serve(cfg)
}

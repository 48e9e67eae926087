// go-kv-plugin: the KV plugin on hashicorp/go-plugin 1.0.1, the Go peer the
// C kv-host is tested against. Serves the protocol named by KV_PLUGIN_PROTO
// (grpc by default, or netrpc), exactly like //examples/kv:kv-plugin.
//
// KV_PLUGIN_STDOUT_FLOOD=N writes N bytes to stdout after the handshake
// (see flood.go).
//
// KV_PLUGIN_PIDFILE, when set, gets this process's pid, and the line
// "stopped" once the host has stopped it gracefully, so tests can check how
// the plugin went away.
package main

import (
	"fmt"
	"os"
	"strconv"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"kvpeer"
)

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "go-kv-plugin",
		Level:      hclog.Debug,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	var kv kvpeer.KV = kvpeer.NewStore(logger)
	if spec := os.Getenv("KV_PLUGIN_STDOUT_FLOOD"); spec != "" {
		var err error
		if kv, err = startFlood(kv, spec); err != nil {
			fmt.Fprintf(os.Stderr, "go-kv-plugin: %v\n", err)
			os.Exit(1)
		}
	}
	cfg := &plugin.ServeConfig{
		HandshakeConfig: kvpeer.Handshake,
		Plugins:         kvpeer.PluginSet(kv),
		Logger:          logger,
	}
	proto := os.Getenv("KV_PLUGIN_PROTO")
	switch proto {
	case "", "grpc":
		cfg.GRPCServer = plugin.DefaultGRPCServer
	case "netrpc":
		// go-plugin serves net/rpc when no gRPC server is configured.
	default:
		fmt.Fprintf(os.Stderr, "go-kv-plugin: KV_PLUGIN_PROTO: expected grpc or netrpc, got %q\n", proto)
		os.Exit(1)
	}
	if path := os.Getenv("KV_PLUGIN_PIDFILE"); path != "" {
		if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "go-kv-plugin: KV_PLUGIN_PIDFILE: %v\n", err)
			os.Exit(1)
		}
	}
	plugin.Serve(cfg)
	// Serve returns only when the host asked us to stop (Shutdown, Quit).
	logger.Info("stopped")
	if path := os.Getenv("KV_PLUGIN_PIDFILE"); path != "" {
		appendLine(path, "stopped")
	}
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

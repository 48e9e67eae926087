// go-counter-host: the Counter host on go-plugin 1.0.1 (the Go peer of
// //examples/counter:counter-plugin). Same command line and output as
// //examples/counter:counter-host:
//
//	go-counter-host --plugin PATH [--proto grpc|netrpc] [--automtls] [--multiplex] [--] CMD...
//	CMD: put KEY N | get KEY
//
// --automtls sets ClientConfig.AutoMTLS; --multiplex sets GRPCBrokerMultiplex
// (go-plugin 1.6+ only: an error on 1.0.1).
package main

import (
	"bytes"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"counterpeer"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-counter-host: "+format+"\n", a...)
	os.Exit(1)
}

// exitWatch passes the host's log through (lines below min dropped) and
// keeps go-plugin's "plugin process exited" line, whose error="..." is the
// only sign of a plugin that exited badly (a crash, a leak report under
// ASan); "plugin failed to exit gracefully" means the signal was ours.
type exitWatch struct {
	mu       sync.Mutex
	out      io.Writer
	min      hclog.Level
	forced   bool
	exitLine string
}

func (w *exitWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("plugin failed to exit gracefully")) {
		w.forced = true
	}
	if i := bytes.Index(p, []byte("plugin process exited")); i >= 0 {
		w.exitLine = strings.TrimSpace(string(p[i:]))
	}
	if w.min > hclog.Debug && bytes.Contains(p, []byte("[DEBUG]")) {
		return len(p), nil
	}
	return w.out.Write(p)
}

func main() {
	path, proto := "", "grpc"
	automtls, multiplex := false, false
	args := os.Args[1:]
	for len(args) > 0 {
		if args[0] == "--" {
			args = args[1:]
			break
		} else if args[0] == "--plugin" && len(args) > 1 {
			path, args = args[1], args[2:]
		} else if args[0] == "--proto" && len(args) > 1 {
			proto, args = args[1], args[2:]
		} else if args[0] == "--automtls" {
			automtls, args = true, args[1:]
		} else if args[0] == "--multiplex" {
			multiplex, args = true, args[1:]
		} else {
			break
		}
	}
	if path == "" || len(args) == 0 {
		fail("usage: go-counter-host --plugin PATH [--proto grpc|netrpc] [--automtls] [--multiplex] -- put KEY N | get KEY ...")
	}
	allowed := []plugin.Protocol{plugin.ProtocolGRPC}
	if proto == "netrpc" {
		allowed = []plugin.Protocol{plugin.ProtocolNetRPC}
	} else if proto != "grpc" {
		fail("unknown protocol %q (expected grpc or netrpc)", proto)
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "COUNTER_PLUGIN_PROTO="+proto)
	level := hclog.Warn
	if os.Getenv("COUNTER_HOST_LOG_LEVEL") == "debug" {
		level = hclog.Debug
	}
	watch := &exitWatch{out: os.Stderr, min: level}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  counterpeer.Handshake,
		Plugins:          counterpeer.PluginMap(nil),
		Cmd:              cmd,
		AllowedProtocols: allowed,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "go-counter-host", Level: hclog.Debug, Output: watch}),
		SyncStderr:       ioutil.Discard,
		AutoMTLS:         automtls,
	}
	if multiplex {
		if err := counterpeer.SetGRPCBrokerMultiplex(cfg); err != nil {
			fail("%v", err)
		}
	}
	client := plugin.NewClient(cfg)
	defer client.Kill()
	rpcClient, err := client.Client()
	if err != nil {
		client.Kill()
		fail("%v", err)
	}
	raw, err := rpcClient.Dispense("counter")
	if err != nil {
		client.Kill()
		fail("dispense counter: %v", err)
	}
	counter := raw.(counterpeer.Counter)
	for i := 0; i < len(args); {
		switch {
		case args[i] == "put" && i+2 < len(args):
			n, err := strconv.ParseInt(args[i+2], 10, 64)
			if err != nil {
				client.Kill()
				fail("put %s: bad number %q", args[i+1], args[i+2])
			}
			if err := counter.Put(args[i+1], n, counterpeer.Adder{}); err != nil {
				client.Kill()
				fail("put %s: %v", args[i+1], err)
			}
			i += 3
		case args[i] == "get" && i+1 < len(args):
			v, err := counter.Get(args[i+1])
			if err != nil {
				client.Kill()
				fail("get %s: %v", args[i+1], err)
			}
			fmt.Println(v)
			i += 2
		default:
			client.Kill()
			fail("bad command at %q (expected put KEY N or get KEY)", args[i])
		}
	}
	client.Kill()
	watch.mu.Lock()
	line, forced := watch.exitLine, watch.forced
	watch.mu.Unlock()
	if i := strings.Index(line, "error="); i >= 0 && !forced {
		fail("plugin exited unexpectedly: %s", line[i:])
	}
}

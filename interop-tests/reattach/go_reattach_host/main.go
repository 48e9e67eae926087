// go-reattach-host: a host on hashicorp/go-plugin 1.0.1 that reattaches to a
// running KV plugin from a reattach file written by goplugin-c (kv-host
// --detach), runs gets, and optionally kills it the way go-plugin does.
//
//	go-reattach-host FILE [get KEY]... [kill]
//
// go-plugin 1.0.1's ReattachConfig has only Protocol, Addr and Pid; Addr is
// a net.Addr, which the file carries as {"Network", "String"}. Other keys in
// the file (ProtocolVersion, Test, PidStartTime) are ignored, as
// encoding/json ignores unknown fields.
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"strings"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"kvpeer"
)

type reattachFile struct {
	Protocol string
	Addr     struct {
		Network string
		String  string
	}
	Pid int
}

func fail(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "go-reattach-host: %s\n", strings.Join(strings.Fields(msg), " "))
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-reattach-host FILE [get KEY]... [kill]")
	}
	data, err := ioutil.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var f reattachFile
	if err := json.Unmarshal(data, &f); err != nil {
		fail("%s: %v", os.Args[1], err)
	}
	var addr net.Addr
	switch f.Addr.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", f.Addr.String)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", f.Addr.String)
	default:
		err = fmt.Errorf("network %q: expected unix or tcp", f.Addr.Network)
	}
	if err != nil {
		fail("%s: Addr: %v", os.Args[1], err)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  kvpeer.Handshake,
		Plugins:          kvpeer.PluginSet(nil),
		Reattach:         &plugin.ReattachConfig{Protocol: plugin.Protocol(f.Protocol), Addr: addr, Pid: f.Pid},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC, plugin.ProtocolNetRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "go-reattach-host", Output: os.Stderr, Level: hclog.Warn}),
	})
	rpc, err := client.Client()
	if err != nil {
		fail("reattach: %v", err)
	}
	raw, err := rpc.Dispense(kvpeer.PluginName)
	if err != nil {
		fail("dispense: %v", err)
	}
	kv := raw.(kvpeer.KV)
	args := os.Args[2:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "get" && i+1 < len(args):
			v, err := kv.Get(args[i+1])
			if err != nil {
				fail("get %q: %v", args[i+1], err)
			}
			os.Stdout.Write(append(v, '\n'))
			i++
		case args[i] == "kill":
			client.Kill()
			fmt.Fprintln(os.Stderr, "go-reattach-host: killed")
		default:
			fail("unknown command %q (expected get KEY or kill)", args[i])
		}
	}
}

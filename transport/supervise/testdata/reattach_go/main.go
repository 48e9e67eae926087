// reattach_go: the Go side of the reattach file interop test.
//
//	reattach_go write FILE grpc|netrpc unix|tcp ADDR PID
//	reattach_go read FILE
//	reattach_go rawwrite FILE grpc|netrpc unix|tcp ADDR PID
//
// "write" builds a go-plugin plugin.ReattachConfig (1.0.1: Protocol, Addr,
// Pid) and saves it in the file shape goplugin-c uses, with Addr as
// {Network, String} because encoding/json cannot decode into net.Addr.
// "read" loads such a file back into a plugin.ReattachConfig and prints it.
// "rawwrite" marshals the plugin.ReattachConfig itself: Addr then comes out
// as the concrete type's fields ({"Name","Net"} for unix), which Go cannot
// read back and goplugin-c refuses with a clear error.
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"strconv"

	plugin "github.com/hashicorp/go-plugin"
)

type fileAddr struct {
	Network string
	String  string
}

type fileConfig struct {
	Protocol        plugin.Protocol
	ProtocolVersion int
	Addr            fileAddr
	Pid             int
	Test            bool
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "reattach_go: "+format+"\n", args...)
	os.Exit(1)
}

func resolve(network, s string) net.Addr {
	switch network {
	case "unix":
		a, err := net.ResolveUnixAddr("unix", s)
		if err != nil {
			fail("%v", err)
		}
		return a
	case "tcp":
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			fail("%v", err)
		}
		return a
	}
	fail("unknown network %q", network)
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: write FILE PROTO NET ADDR PID | read FILE")
	}
	switch os.Args[1] {
	case "write", "rawwrite":
		if len(os.Args) != 7 {
			fail("write needs FILE PROTO NET ADDR PID")
		}
		pid, err := strconv.Atoi(os.Args[6])
		if err != nil {
			fail("%v", err)
		}
		rc := &plugin.ReattachConfig{
			Protocol: plugin.Protocol(os.Args[3]),
			Addr:     resolve(os.Args[4], os.Args[5]),
			Pid:      pid,
		}
		var v interface{} = rc
		if os.Args[1] == "write" {
			v = fileConfig{
				Protocol: rc.Protocol,
				Addr:     fileAddr{rc.Addr.Network(), rc.Addr.String()},
				Pid:      rc.Pid,
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			fail("%v", err)
		}
		if err := ioutil.WriteFile(os.Args[2], b, 0600); err != nil {
			fail("%v", err)
		}
	case "read":
		b, err := ioutil.ReadFile(os.Args[2])
		if err != nil {
			fail("%v", err)
		}
		var in fileConfig
		if err := json.Unmarshal(b, &in); err != nil {
			fail("%v", err)
		}
		rc := &plugin.ReattachConfig{
			Protocol: in.Protocol,
			Addr:     resolve(in.Addr.Network, in.Addr.String),
			Pid:      in.Pid,
		}
		fmt.Printf("protocol=%s network=%s addr=%s pid=%d version=%d test=%v\n",
			rc.Protocol, rc.Addr.Network(), rc.Addr.String(), rc.Pid,
			in.ProtocolVersion, in.Test)
	default:
		fail("unknown command %q", os.Args[1])
	}
}

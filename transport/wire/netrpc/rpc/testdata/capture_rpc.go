// Captures the bytes Go's net/rpc (gob codec) puts on the wire for a few
// calls, as seeds for rpc_fuzz: go run capture_rpc.go OUTDIR
// (requests.bin: what a host sends; replies.bin: what a plugin answers,
// including an error reply).
package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
)

type GetArgs struct{ Key string }
type PutArgs struct {
	Key   string
	Value []byte
}

type Plugin struct{}

func (Plugin) Get(a GetArgs, r *[]byte) error {
	if a.Key == "missing" {
		return errors.New("key not found: missing")
	}
	*r = []byte("value of " + a.Key)
	return nil
}
func (Plugin) Put(a PutArgs, r *struct{}) error { return nil }

// tee records what passes through one direction of a connection.
type tee struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tee) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf.Write(p)
	t.mu.Unlock()
	return t.Conn.Write(p)
}

func main() {
	out := os.Args[1]
	a, b := net.Pipe()
	host := &tee{Conn: a}
	plugin := &tee{Conn: b}
	srv := rpc.NewServer()
	srv.RegisterName("Plugin", Plugin{})
	go srv.ServeConn(plugin)
	c := rpc.NewClient(host)
	var v []byte
	var e struct{}
	c.Call("Plugin.Put", PutArgs{"a", []byte("1")}, &e)
	c.Call("Plugin.Get", GetArgs{"a"}, &v)
	c.Call("Plugin.Get", GetArgs{"missing"}, &v)
	c.Call("Plugin.Nope", GetArgs{"x"}, &v)
	c.Close()
	io.Copy(io.Discard, b)
	host.mu.Lock()
	os.WriteFile(filepath.Join(out, "go_host_requests.bin"), host.buf.Bytes(), 0o644)
	host.mu.Unlock()
	plugin.mu.Lock()
	os.WriteFile(filepath.Join(out, "go_plugin_replies.bin"), plugin.buf.Bytes(), 0o644)
	plugin.mu.Unlock()
}

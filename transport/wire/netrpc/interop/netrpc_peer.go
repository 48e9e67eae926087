// netrpc_peer: Go's encoding/gob and net/rpc (over hashicorp/yamux, as
// go-plugin 1.0.1) for netrpc_interop_test.
//
//	netrpc_peer gob-emit     write the test values as a gob stream to stdout
//	netrpc_peer gob-check    read the test values from stdin; exit 0 if equal
//	netrpc_peer rpc-server   yamux server on fd 3: net/rpc service Plugin on
//	                         every stream
//	netrpc_peer rpc-client   yamux client on fd 3: call the C server's Plugin
//	                         service (8 concurrent callers, errors, structs)
package main

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/hashicorp/yamux"
)

type Inner struct{ N int }

type Args struct {
	Name string
	Tags []string
	Meta map[string]string
	In   Inner
	Data []byte
	Neg  int64
	F    float64
	OK   bool
}

type Rich struct {
	Any    interface{}
	Nil    interface{}
	Arr    [3]int
	C      complex128
	F32    float32
	U8     uint8
	Nested []Inner
	M      map[string]int
	Deep   [][]string
}

func testArgs() Args {
	return Args{"x", []string{"a", "b"}, map[string]string{"k": "v"}, Inner{2}, []byte{1, 2}, -1, 17.0, true}
}

func testRich() Rich {
	return Rich{
		Any: Inner{5}, Arr: [3]int{1, -2, 3}, C: complex(1.5, -2), F32: 0.25, U8: 200,
		Nested: []Inner{{1}, {0}, {3}}, M: map[string]int{"one": 1},
		Deep: [][]string{{"p"}, {}, {"q", "r"}},
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "netrpc_peer: "+format+"\n", args...)
	os.Exit(1)
}

type Plugin struct{}

func (Plugin) Echo(s string, r *string) error { *r = s; return nil }
func (Plugin) Fail(s string, r *string) error { return errors.New("boom: " + s) }
func (Plugin) Args(a Args, r *Args) error     { *r = a; r.Neg--; return nil }

// Greet has the shape of go-plugin's basic example: interface{} argument.
func (Plugin) Greet(a interface{}, r *string) error { *r = "Hello!"; return nil }

func session(server bool) *yamux.Session {
	conn, err := net.FileConn(os.NewFile(3, "conn"))
	if err != nil {
		fail("fd 3: %v", err)
	}
	var s *yamux.Session
	if server {
		s, err = yamux.Server(conn, nil)
	} else {
		s, err = yamux.Client(conn, nil)
	}
	if err != nil {
		fail("yamux: %v", err)
	}
	return s
}

func main() {
	gob.Register(Inner{})
	if len(os.Args) != 2 {
		fail("usage: netrpc_peer gob-emit|gob-check|rpc-server|rpc-client")
	}
	switch os.Args[1] {
	case "gob-emit":
		enc := gob.NewEncoder(os.Stdout)
		if err := enc.Encode(testArgs()); err != nil {
			fail("encode: %v", err)
		}
		if err := enc.Encode(testRich()); err != nil {
			fail("encode: %v", err)
		}
	case "gob-check":
		dec := gob.NewDecoder(os.Stdin)
		var a Args
		var r Rich
		if err := dec.Decode(&a); err != nil {
			fail("decode Args: %v", err)
		}
		if !reflect.DeepEqual(a, testArgs()) {
			fail("Args: got %#v", a)
		}
		if err := dec.Decode(&r); err != nil {
			fail("decode Rich: %v", err)
		}
		want := testRich()
		// gob sends an empty inner slice as zero length: nil on decode.
		want.Deep[1] = nil
		if !reflect.DeepEqual(r, want) {
			fail("Rich: got %#v\nwant %#v", r, want)
		}
	case "rpc-server":
		srv := rpc.NewServer()
		if err := srv.RegisterName("Plugin", Plugin{}); err != nil {
			fail("register: %v", err)
		}
		s := session(true)
		for {
			st, err := s.Accept()
			if err != nil {
				break
			}
			go srv.ServeConn(st)
		}
	case "rpc-client":
		s := session(false)
		st, err := s.Open()
		if err != nil {
			fail("open: %v", err)
		}
		c := rpc.NewClient(st)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					in := fmt.Sprintf("caller %d call %d", g, i)
					var out string
					if err := c.Call("Plugin.Echo", in, &out); err != nil || out != in {
						errs <- fmt.Errorf("Echo(%q) = %q, %v", in, out, err)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			fail("%v", err)
		}
		big := strings.Repeat("0123456789abcdef", 1<<16)
		var out string
		if err := c.Call("Plugin.Echo", big, &out); err != nil || out != big {
			fail("Echo(1 MiB): %d bytes, %v", len(out), err)
		}
		if err := c.Call("Plugin.Fail", "x", &out); err == nil || err.Error() != "boom: x" {
			fail("Fail: %v", err)
		}
		if err := c.Call("Plugin.Nope", "x", &out); err == nil || err.Error() != "rpc: can't find method Plugin.Nope" {
			fail("Nope: %v", err)
		}
		var a Args
		if err := c.Call("Plugin.Args", testArgs(), &a); err != nil {
			fail("Args: %v", err)
		}
		want := testArgs()
		want.Neg--
		if !reflect.DeepEqual(a, want) {
			fail("Args: got %#v", a)
		}
		if err := c.Call("Plugin.Greet", new(interface{}), &out); err != nil || out != "Hello!" {
			fail("Greet: %q, %v", out, err)
		}
		c.Close()
		s.Close()
	default:
		fail("unknown mode %q", os.Args[1])
	}
	_ = io.EOF
}

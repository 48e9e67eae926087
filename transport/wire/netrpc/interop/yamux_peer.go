// yamux_peer: Go's hashicorp/yamux (Debian df201c7, as go-plugin 1.0.1
// uses) on the socket inherited as fd 3, for mux_interop_test.
//
//	yamux_peer server                  echo every stream until EOF, then FIN;
//	                                   exit 0 when the session ends
//	yamux_peer client N SIZE HOLD_MS   open N streams at once, send SIZE
//	                                   bytes on each, check the echo; keep the
//	                                   session (and keepalive) HOLD_MS longer;
//	                                   Ping; close; exit 0 if all was right
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + (i >> 9) + seed)
	}
	return b
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "yamux_peer: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: yamux_peer server | client N SIZE HOLD_MS")
	}
	conn, err := net.FileConn(os.NewFile(3, "conn"))
	if err != nil {
		fail("fd 3: %v", err)
	}
	cfg := yamux.DefaultConfig()
	// Short keepalive so the test sees several pings; a short write
	// timeout so an unanswered ping fails the session quickly.
	cfg.KeepAliveInterval = 100 * time.Millisecond
	cfg.ConnectionWriteTimeout = 2 * time.Second
	cfg.LogOutput = os.Stderr

	switch os.Args[1] {
	case "server":
		s, err := yamux.Server(conn, cfg)
		if err != nil {
			fail("server: %v", err)
		}
		var wg sync.WaitGroup
		for {
			st, err := s.AcceptStream()
			if err != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(st, st)
				st.Close()
			}()
		}
		wg.Wait()
	case "client":
		if len(os.Args) != 5 {
			fail("usage: yamux_peer client N SIZE HOLD_MS")
		}
		n, _ := strconv.Atoi(os.Args[2])
		size, _ := strconv.Atoi(os.Args[3])
		hold, _ := strconv.Atoi(os.Args[4])
		s, err := yamux.Client(conn, cfg)
		if err != nil {
			fail("client: %v", err)
		}
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func(seed int) { errs <- roundtrip(s, size, seed) }(i)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				fail("stream: %v", err)
			}
		}
		time.Sleep(time.Duration(hold) * time.Millisecond)
		if s.IsClosed() {
			fail("session closed during hold (keepalive?)")
		}
		if _, err := s.Ping(); err != nil {
			fail("ping: %v", err)
		}
		s.Close()
	default:
		fail("unknown mode %q", os.Args[1])
	}
}

// Go's old yamux returns EOF from Read after a local Close, so the client
// reads the whole echo before it closes.
func roundtrip(s *yamux.Session, size, seed int) error {
	st, err := s.OpenStream()
	if err != nil {
		return err
	}
	want := pattern(size, seed)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(want)
		werr <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(st, got); err != nil {
		return fmt.Errorf("stream %d: read echo: %v", st.StreamID(), err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("stream %d: write: %v", st.StreamID(), err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("stream %d: echo differs", st.StreamID())
	}
	return st.Close()
}

package main

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"kvpeer"
)

// KV_PLUGIN_STDOUT_FLOOD=N: once go-plugin has taken over os.Stdout (after
// the handshake line), write N bytes of text lines to it, as a plugin that
// prints would. go-plugin 1.8 forwards them over GRPCStdio; when the host
// never drains that stream the writes block. The key "stdout-flood" then
// reads "done N" once all N bytes were written, or, after waiting 5 s,
// "blocked after M of N bytes".

const floodKey = "stdout-flood"

type floodKV struct {
	kvpeer.KV
	total   int64
	written int64 // atomic
	done    chan struct{}
}

func startFlood(kv kvpeer.KV, spec string) (kvpeer.KV, error) {
	n, err := strconv.ParseInt(spec, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("KV_PLUGIN_STDOUT_FLOOD: expected a byte count, got %q", spec)
	}
	f := &floodKV{KV: kv, total: n, done: make(chan struct{})}
	orig := os.Stdout
	go func() {
		// go-plugin replaces os.Stdout with its pipe once the handshake
		// line is out; writing before that would corrupt the handshake.
		for os.Stdout == orig {
			time.Sleep(5 * time.Millisecond)
		}
		line := []byte("stdout flood line: 0123456789abcdefghijklmnopqrstuvwxyz\n")
		for f.total-atomic.LoadInt64(&f.written) > 0 {
			chunk := line
			if left := f.total - atomic.LoadInt64(&f.written); left < int64(len(chunk)) {
				chunk = chunk[:left]
			}
			w, err := os.Stdout.Write(chunk)
			atomic.AddInt64(&f.written, int64(w))
			if err != nil {
				return
			}
		}
		close(f.done)
	}()
	return f, nil
}

func (f *floodKV) Get(key string) ([]byte, error) {
	if key != floodKey {
		return f.KV.Get(key)
	}
	select {
	case <-f.done:
		return []byte(fmt.Sprintf("done %d", f.total)), nil
	case <-time.After(5 * time.Second):
		return []byte(fmt.Sprintf("blocked after %d of %d bytes", atomic.LoadInt64(&f.written), f.total)), nil
	}
}

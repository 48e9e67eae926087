// go-kv-host: the KV host on hashicorp/go-plugin 1.0.1, the Go peer the C
// kv-plugin is tested against. Same command line and output as
// //examples/kv:kv-host:
//
//	go-kv-host --plugin PATH [--proto grpc|netrpc] [--start-timeout SECONDS] [--automtls] [--] CMD...
//	CMD: put KEY VALUE | get KEY | putfile KEY FILE | hammer THREADS CALLS | putraw KEY VALUE | syncwait LINES
//
// Go host only: putfile puts a file's bytes (one argv string cannot exceed
// 128 KiB on Linux, and the interop test puts 1 MiB); hammer runs THREADS
// goroutines that each put and get back CALLS distinct keys concurrently on
// the one connection, then prints "hammer: N calls ok". putraw (gRPC only)
// puts with the request encoded by hand, so KEY may be bytes that are not
// UTF-8, which Go's marshaler would refuse to send. syncwait waits (up to
// 30 s) until the KV_HOST_SYNC_STDOUT and KV_HOST_SYNC_STDERR files hold
// LINES lines each: the plugin's output crosses its own reader thread and
// stream, and go-plugin drops what has not arrived when Kill closes the
// stream, so a test that checks those files waits for them here rather than
// hoping its other calls took long enough.
//
// After the commands it kills the plugin as go-plugin does and prints to
// stderr one line: "go-kv-host: kill: graceful=BOOL duration_ms=MS".
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"kvpeer"
)

type command struct {
	verb string
	args []string
}

// parseCommands checks every command before the plugin is started.
func parseCommands(words []string) ([]command, error) {
	var cmds []command
	for i := 0; i < len(words); {
		verb := words[i]
		n := 0
		switch verb {
		case "put", "putfile", "hammer", "putraw":
			n = 2
		case "get", "syncwait":
			n = 1
		default:
			return nil, fmt.Errorf("unknown command %q (expected put KEY VALUE, get KEY, putfile KEY FILE, hammer THREADS CALLS, putraw KEY VALUE or syncwait LINES)", verb)
		}
		if i+1+n > len(words) {
			return nil, fmt.Errorf("%s: expected %d argument(s), got %d", verb, n, len(words)-i-1)
		}
		cmds = append(cmds, command{verb: verb, args: words[i+1 : i+1+n]})
		i += 1 + n
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("no command (expected put KEY VALUE, get KEY, putfile KEY FILE or hammer THREADS CALLS)")
	}
	return cmds, nil
}

func run(kv kvpeer.KV, cmds []command) error {
	for _, c := range cmds {
		switch c.verb {
		case "put":
			if err := kv.Put(c.args[0], []byte(c.args[1])); err != nil {
				return fmt.Errorf("put %q: %v", c.args[0], err)
			}
		case "putraw":
			raw, ok := kv.(interface{ PutRaw(string, []byte) error })
			if !ok {
				return fmt.Errorf("putraw: only over grpc")
			}
			if err := raw.PutRaw(c.args[0], []byte(c.args[1])); err != nil {
				return fmt.Errorf("putraw %q: %v", c.args[0], err)
			}
		case "putfile":
			data, err := os.ReadFile(c.args[1])
			if err != nil {
				return fmt.Errorf("putfile: %v", err)
			}
			if err := kv.Put(c.args[0], data); err != nil {
				return fmt.Errorf("put %q (%d bytes): %v", c.args[0], len(data), err)
			}
		case "hammer":
			threads, err1 := strconv.Atoi(c.args[0])
			calls, err2 := strconv.Atoi(c.args[1])
			if err1 != nil || err2 != nil || threads < 1 || calls < 1 {
				return fmt.Errorf("hammer: expected two positive integers, got %q %q", c.args[0], c.args[1])
			}
			if err := hammer(kv, threads, calls); err != nil {
				return fmt.Errorf("hammer: %v", err)
			}
			fmt.Printf("hammer: %d calls ok\n", 2*threads*calls)
		case "syncwait":
			lines, err := strconv.Atoi(c.args[0])
			if err != nil || lines < 1 {
				return fmt.Errorf("syncwait: expected a positive integer, got %q", c.args[0])
			}
			if err := syncWait(lines, 30*time.Second); err != nil {
				return fmt.Errorf("syncwait: %v", err)
			}
		case "get":
			v, err := kv.Get(c.args[0])
			if err != nil {
				return fmt.Errorf("get %q: %v", c.args[0], err)
			}
			os.Stdout.Write(append(v, '\n'))
		}
	}
	return nil
}

// syncWait polls the SyncStdout / SyncStderr files (KV_HOST_SYNC_STDOUT,
// KV_HOST_SYNC_STDERR) until each holds at least `lines` lines.
func syncWait(lines int, limit time.Duration) error {
	var paths []string
	for _, env := range []string{"KV_HOST_SYNC_STDOUT", "KV_HOST_SYNC_STDERR"} {
		if p := os.Getenv(env); p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("expected KV_HOST_SYNC_STDOUT or KV_HOST_SYNC_STDERR, got neither")
	}
	deadline := time.Now().Add(limit)
	for {
		short := ""
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if n := bytes.Count(data, []byte("\n")); n < lines {
				short = fmt.Sprintf("%s: expected %d lines, got %d: %q", p, lines, n, data)
				break
			}
		}
		if short == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %s", limit, short)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fail prints one line: go-plugin's errors span several.
// hammer checks that concurrent calls each get their own answer: every
// goroutine writes keys no other one touches, of varying sizes, and reads each
// back at once.
func hammer(kv kvpeer.KV, threads, calls int) error {
	errs := make(chan error, threads)
	for t := 0; t < threads; t++ {
		go func(t int) {
			for i := 0; i < calls; i++ {
				key := fmt.Sprintf("hammer-%d-%d", t, i)
				want := []byte(strings.Repeat(key+";", 1+(t*calls+i)%97))
				if err := kv.Put(key, want); err != nil {
					errs <- fmt.Errorf("put %s: %v", key, err)
					return
				}
				got, err := kv.Get(key)
				if err != nil {
					errs <- fmt.Errorf("get %s: %v", key, err)
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("get %s: expected %d bytes %.40q..., got %d bytes %.40q...", key, len(want), want, len(got), got)
					return
				}
			}
			errs <- nil
		}(t)
	}
	var first error
	for t := 0; t < threads; t++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "go-kv-host: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	os.Exit(1)
}

func main() {
	opts, words, err := kvpeer.ParseHostOptions(os.Args[1:], "debug")
	if err != nil {
		fail(err)
	}
	cmds, err := parseCommands(words)
	if err != nil {
		fail(err)
	}
	s, err := kvpeer.Open(opts)
	if err != nil {
		fail(err)
	}
	runErr := run(s.KV, cmds)
	k := s.Close()
	fmt.Fprintf(os.Stderr, "go-kv-host: kill: graceful=%t duration_ms=%.1f\n",
		k.Graceful, float64(k.Duration.Microseconds())/1000)
	if runErr != nil {
		fail(runErr)
	}
	if k.Unexpected != "" {
		fail(fmt.Errorf("plugin exited unexpectedly: %s", k.Unexpected))
	}
}

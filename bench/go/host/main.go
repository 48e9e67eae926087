// go-bench-host: kv-host's bench subcommand on hashicorp/go-plugin 1.0.1,
// the Go side of bench/run.sh. Same command line, same measurements and the
// same JSON fields as //examples/kv:kv-host (examples/kv/bench.c):
//
//	go-bench-host --plugin PATH [--proto P] [--start-timeout S] bench
//	    --mode latency|throughput|startup [-n N] [--size BYTES] [-c THREADS]
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"kvpeer"
)

const benchKey = "bench-key"

type benchOpts struct {
	mode    string
	n       int
	size    int
	threads int
}

type result struct {
	latP50, latP99, latMean, callsPerS, startupP50 float64
	pluginRSS                                      int64
}

func parseBench(words []string) (benchOpts, error) {
	b := benchOpts{mode: "latency", size: 16, threads: 8}
	if len(words) == 0 || words[0] != "bench" {
		return b, fmt.Errorf("expected the command bench, got %q", strings.Join(words, " "))
	}
	for i := 1; i < len(words); i++ {
		name, val, hasVal := strings.Cut(words[i], "=")
		if !hasVal {
			if i+1 >= len(words) {
				return b, fmt.Errorf("bench: %s needs a value", name)
			}
			i++
			val = words[i]
		}
		if name == "--mode" {
			if val != "latency" && val != "throughput" && val != "startup" {
				return b, fmt.Errorf("unknown bench mode %q (expected latency, throughput or startup)", val)
			}
			b.mode = val
			continue
		}
		v, err := strconv.Atoi(val)
		if err != nil || v < 0 {
			return b, fmt.Errorf("bench: %s: expected a non-negative integer, got %q", name, val)
		}
		switch name {
		case "-n":
			b.n = v
		case "--size":
			b.size = v
		case "-c":
			if v < 1 {
				return b, fmt.Errorf("bench: -c: expected at least 1 thread, got %d", v)
			}
			b.threads = v
		default:
			return b, fmt.Errorf("bench: unknown option %q (expected --mode, -n, --size or -c)", name)
		}
	}
	if b.n == 0 {
		b.n = map[string]int{"latency": 10000, "throughput": 40000, "startup": 20}[b.mode]
	}
	return b, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// percentile picks the nearest rank, as bench.c does.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)-1) + 0.5)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func summarize(lat []float64, elapsed time.Duration, r *result) {
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	sort.Float64s(lat)
	r.latP50 = percentile(lat, 0.50)
	r.latP99 = percentile(lat, 0.99)
	if len(lat) > 0 {
		r.latMean = sum / float64(len(lat))
	}
	if elapsed > 0 {
		r.callsPerS = float64(len(lat)) * 1e6 / us(elapsed)
	}
}

func putValue(kv kvpeer.KV, size int) error {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	if err := kv.Put(benchKey, v); err != nil {
		return fmt.Errorf("bench put: %v", err)
	}
	return nil
}

// getOnce checks the value's size so a broken transport cannot look fast.
func getOnce(kv kvpeer.KV, size int) error {
	v, err := kv.Get(benchKey)
	if err != nil {
		return fmt.Errorf("bench get: %v", err)
	}
	if len(v) != size {
		return fmt.Errorf("bench get: expected %d bytes, got %d", size, len(v))
	}
	return nil
}

func latency(kv kvpeer.KV, b benchOpts, r *result) error {
	if err := putValue(kv, b.size); err != nil {
		return err
	}
	warm := b.n / 10
	if warm > 1000 {
		warm = 1000
	}
	for i := 0; i < warm; i++ {
		if err := getOnce(kv, b.size); err != nil {
			return err
		}
	}
	lat := make([]float64, b.n)
	t0 := time.Now()
	for i := range lat {
		a := time.Now()
		if err := getOnce(kv, b.size); err != nil {
			return err
		}
		lat[i] = us(time.Since(a))
	}
	summarize(lat, time.Since(t0), r)
	return nil
}

func throughput(kv kvpeer.KV, b benchOpts, r *result) error {
	per := b.n / b.threads
	if per < 1 {
		per = 1
	}
	if err := putValue(kv, b.size); err != nil {
		return err
	}
	for i := 0; i < 200; i++ { // warm up the connection
		if err := getOnce(kv, b.size); err != nil {
			return err
		}
	}
	lat := make([]float64, per*b.threads)
	errs := make([]error, b.threads)
	var wg sync.WaitGroup
	t0 := time.Now()
	for t := 0; t < b.threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			mine := lat[t*per : (t+1)*per]
			for i := range mine {
				a := time.Now()
				if err := getOnce(kv, b.size); err != nil {
					errs[t] = err
					return
				}
				mine[i] = us(time.Since(a))
			}
		}(t)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	summarize(lat, elapsed, r)
	return nil
}

// startup times exec -> handshake -> connect -> first Get, n times.
func startup(o kvpeer.HostOptions, b benchOpts, r *result) error {
	ms := make([]float64, b.n)
	for i := range ms {
		a := time.Now()
		s, err := kvpeer.Open(o)
		if err != nil {
			return err
		}
		// A key never put reads as empty: the first Get is the point.
		err = getOnce(s.KV, 0)
		ms[i] = us(time.Since(a)) / 1e3
		if rss := kvpeer.VmHWMKiB(s.Pid); rss > r.pluginRSS {
			r.pluginRSS = rss
		}
		s.Close()
		if err != nil {
			return err
		}
	}
	sort.Float64s(ms)
	r.startupP50 = percentile(ms, 0.5)
	return nil
}

// fail prints one line: go-plugin's errors span several.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "go-bench-host: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	os.Exit(1)
}

func main() {
	o, words, err := kvpeer.ParseHostOptions(os.Args[1:], "warn")
	if err != nil {
		fail(err)
	}
	b, err := parseBench(words)
	if err != nil {
		fail(err)
	}
	var r result
	if b.mode == "startup" {
		err = startup(o, b, &r)
	} else {
		s, openErr := kvpeer.Open(o)
		if openErr != nil {
			fail(openErr)
		}
		if b.mode == "latency" {
			err = latency(s.KV, b, &r)
		} else {
			err = throughput(s.KV, b, &r)
		}
		r.pluginRSS = kvpeer.VmHWMKiB(s.Pid)
		s.Close()
	}
	if err != nil {
		fail(err)
	}
	threads := 1
	if b.mode == "throughput" {
		threads = b.threads
	}
	fmt.Printf("{\"impl\":\"go\",\"proto\":%q,\"mode\":%q,\"n\":%d,\"size\":%d,\"threads\":%d,"+
		"\"lat_us_p50\":%.1f,\"lat_us_p99\":%.1f,\"lat_us_mean\":%.1f,\"calls_per_s\":%.0f,"+
		"\"startup_ms_p50\":%.2f,\"plugin_rss_peak_kib\":%d,\"host_rss_peak_kib\":%d}\n",
		o.Proto, b.mode, b.n, b.size, threads,
		r.latP50, r.latP99, r.latMean, r.callsPerS, r.startupP50, r.pluginRSS, kvpeer.VmHWMKiB(0))
}

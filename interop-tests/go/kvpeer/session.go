package kvpeer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// HostOptions are kv-host's common flags:
// --plugin PATH [--proto grpc|netrpc] [--start-timeout SECONDS] [--automtls]
// [--multiplex] [--].
type HostOptions struct {
	Plugin       string
	Proto        string
	StartTimeout time.Duration
	LogLevel     string
	AutoMTLS     bool // --automtls: go-plugin's ClientConfig.AutoMTLS
	Multiplex    bool // --multiplex: ClientConfig.GRPCBrokerMultiplex (go-plugin 1.6+)
}

// ParseHostOptions reads the common flags and returns the rest (the
// command words). Flags may also be written --flag=value. --log-level
// (trace..error, Go hosts only) filters the host's log and the plugin's
// stderr as go-plugin forwards it.
func ParseHostOptions(args []string, defaultLogLevel string) (HostOptions, []string, error) {
	o := HostOptions{Proto: "grpc", StartTimeout: time.Minute, LogLevel: defaultLogLevel}
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "--") {
			break
		}
		if a == "--automtls" {
			o.AutoMTLS = true
			i++
			continue
		}
		if a == "--multiplex" {
			o.Multiplex = true
			i++
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if name != "--plugin" && name != "--proto" && name != "--start-timeout" && name != "--log-level" {
			return o, nil, fmt.Errorf("unknown option %q (expected --plugin, --proto, --start-timeout, --log-level, --automtls, --multiplex or --)", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return o, nil, fmt.Errorf("option %s needs a value", name)
			}
			val = args[i+1]
			i++
		}
		i++
		switch name {
		case "--plugin":
			o.Plugin = val
		case "--proto":
			if val != "grpc" && val != "netrpc" {
				return o, nil, fmt.Errorf("--proto: expected grpc or netrpc, got %q", val)
			}
			o.Proto = val
		case "--start-timeout":
			secs, err := strconv.ParseFloat(val, 64)
			if err != nil || secs <= 0 {
				return o, nil, fmt.Errorf("--start-timeout: expected a positive number of seconds, got %q", val)
			}
			o.StartTimeout = time.Duration(secs * float64(time.Second))
		case "--log-level":
			o.LogLevel = val
		}
	}
	if o.Plugin == "" {
		return o, nil, fmt.Errorf("missing --plugin PATH")
	}
	return o, args[i:], nil
}

// gracefulWatch passes log output through and remembers whether go-plugin
// said it had to SIGKILL the plugin (Client.Kill's only observable sign),
// and how go-plugin said the plugin exited ("plugin process exited", with
// error="..." for anything but exit 0: go-plugin's only exit status). The
// logger runs at debug at least, so that line always comes; lines below
// the level asked for are dropped here.
type gracefulWatch struct {
	mu       sync.Mutex
	out      io.Writer
	min      hclog.Level
	forced   bool
	exitLine string
}

const forcedKillMsg = "plugin failed to exit gracefully"
const exitedMsg = "plugin process exited"

var levelTags = []struct {
	tag   string
	level hclog.Level
}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}}

func (w *gracefulWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(forcedKillMsg)) {
		w.forced = true
	}
	if i := bytes.Index(p, []byte(exitedMsg)); i >= 0 {
		w.exitLine = strings.TrimSpace(string(p[i:]))
	}
	// hclog's lines: "TIMESTAMP [LEVEL] name: message".
	if i := bytes.IndexByte(p, '['); i >= 0 {
		for _, t := range levelTags {
			if bytes.HasPrefix(p[i:], []byte(t.tag)) && t.level < w.min {
				return len(p), nil
			}
		}
	}
	return w.out.Write(p)
}

// Session is one plugin process with its dispensed KV.
type Session struct {
	KV     KV
	Pid    int
	client *plugin.Client
	watch  *gracefulWatch
}

// KillReport says how the plugin went away.
type KillReport struct {
	Duration time.Duration
	Graceful bool // go-plugin did not have to SIGKILL it
	// Unexpected: go-plugin's words when the plugin exited badly (a
	// non-zero status, or a signal go-plugin did not send: a crash, or a
	// leak report under ASan); "" otherwise.
	Unexpected string
}

// Open starts the plugin at o.Plugin, connects and dispenses "kv". On error
// the plugin (if it started) is already killed.
func Open(o HostOptions) (*Session, error) {
	min := hclog.LevelFromString(o.LogLevel)
	level := min
	if level == hclog.NoLevel || level > hclog.Debug {
		level = hclog.Debug // for the "plugin process exited" line
	}
	watch := &gracefulWatch{out: os.Stderr, min: min}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "go-kv-host",
		Level:  level,
		Output: watch,
	})
	// go-plugin puts the host's environment after cmd.Env, so an inherited
	// KV_PLUGIN_PROTO would win over cmd.Env: set it in ours.
	if err := os.Setenv("KV_PLUGIN_PROTO", o.Proto); err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Plugin)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.Protocol(o.Proto)},
		StartTimeout:     o.StartTimeout,
		Logger:           logger,
		AutoMTLS:         o.AutoMTLS,
	}
	// KV_HOST_SYNC_STDOUT / KV_HOST_SYNC_STDERR=FILE: what the plugin
	// writes to its stdout / stderr after the handshake (GRPCStdio) goes to
	// FILE (go-plugin discards it by default).
	for _, sy := range []struct {
		env string
		dst *io.Writer
	}{{"KV_HOST_SYNC_STDOUT", &cfg.SyncStdout}, {"KV_HOST_SYNC_STDERR", &cfg.SyncStderr}} {
		if path := os.Getenv(sy.env); path != "" {
			f, err := os.Create(path)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", sy.env, err)
			}
			*sy.dst = f
		}
	}
	if o.Multiplex {
		if err := SetGRPCBrokerMultiplex(cfg); err != nil {
			return nil, err
		}
	}
	client := plugin.NewClient(cfg)
	s := &Session{client: client, watch: watch}
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start %s: %v", o.Plugin, err)
	}
	s.Pid = cmd.Process.Pid
	raw, err := proto.Dispense(PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense %q: %v", PluginName, err)
	}
	s.KV = raw.(KV)
	return s, nil
}

// Close kills the plugin the way go-plugin does (graceful, then SIGKILL
// after 2 s) and says how long that took and whether it was graceful.
func (s *Session) Close() KillReport {
	t0 := time.Now()
	s.client.Kill()
	d := time.Since(t0)
	s.watch.mu.Lock()
	forced := s.watch.forced
	line := s.watch.exitLine
	s.watch.mu.Unlock()
	r := KillReport{Duration: d, Graceful: !forced}
	if i := strings.Index(line, "error="); i >= 0 && !forced {
		r.Unexpected = line[i:]
	}
	return r
}

// VmHWMKiB reads the peak resident set of pid (0: this process) from
// /proc/<pid>/status; 0 when it cannot.
func VmHWMKiB(pid int) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(strings.TrimPrefix(line, "VmHWM:"))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

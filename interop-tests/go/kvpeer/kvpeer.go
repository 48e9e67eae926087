// Package kvpeer is the KV example on hashicorp/go-plugin 1.0.1: the
// handshake, the plugin glue for gRPC and net/rpc, an in-memory store, and a
// host session. The Go peers of the interop tests and benchmarks share it, so
// they speak exactly what the C kv-host and kv-plugin speak.
package kvpeer

import (
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// Handshake is the KV example's: cookie BASIC_PLUGIN=hello, app version 1.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// PluginName is the name the KV plugin is dispensed under.
const PluginName = "kv"

// KV is what both ends see; a key never put reads as an empty value.
type KV interface {
	Put(key string, value []byte) error
	Get(key string) ([]byte, error)
}

// KVPlugin serves (Impl set) or dispenses (Impl nil) a KV over either
// protocol; go-plugin picks which from the handshake.
type KVPlugin struct {
	Impl KV
}

// PluginSet is what both hosts and plugins register.
func PluginSet(impl KV) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{PluginName: &KVPlugin{Impl: impl}}
}

// Store is the in-memory KV the Go plugins serve.
type Store struct {
	mu  sync.RWMutex
	m   map[string][]byte
	log hclog.Logger
}

// NewStore returns an empty store that logs puts to log.
func NewStore(log hclog.Logger) *Store {
	return &Store{m: make(map[string][]byte), log: log}
}

// Put stores a copy of value under key.
func (s *Store) Put(key string, value []byte) error {
	v := append([]byte(nil), value...)
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
	s.log.Debug("put", "key", key, "bytes", len(v))
	return nil
}

// Get returns the value under key, empty when it was never put.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.RLock()
	v := s.m[key]
	s.mu.RUnlock()
	return v, nil
}

// Package counterpeer is go-plugin 1.0.1's bidirectional example shape for
// //examples/counter: the host serves AddHelper through the broker and the
// plugin's Counter.Put calls it back. Both protocols.
package counterpeer

import (
	"sync"

	plugin "github.com/hashicorp/go-plugin"
)

// Handshake matches examples/counter/counter.h.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// AddHelper is what the host serves back to the plugin.
type AddHelper interface {
	Sum(a, b int64) (int64, error)
}

// Counter is the plugin's interface.
type Counter interface {
	Put(key string, value int64, a AddHelper) error
	Get(key string) (int64, error)
}

// CounterPlugin is the plugin.Plugin / plugin.GRPCPlugin for Counter.
type CounterPlugin struct {
	plugin.Plugin
	Impl Counter
}

// PluginMap is what both sides register under "counter".
func PluginMap(impl Counter) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{"counter": &CounterPlugin{Impl: impl}}
}

// Store is the plugin's Counter: value added to the count through AddHelper.
type Store struct {
	mu sync.Mutex
	m  map[string]int64
}

func NewStore() *Store { return &Store{m: map[string]int64{}} }

func (s *Store) Put(key string, value int64, a AddHelper) error {
	s.mu.Lock()
	cur := s.m[key]
	s.mu.Unlock()
	r, err := a.Sum(cur, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.m[key] = r
	s.mu.Unlock()
	return nil
}

func (s *Store) Get(key string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

// Adder is the host's AddHelper.
type Adder struct{}

func (Adder) Sum(a, b int64) (int64, error) { return a + b, nil }

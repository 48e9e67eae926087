package kvpeer

import (
	"net/rpc"

	plugin "github.com/hashicorp/go-plugin"
)

// The net/rpc service is "Plugin" (go-plugin's dispenser names it so) with
// gob structs that mirror kv.proto field for field (issue 4's contract).

// GetRequest is the argument of Plugin.Get.
type GetRequest struct {
	Key string
}

// GetResponse is the reply of Plugin.Get.
type GetResponse struct {
	Value []byte
}

// PutRequest is the argument of Plugin.Put.
type PutRequest struct {
	Key   string
	Value []byte
}

// Empty is the reply of Plugin.Put.
type Empty struct{}

// Server returns the net/rpc receiver for the plugin side.
func (p *KVPlugin) Server(*plugin.MuxBroker) (interface{}, error) {
	return &RPCServer{impl: p.Impl}, nil
}

// Client returns a KV that calls the plugin over net/rpc.
func (p *KVPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return &rpcClient{c: c}, nil
}

// RPCServer is exported because net/rpc only serves exported types.
type RPCServer struct {
	impl KV
}

// Get is Plugin.Get.
func (s *RPCServer) Get(req GetRequest, resp *GetResponse) error {
	v, err := s.impl.Get(req.Key)
	resp.Value = v
	return err
}

// Put is Plugin.Put.
func (s *RPCServer) Put(req PutRequest, _ *Empty) error {
	return s.impl.Put(req.Key, req.Value)
}

type rpcClient struct {
	c *rpc.Client
}

func (c *rpcClient) Get(key string) ([]byte, error) {
	var resp GetResponse
	err := c.c.Call("Plugin.Get", GetRequest{Key: key}, &resp)
	return resp.Value, err
}

func (c *rpcClient) Put(key string, value []byte) error {
	return c.c.Call("Plugin.Put", PutRequest{Key: key, Value: value}, &Empty{})
}

package counterpeer

import (
	"net/rpc"

	plugin "github.com/hashicorp/go-plugin"
)

// The gob structs; the C side's descriptors (generated from examples/counter/counter.proto)
// use these field names.
type PutArgs struct {
	AddServer uint32
	Key       string
	Value     int64
}
type GetArgs struct{ Key string }
type GetReply struct{ Value int64 }
type Empty struct{}
type SumArgs struct{ A, B int64 }
type SumReply struct{ R int64 }

func (p *CounterPlugin) Server(b *plugin.MuxBroker) (interface{}, error) {
	return &rpcCounterServer{impl: p.Impl, broker: b}, nil
}

func (p *CounterPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return &rpcCounterClient{client: c, broker: b}, nil
}

type rpcCounterClient struct {
	client *rpc.Client
	broker *plugin.MuxBroker
}

func (c *rpcCounterClient) Put(key string, value int64, a AddHelper) error {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, &rpcAddHelperServer{impl: a})
	return c.client.Call("Plugin.Put", &PutArgs{AddServer: id, Key: key, Value: value}, &Empty{})
}

func (c *rpcCounterClient) Get(key string) (int64, error) {
	var r GetReply
	err := c.client.Call("Plugin.Get", &GetArgs{Key: key}, &r)
	return r.Value, err
}

type rpcCounterServer struct {
	impl   Counter
	broker *plugin.MuxBroker
}

func (s *rpcCounterServer) Put(args *PutArgs, _ *Empty) error {
	conn, err := s.broker.Dial(args.AddServer)
	if err != nil {
		return err
	}
	client := rpc.NewClient(conn)
	defer client.Close()
	return s.impl.Put(args.Key, args.Value, &rpcAddHelperClient{client: client})
}

func (s *rpcCounterServer) Get(args *GetArgs, r *GetReply) error {
	v, err := s.impl.Get(args.Key)
	r.Value = v
	return err
}

type rpcAddHelperServer struct{ impl AddHelper }

func (s *rpcAddHelperServer) Sum(args *SumArgs, r *SumReply) error {
	v, err := s.impl.Sum(args.A, args.B)
	r.R = v
	return err
}

type rpcAddHelperClient struct{ client *rpc.Client }

func (c *rpcAddHelperClient) Sum(a, b int64) (int64, error) {
	var r SumReply
	err := c.client.Call("Plugin.Sum", &SumArgs{A: a, B: b}, &r)
	return r.R, err
}

package kvpeer

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	kvpb "kvproto"
)

// GRPCServer registers the KV service (examples/kv/kv.proto) on s.
func (p *KVPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	kvpb.RegisterKVServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a KV that calls the plugin's KV service.
func (p *KVPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &grpcClient{kv: kvpb.NewKVClient(c), conn: c}, nil
}

type grpcServer struct {
	impl KV
}

func (s *grpcServer) Get(_ context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	v, err := s.impl.Get(req.Key)
	if err != nil {
		return nil, err
	}
	return &kvpb.GetResponse{Value: v}, nil
}

func (s *grpcServer) Put(_ context.Context, req *kvpb.PutRequest) (*kvpb.Empty, error) {
	if err := s.impl.Put(req.Key, req.Value); err != nil {
		return nil, err
	}
	return &kvpb.Empty{}, nil
}

type grpcClient struct {
	kv   kvpb.KVClient
	conn *grpc.ClientConn
}

func (c *grpcClient) Get(key string) ([]byte, error) {
	resp, err := c.kv.Get(context.Background(), &kvpb.GetRequest{Key: key})
	if err != nil {
		return nil, err
	}
	return resp.Value, nil
}

func (c *grpcClient) Put(key string, value []byte) error {
	_, err := c.kv.Put(context.Background(), &kvpb.PutRequest{Key: key, Value: value})
	return err
}

// PutRaw sends a PutRequest encoded by hand, so key may be any bytes: Go's
// own marshaler refuses a proto3 string that is not UTF-8, and the interop
// test needs a Go host that sends one anyway (to see the C plugin refuse it
// as a Go plugin would).
func (c *grpcClient) PutRaw(key string, value []byte) error {
	var b []byte
	b = append(b, 0x0a)
	b = appendVarint(b, uint64(len(key)))
	b = append(b, key...)
	if len(value) > 0 {
		b = append(b, 0x12)
		b = appendVarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	var reply rawMessage
	req := rawMessage(b)
	return c.conn.Invoke(context.Background(), "/proto.KV/Put", &req, &reply, grpc.ForceCodec(rawCodec{}))
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// rawMessage and rawCodec pass bytes through gRPC untouched.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *v.(*rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*v.(*rawMessage) = append((*v.(*rawMessage))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

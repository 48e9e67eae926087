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
	return &grpcClient{kv: kvpb.NewKVClient(c)}, nil
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
	kv kvpb.KVClient
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

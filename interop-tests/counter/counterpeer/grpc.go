package counterpeer

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "counterproto"
)

func (p *CounterPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterCounterServer(s, &grpcCounterServer{impl: p.Impl, broker: b})
	return nil
}

func (p *CounterPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &grpcCounterClient{client: pb.NewCounterClient(c), broker: b}, nil
}

// Host side: Put serves AddHelper on a fresh broker id and passes the id.
type grpcCounterClient struct {
	client pb.CounterClient
	broker *plugin.GRPCBroker
}

func (c *grpcCounterClient) Put(key string, value int64, a AddHelper) error {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterAddHelperServer(s, &grpcAddHelperServer{impl: a})
		return s
	})
	_, err := c.client.Put(context.Background(), &pb.PutRequest{AddServer: id, Key: key, Value: value})
	return err
}

func (c *grpcCounterClient) Get(key string) (int64, error) {
	r, err := c.client.Get(context.Background(), &pb.GetRequest{Key: key})
	if err != nil {
		return 0, err
	}
	return r.Value, nil
}

// Plugin side: Put dials the host's AddHelper.
type grpcCounterServer struct {
	impl   Counter
	broker *plugin.GRPCBroker
}

func (s *grpcCounterServer) Put(_ context.Context, req *pb.PutRequest) (*pb.Empty, error) {
	conn, err := s.broker.Dial(req.AddServer)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	a := &grpcAddHelperClient{client: pb.NewAddHelperClient(conn)}
	return &pb.Empty{}, s.impl.Put(req.Key, req.Value, a)
}

func (s *grpcCounterServer) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	v, err := s.impl.Get(req.Key)
	return &pb.GetResponse{Value: v}, err
}

type grpcAddHelperServer struct{ impl AddHelper }

func (s *grpcAddHelperServer) Sum(_ context.Context, req *pb.SumRequest) (*pb.SumResponse, error) {
	r, err := s.impl.Sum(req.A, req.B)
	return &pb.SumResponse{R: r}, err
}

type grpcAddHelperClient struct{ client pb.AddHelperClient }

func (c *grpcAddHelperClient) Sum(a, b int64) (int64, error) {
	r, err := c.client.Sum(context.Background(), &pb.SumRequest{A: a, B: b})
	if err != nil {
		return 0, err
	}
	return r.R, nil
}

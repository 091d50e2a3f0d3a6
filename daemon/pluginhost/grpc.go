package pluginhost

import "google.golang.org/grpc"

// DialOptions tune the core→plugin connection for body streaming: larger
// flow-control windows let a 64 KiB-chunked download run at disk speed
// instead of waiting a round trip per window, and fixed windows turn off
// gRPC's bandwidth probing, a ping per burst of small messages. Benchmarks
// that stand in for the core dial with them too.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(4 << 20),
		grpc.WithSharedWriteBuffer(true),
	}
}

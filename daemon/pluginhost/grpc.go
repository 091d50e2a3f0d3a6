package pluginhost

import "google.golang.org/grpc"

// dialOptions tune the core→plugin connection for body streaming: larger
// flow-control windows let a 64 KiB-chunked download run at disk speed
// instead of waiting a round trip per window.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(4 << 20),
		grpc.WithSharedWriteBuffer(true),
	}
}

package pluginhost

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/socketd/socketd/internal/rawio"
)

// DialOptions tune the core→plugin connection for body streaming: larger
// flow-control windows let a 64 KiB-chunked download run at disk speed
// instead of waiting a round trip per window, and fixed windows turn off
// gRPC's bandwidth probing, a ping per burst of small messages.
// Benchmarks that stand in for the core dial with them too.
//
// Their credentials replace go-plugin's, which are insecure too: the core
// turns on neither AutoMTLS nor a TLSConfig, and a plugin's connection is
// a unix socket in a directory of its own. They read and write the
// connection with raw system calls, which do not set the scheduler's
// monitor thread polling or hand the processor to another thread
// (internal/rawio).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(4 << 20),
		grpc.WithSharedWriteBuffer(true),
		grpc.WithTransportCredentials(rawio.Credentials(insecure.NewCredentials())),
	}
}

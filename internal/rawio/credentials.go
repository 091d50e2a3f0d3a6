package rawio

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
)

// Credentials are c, with each connection they hand gRPC wrapped (Wrap):
// the core and the SDK use them around insecure credentials for a
// plugin's connection, a unix socket in a directory of the core's own.
func Credentials(c credentials.TransportCredentials) credentials.TransportCredentials {
	return wrapped{c}
}

type wrapped struct {
	credentials.TransportCredentials
}

func (w wrapped) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		return nil, nil, err
	}
	return Wrap(conn), info, nil
}

func (w wrapped) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		return nil, nil, err
	}
	return Wrap(conn), info, nil
}

func (w wrapped) Clone() credentials.TransportCredentials {
	return wrapped{w.TransportCredentials.Clone()}
}

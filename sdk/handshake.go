package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/socketd/socketd/sdk/internal/frames"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// ProtocolVersion is the version of the plugin protocol this SDK speaks. It
// travels in go-plugin's handshake; the core refuses a plugin whose version
// it does not know, naming both versions.
const ProtocolVersion = 1

// PluginKey is the name under which the socketd service is dispensed.
const PluginKey = "socketd"

// Handshake is shared by the core and every plugin. The magic cookie keeps a
// plugin binary from doing anything when run by hand.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "SOCKETD_PLUGIN",
	MagicCookieValue: "b7f3c1e2-socketd-plugin-protocol",
}

// MaxMessageBytes is the gRPC receive limit on the plugin side. Bodies
// travel in ChunkSize frames, so this only bounds headers and configs; it is
// raised above gRPC's 4 MiB default so large configs pass.
const MaxMessageBytes = 64 << 20

// ChunkSize is the largest body chunk in one frame, each way.
const ChunkSize = frames.ChunkSize

// grpcPlugin is the go-plugin glue: on the plugin side it registers the
// server; on the core side it hands back the generated client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterServer(s, p.impl)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginpb.NewPluginClient(c), nil
}

// HostPlugins is the plugin set the core passes to go-plugin's
// ClientConfig.VersionedPlugins. Dispensing PluginKey yields a
// pluginpb.PluginClient.
func HostPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginKey: &grpcPlugin{}},
	}
}

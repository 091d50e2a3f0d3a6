package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// server adapts a Plugin to the generated gRPC service.
type server struct {
	pluginpb.UnimplementedPluginServer
	impl     Plugin
	http     http.Handler
	stream   StreamHandler
	datagram DatagramHandler
}

func newServer(p Plugin) *server {
	s := &server{impl: p}
	s.http, _ = p.(http.Handler)
	s.stream, _ = p.(StreamHandler)
	s.datagram, _ = p.(DatagramHandler)
	return s
}

func (s *server) Describe(context.Context, *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	d := s.impl.Describe()
	resp := &pluginpb.DescribeResponse{
		Name:           d.Name,
		Version:        d.Version,
		PluginSchema:   schemaToProto(d.PluginSchema),
		RouteSchema:    schemaToProto(d.RouteSchema),
		ListenerSchema: schemaToProto(d.ListenerSchema),
	}
	if s.http != nil {
		resp.Protocols = append(resp.Protocols, pluginpb.Protocol_PROTOCOL_HTTP)
	}
	if s.stream != nil {
		resp.Protocols = append(resp.Protocols, pluginpb.Protocol_PROTOCOL_STREAM)
	}
	if s.datagram != nil {
		resp.Protocols = append(resp.Protocols, pluginpb.Protocol_PROTOCOL_DATAGRAM)
	}
	return resp, nil
}

func schemaToProto(s Schema) *pluginpb.Schema {
	out := &pluginpb.Schema{}
	for _, a := range s {
		out.Attributes = append(out.Attributes, &pluginpb.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, Description: a.Description,
		})
	}
	return out
}

func (s *server) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	cfg := &Config{Plugin: RawConfig(req.GetPluginConfig())}
	for _, r := range req.GetRoutes() {
		cfg.Routes = append(cfg.Routes, RouteConfig{ID: r.GetId(), Config: RawConfig(r.GetConfig())})
	}
	for _, l := range req.GetListeners() {
		proto := "tcp"
		if l.GetProtocol() == pluginpb.Protocol_PROTOCOL_DATAGRAM {
			proto = "udp"
		}
		cfg.Listeners = append(cfg.Listeners, ListenerConfig{Name: l.GetName(), Protocol: proto, Config: RawConfig(l.GetConfig())})
	}
	diags := s.impl.Configure(ctx, cfg)
	resp := &pluginpb.ConfigureResponse{}
	for _, d := range diags {
		sev := pluginpb.Severity_SEVERITY_ERROR
		if d.Severity == Warning {
			sev = pluginpb.Severity_SEVERITY_WARNING
		}
		resp.Diagnostics = append(resp.Diagnostics, &pluginpb.Diagnostic{
			Severity: sev, Summary: d.Summary, Detail: d.Detail,
			Route: d.Route, Listener: d.Listener, Path: d.Path,
		})
	}
	return resp, nil
}

func (s *server) ServeHTTP(stream pluginpb.Plugin_ServeHTTPServer) error {
	if s.http == nil {
		return status.Error(codes.Unimplemented, "this plugin does not serve HTTP")
	}
	return serveHTTPStream(s.http, stream)
}

func (s *server) ServeStream(stream pluginpb.Plugin_ServeStreamServer) error {
	if s.stream == nil {
		return status.Error(codes.Unimplemented, "this plugin does not serve tcp streams")
	}
	return serveStream(s.stream, stream)
}

func (s *server) ServeDatagram(ctx context.Context, d *pluginpb.Datagram) (*pluginpb.DatagramReply, error) {
	if s.datagram == nil {
		return nil, status.Error(codes.Unimplemented, "this plugin does not serve datagrams")
	}
	out, err := s.datagram.ServeDatagram(ctx, &Datagram{
		Listener: d.GetListener(), RemoteAddr: d.GetRemoteAddr(), Data: d.GetData(),
	})
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &pluginpb.DatagramReply{Data: out}, nil
}

// MustJSON marshals v for a test's Config; it panics on error.
func MustJSON(v any) RawConfig {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sdk.MustJSON: %v", err))
	}
	return b
}

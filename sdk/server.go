package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// RegisterServer registers p as the socketd plugin service on s. Serve does
// this inside go-plugin's server, and sdktest on an in-process one; a
// plugin's main calls Serve, not this.
func RegisterServer(s grpc.ServiceRegistrar, p Plugin) {
	pluginpb.RegisterPluginServer(s, newServer(p))
}

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

// recovered turns a panic in plugin code into a logged error, so one bad
// call cannot end the process and every connection it serves.
func recovered(what string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	slog.Error("panic "+what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*err = status.Errorf(codes.Internal, "plugin panicked %s: %v", what, p)
}

func (s *server) Describe(context.Context, *pluginpb.DescribeRequest) (_ *pluginpb.DescribeResponse, err error) {
	defer recovered("describing itself", &err)
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
		resp.HttpExchange = true
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
		pa := &pluginpb.Attribute{Name: a.Name, Type: a.Type, Required: a.Required, Description: a.Description}
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				slog.Error("attribute default cannot be marshalled to JSON; ignored", "attribute", a.Name, "error", err)
			} else {
				pa.DefaultJson = string(b)
			}
		}
		out.Attributes = append(out.Attributes, pa)
	}
	return out
}

// listenerProtocols maps the wire's protocols to ListenerConfig.Protocol.
var listenerProtocols = map[pluginpb.Protocol]string{
	pluginpb.Protocol_PROTOCOL_STREAM:   "tcp",
	pluginpb.Protocol_PROTOCOL_DATAGRAM: "udp",
	pluginpb.Protocol_PROTOCOL_HTTP:     "http",
}

func (s *server) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	resp := &pluginpb.ConfigureResponse{}
	for _, d := range s.configure(ctx, req) {
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

// configure calls the plugin's Configure. A panic there refuses the config
// like any other invalid one, with the reason, since a plugin that failed
// half-way through cannot be trusted to serve it.
func (s *server) configure(ctx context.Context, req *pluginpb.ConfigureRequest) (diags Diagnostics) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("panic while configuring", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			diags = Diagnostics{{
				Severity: Error,
				Summary:  "The plugin failed while reading its configuration",
				Detail:   fmt.Sprintf("It panicked: %v. This is a bug in the plugin; report it to its author.", p),
			}}
		}
	}()
	d := s.impl.Describe()
	cfg := &Config{Plugin: withDefaults(req.GetPluginConfig(), d.PluginSchema), CheckOnly: req.GetCheckOnly()}
	for _, r := range req.GetRoutes() {
		cfg.Routes = append(cfg.Routes, RouteConfig{ID: r.GetId(), Config: withDefaults(r.GetConfig(), d.RouteSchema)})
	}
	for _, l := range req.GetListeners() {
		cfg.Listeners = append(cfg.Listeners, ListenerConfig{
			Name: l.GetName(), Protocol: listenerProtocols[l.GetProtocol()], Config: withDefaults(l.GetConfig(), d.ListenerSchema),
		})
	}
	return s.impl.Configure(ctx, cfg)
}

func (s *server) ServeHTTP(stream pluginpb.Plugin_ServeHTTPServer) error {
	if s.http == nil {
		return status.Error(codes.Unimplemented, "this plugin does not serve HTTP")
	}
	return serveHTTPStream(s.http, stream)
}

func (s *server) Exchange(stream pluginpb.Plugin_ExchangeServer) error {
	if s.http == nil {
		return status.Error(codes.Unimplemented, "this plugin does not serve HTTP")
	}
	return serveExchange(s.http, stream)
}

func (s *server) ServeStream(stream pluginpb.Plugin_ServeStreamServer) (err error) {
	if s.stream == nil {
		return status.Error(codes.Unimplemented, "this plugin does not serve tcp streams")
	}
	defer recovered("serving a tcp connection", &err)
	return serveStream(s.stream, stream)
}

func (s *server) ServeDatagram(ctx context.Context, d *pluginpb.Datagram) (_ *pluginpb.DatagramReply, err error) {
	if s.datagram == nil {
		return nil, status.Error(codes.Unimplemented, "this plugin does not serve datagrams")
	}
	defer recovered("serving a datagram", &err)
	out, err := s.datagram.ServeDatagram(ctx, &Datagram{
		Listener: d.GetListener(), RemoteAddr: d.GetRemoteAddr(), Data: d.GetData(),
	})
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &pluginpb.DatagramReply{Data: out}, nil
}

// MustJSON marshals v into a RawConfig, for tests that build a Config by
// hand; it panics on error.
func MustJSON(v any) RawConfig {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sdk.MustJSON: %v", err))
	}
	return b
}

package httpfront

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"github.com/socketd/socketd/daemon/pluginhost"
	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/exchange"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

type tinyPlugin struct{}

func (tinyPlugin) Describe() sdk.Description { return sdk.Description{Name: "tiny", Version: "0"} }

func (tinyPlugin) Configure(context.Context, *sdk.Config) sdk.Diagnostics { return nil }

func (tinyPlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "Mon, 23 Nov 2026 23:07:14 +0000 (UTC)\n")
}

// BenchmarkExchangeHop measures one small request through the Exchange
// stream the core uses for it, both ends in this process over a unix
// socket: the core's start, the SDK's worker running the handler, the
// one-frame answer back. Compare BenchmarkHop in sdk/sdktest, the same
// request as a ServeHTTP call of its own.
//
//	go test -run '^$' -bench ExchangeHop -benchmem ./daemon/httpfront/
func BenchmarkExchangeHop(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(sdk.ServerOptions()...)
	sdk.RegisterServer(srv, tinyPlugin{})
	go srv.Serve(ln)
	defer srv.Stop()
	opts := pluginhost.DialOptions()
	conn, err := grpc.NewClient("unix://"+sock, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	x, err := exchange.For(pluginpb.NewPluginClient(conn))
	if err != nil {
		b.Fatal(err)
	}
	req := &pluginpb.HTTPRequestFrame{End: true, Head: &pluginpb.HTTPRequest{
		Method: "GET", Target: "/time", Path: "/time", Proto: "HTTP/1.1", Route: "GET /time",
		Headers: []*pluginpb.Header{{Name: "Accept", Values: []string{"text/plain"}}},
	}}
	b.ReportAllocs()
	for b.Loop() {
		call, err := x.Start(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		f, err := call.Recv()
		if err != nil || f.GetHead().GetStatus() != 200 || !f.GetEnd() {
			b.Fatalf("%v %v", err, f)
		}
		call.Close()
	}
}

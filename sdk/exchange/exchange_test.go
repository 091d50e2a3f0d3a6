package exchange

import (
	"net/http"
	"testing"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// TestCopyHeadersOwnsItsValues: the header set from an answer keeps its
// values when the frame is received into again, and leaves out hop-by-hop
// headers.
func TestCopyHeadersOwnsItsValues(t *testing.T) {
	values := []string{"no-store", "a", "b", "close"}
	src := []*pluginpb.Header{
		{Name: "cache-control", Values: values[0:1:1]},
		{Name: "X-Two", Values: values[1:3:3]},
		{Name: "Connection", Values: values[3:4:4]},
	}
	dst := http.Header{}
	CopyHeaders(dst, src)
	copy(values, []string{"next", "next", "next", "next"})
	want := http.Header{"Cache-Control": {"no-store"}, "X-Two": {"a", "b"}}
	if len(dst) != len(want) || dst.Get("Cache-Control") != "no-store" || len(dst["X-Two"]) != 2 || dst["X-Two"][1] != "b" {
		t.Fatalf("got %v, want %v", dst, want)
	}
	dst.Add("Cache-Control", "private") // an append must not run into the next header's values
	if dst["X-Two"][0] != "a" {
		t.Fatalf("adding to one header changed another: %v", dst)
	}
}

package sdktest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/socketd/socketd/sdk"
	"github.com/socketd/socketd/sdk/sdktest"
)

// streamer is tiny (hop_bench_test.go), but sends a first chunk and then
// waits for its call to be cancelled.
type streamer struct{ tiny }

func (streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "first")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// A streamed body's Close ends a Read waiting for the next frame, may be
// called again, and leaves the Exchange call, which goes on to the next
// request, clean (run with -race: the Read and the Close race).
func TestStreamedBodyCloseEndsAReadAndMayRepeat(t *testing.T) {
	h := sdktest.New(t, streamer{})
	h.MustConfigure(&sdk.Config{Routes: []sdk.RouteConfig{{ID: "GET /s"}}})
	for i := range 3 {
		resp, err := h.RoundTrip(httptest.NewRequest("GET", "/s", nil))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
			t.Fatalf("request %d: first chunk %q, %v", i, first, err)
		}
		read := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(make([]byte, 10))
			read <- err
		}()
		resp.Body.Close()
		if err := <-read; err == nil {
			t.Fatalf("request %d: a Read ended by Close returned no error", i)
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Fatalf("request %d: a Read after Close returned no error", i)
		}
	}
}

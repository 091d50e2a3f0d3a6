package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) })
}

func serve(h http.Handler, target string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	return rec.Code, rec.Body.String()
}

func TestSwapRoutesNewRequests(t *testing.T) {
	var r Router
	h := r.Handler("web")
	if code, _ := serve(h, "/"); code != http.StatusServiceUnavailable {
		t.Fatalf("before any table: %d, want 503", code)
	}
	t1, err := NewTable([]string{"web"}, []Route{{Pattern: "GET /a", Handler: text("one")}})
	if err != nil {
		t.Fatal(err)
	}
	if old := r.Swap(t1); old != nil {
		t.Fatalf("first Swap returned %v", old)
	}
	if _, body := serve(h, "/a"); body != "one" {
		t.Fatalf("table 1: %q", body)
	}
	t2, _ := NewTable([]string{"web"}, []Route{{Pattern: "GET /b", Handler: text("two")}})
	if old := r.Swap(t2); old != t1 {
		t.Fatal("Swap did not return the replaced table")
	}
	if code, _ := serve(h, "/a"); code != http.StatusNotFound {
		t.Fatalf("removed route: %d", code)
	}
	if _, body := serve(h, "/b"); body != "two" {
		t.Fatalf("added route: %q", body)
	}
	if err := t1.Drain(context.Background()); err != nil {
		t.Fatalf("idle retired table: %v", err)
	}
}

// TestDrainWaitsForRequestsOnTheOldTable holds a request on a table,
// swaps, and checks Drain returns only once that request is done, while
// the current table never drains.
func TestDrainWaitsForRequestsOnTheOldTable(t *testing.T) {
	var r Router
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(entered)
		<-release
	})
	t1, _ := NewTable([]string{"web"}, []Route{{Pattern: "/", Handler: slow}})
	r.Swap(t1)
	var wg sync.WaitGroup
	wg.Go(func() { serve(r.Handler("web"), "/") })
	<-entered
	t2, _ := NewTable([]string{"web"}, []Route{{Pattern: "/", Handler: text("new")}})
	r.Swap(t2)
	if _, body := serve(r.Handler("web"), "/"); body != "new" {
		t.Fatalf("new table: %q", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := t1.Drain(ctx); err == nil {
		t.Fatal("Drain returned with a request in flight")
	}
	if n := t1.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d, want 1", n)
	}
	close(release)
	wg.Wait()
	if err := t1.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := t2.Drain(ctx2); err == nil {
		t.Fatal("the current table drained")
	}
}

// TestSwapUnderLoad swaps tables while requests run: every request is
// answered by one table or the other, and every retired table drains.
func TestSwapUnderLoad(t *testing.T) {
	var r Router
	first, _ := NewTable([]string{"web"}, []Route{{Pattern: "/", Handler: text("x")}})
	r.Swap(first)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			h := r.Handler("web")
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, body := serve(h, "/"); code != 200 || body != "x" {
					t.Errorf("got %d %q", code, body)
					return
				}
			}
		})
	}
	var retired []*Table
	for range 200 {
		next, _ := NewTable([]string{"web"}, []Route{{Pattern: "/", Handler: text("x")}})
		retired = append(retired, r.Swap(next))
	}
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, old := range retired {
		if err := old.Drain(ctx); err != nil {
			t.Fatalf("a retired table did not drain: %d in flight", old.InFlight())
		}
	}
}

func TestNewTableRejectsUnknownListener(t *testing.T) {
	if _, err := NewTable([]string{"web"}, []Route{{Pattern: "/", Listeners: []string{"nope"}, Handler: text("")}}); err == nil {
		t.Fatal("want an error for an unknown listener")
	}
	if _, err := NewTable([]string{"web"}, []Route{{Pattern: "/", Handler: text("")}, {Pattern: "/", Handler: text("")}}); err == nil {
		t.Fatal("want an error for a duplicate pattern")
	}
}

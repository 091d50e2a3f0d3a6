package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer records every write the Writer makes.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func TestEveryLineArrivesWholeAndInOrder(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(w, "writer=%d line=%d\n", g, i)
			}
		}()
	}
	wg.Wait()
	w.Close()

	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer=%d line=%d", &g, &i); err != nil {
			t.Fatalf("torn line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	t.Logf("%d lines in %d writes", len(got), out.writes)
}

func TestWritesAfterCloseGoStraightThrough(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out)
	w.Write([]byte("before\n"))
	w.Close()
	w.Write([]byte("after\n"))
	if got := out.buf.String(); got != "before\nafter\n" {
		t.Fatalf("got %q", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestALineIsWrittenWithoutMore checks that a lone line reaches the output
// on its own (after flushDelay), with no further writes and no Close.
func TestALineIsWrittenWithoutMore(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out)
	defer w.Close()
	w.Write([]byte("alone\n"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		out.mu.Lock()
		got := out.buf.String()
		out.mu.Unlock()
		if got == "alone\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the output holds %q", got)
		}
	}
}

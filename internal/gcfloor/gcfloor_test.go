package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 16 << 20, 100},
		{1 << 20, 16 << 20, 1500}, // collects at 16 MB
		{4 << 20, 16 << 20, 300},  // 4 MB live: again at 16
		{8 << 20, 16 << 20, 100},  // twice the live heap is the floor
		{64 << 20, 16 << 20, 100}, // a large heap: Go's own pacing
		{100, 16 << 20, 10000},    // bounded
	} {
		if got := percentFor(c.live, c.floor); got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// After collections with a small live heap, GOGC is raised so the next
// one starts at the floor.
func TestKeepRaisesGOGCForASmallHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	tn := keep(1 << 40)
	defer func() {
		tn.stopped.Store(true)
		debug.SetGCPercent(old)
	}()
	for tn.tuned.Load() < 2 {
		runtime.GC()
		runtime.Gosched()
	}
	if p := debug.SetGCPercent(100); p != 10000 {
		t.Fatalf("GOGC %d after collections of a small heap with a 1 TB floor, want 10000", p)
	}
}

// Package gcfloor lets a process's heap grow to a floor before the
// collector runs.
//
// Go starts a collection when the heap has grown by GOGC percent (100)
// over what the last one left live, and at 4 MB at least. A plugin keeps
// little live (1-4 MB) but allocates a few KB a request, so under load it
// collected every few tens of milliseconds, and each cycle's fixed costs
// (stacks, globals, assists, write barriers) came to about a sixth of its
// CPU: on /time a plugin with GOGC=400 spent 17% less CPU a request (6
// alternating pairs) and socketd answered more. GOGC=400 would also
// multiply a large live heap by five, though. A floor raises only small
// heaps: after each collection the percentage is set so that the next
// starts at the floor, or at twice the live heap once that is larger, as
// Go would.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Keep holds the heap goal at floor bytes or more from now on. It does
// nothing when GOGC is set in the environment: whoever set it chose.
func Keep(floor uint64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	keep(floor)
}

type tuner struct {
	floor   uint64
	percent int
	sample  []metrics.Sample
	stopped atomic.Bool
	tuned   atomic.Int64 // collections seen, for tests
}

func keep(floor uint64) *tuner {
	t := &tuner{floor: floor, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return t
}

// arm asks to hear of the next collection: a cleanup runs once the
// collector finds its object unreachable, which a fresh one is at once.
func (t *tuner) arm() {
	sentinel := &struct{ _ *byte }{} // with a pointer: never a tiny allocation
	runtime.AddCleanup(sentinel, func(t *tuner) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	}, t)
}

func (t *tuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := percentFor(t.sample[0].Value.Uint64(), t.floor); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	t.tuned.Add(1)
}

// percentFor is the GOGC under which a heap with live bytes live next
// collects at floor, and never less than Go's default of 100.
func percentFor(live, floor uint64) int {
	if live == 0 || live*2 >= floor {
		return 100
	}
	return int(min(floor*100/live-100, 10000))
}

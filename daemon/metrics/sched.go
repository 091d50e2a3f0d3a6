package metrics

import (
	"runtime/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// schedLatencies exports how long goroutines waited between becoming
// runnable and running (the runtime's /sched/latencies:seconds) as
// go_sched_latencies_seconds. Under load it tells a latency tail of waiting
// for a CPU from a tail of work (bench/README.md, "The tail is the shape
// of the waiting"). The Go collector can export it too, but in buckets a
// factor of 11 apart (0.9 ms, then 10.5 ms), which cannot tell a 1 ms tail
// from a 5 ms one; these are a factor of 2 apart across that range.
type schedLatencies struct{}

const schedLatenciesMetric = "/sched/latencies:seconds"

var (
	schedLatenciesDesc = prometheus.NewDesc("go_sched_latencies_seconds",
		"How long goroutines waited to run after becoming runnable (sampled by the runtime). The sum is a lower bound: each wait counts as its bucket's lower edge.",
		nil, nil)
	// schedBuckets are the upper bounds, from 16 µs to 131 ms.
	schedBuckets = func() []float64 {
		b := make([]float64, 14)
		for i := range b {
			b[i] = 16e-6 * float64(int(1)<<i)
		}
		return b
	}()
)

func (schedLatencies) Describe(ch chan<- *prometheus.Desc) { ch <- schedLatenciesDesc }

func (schedLatencies) Collect(ch chan<- prometheus.Metric) {
	s := []metrics.Sample{{Name: schedLatenciesMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return // a runtime without it
	}
	count, sum, cumulative := rebucket(s[0].Value.Float64Histogram(), schedBuckets)
	ch <- prometheus.MustNewConstHistogram(schedLatenciesDesc, count, sum, cumulative)
}

// rebucket folds the runtime's histogram into cumulative counts at upper
// bounds. A runtime bucket [lo, hi) is counted under the first bound at
// or above hi, so a bound never counts a wait longer than itself; one
// reaching past the last bound counts only in the total.
func rebucket(h *metrics.Float64Histogram, bounds []float64) (count uint64, sum float64, cumulative map[float64]uint64) {
	perBound := make([]uint64, len(bounds))
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		count += n
		if lo > 0 {
			sum += lo * float64(n)
		}
		for j, b := range bounds {
			if hi <= b {
				perBound[j] += n
				break
			}
		}
	}
	cumulative = make(map[float64]uint64, len(bounds))
	var running uint64
	for j, b := range bounds {
		running += perBound[j]
		cumulative[b] = running
	}
	return count, sum, cumulative
}

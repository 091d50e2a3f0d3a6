package main

import (
	"fmt"
	"strings"
)

// goal is one of the performance goals socketd is held to, judged on one
// run's figures.
type goal struct {
	Goal  string `json:"goal"`
	Value string `json:"value"`
	Met   bool   `json:"met"`
}

// bigFileMB is the size of the large file (big.bin) the 10 MB case
// serves; serving it must not grow socketd's RSS by as much (the file
// streams, it is not held).
const bigFileMB = 10

// judge checks this run's figures against the goals, in the order the
// performance issue states them.
func judge(results []result, f daemonFigures) []goal {
	find := func(c string) *result {
		for i := range results {
			if results[i].Case == c && results[i].Server == "socketd" {
				return &results[i]
			}
		}
		return nil
	}
	page, jpeg, big, dyn := find("page /"), find("jpeg /test.jpg"), find("10 MB file"), find("dynamic /time")
	var goals []goal
	ratio := func(name string, r *result, least float64) {
		if r != nil {
			goals = append(goals, goal{fmt.Sprintf("%s ≥ %.1f× nginx", name, least), fmt.Sprintf("%.3f", r.RatioToNginx), r.RatioToNginx >= least})
		}
	}
	ratio("GET /", page, 0.9)
	ratio("GET /test.jpg", jpeg, 0.9)
	ratio("/time (nginx → Go)", dyn, 1.0)
	var worst *result
	var p99s []string
	p99ok := true
	for _, r := range []*result{page, jpeg, dyn} {
		if r == nil {
			continue
		}
		if worst == nil || r.RatioToPython < worst.RatioToPython {
			worst = r
		}
		p99s = append(p99s, fmt.Sprintf("%s %.1f", r.Case, r.P99ms))
		p99ok = p99ok && r.P99ms <= 5
	}
	if worst != nil {
		goals = append(goals, goal{"every route ≥ 20× Python", fmt.Sprintf("lowest %.1f (%s)", worst.RatioToPython, worst.Case), worst.RatioToPython >= 20})
		goals = append(goals, goal{"p99 ≤ 5 ms at 64 connections", strings.Join(p99s, ", ") + " ms", p99ok})
	}
	ratio("10 MB file", big, 0.9)
	goals = append(goals,
		goal{"RSS flat while serving the 10 MB file", fmt.Sprintf("%.1f MB idle, %.1f MB serving", f.RSSIdleMB, f.RSSDuringBigMB), f.RSSDuringBigMB-f.RSSIdleMB < bigFileMB},
		goal{"start-up with 3 plugins ≤ 100 ms", fmt.Sprintf("%.1f ms", f.StartupMedianMS), f.StartupMedianMS <= 100},
	)
	if f.IdleConns > 0 {
		goals = append(goals, goal{fmt.Sprintf("RSS ≤ 40 MB with %d idle connections", f.IdleConns), fmt.Sprintf("%.1f MB", f.RSSWithIdleConnMB), f.RSSWithIdleConnMB <= 40})
	}
	return goals
}

func printGoals(goals []goal) {
	fmt.Println("\ngoals, this run:")
	for _, g := range goals {
		mark := "no "
		if g.Met {
			mark = "yes"
		}
		fmt.Printf("  %s  %-42s %s\n", mark, g.Goal, g.Value)
	}
}

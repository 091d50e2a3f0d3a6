// Command bench runs socketd side by side with nginx, Caddy, nginx
// proxying to a Go backend, and Python's http.server on the same files,
// drives each with wrk (interleaved: A B C, A B C, ...) and prints the
// median req/s, p50/p99 latency and the ratio to nginx. It also measures
// socketd's start-up time with its plugins, its memory while serving a
// 10 MB file, and its memory with 10,000 idle keep-alive connections.
//
//	make bench                      # or: go run ./bench
//	go run ./bench -duration 3s -rounds 2
//
// Loopback only; everything it starts is stopped when it ends. Results go
// to bench/results/latest.json as well.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

var (
	duration    = flag.Duration("duration", 5*time.Second, "wrk duration per run")
	rounds      = flag.Int("rounds", 3, "interleaved rounds; the median is reported")
	connections = flag.Int("c", 64, "wrk connections")
	out         = flag.String("out", "bench/results/latest.json", "machine-readable results")
	binDir      = flag.String("bin", "bin", "folder with socketd and its plugins (make build)")
	backendAddr = flag.String("backend", "", "internal: serve the Go /time backend on this address")
	idleConns   = flag.Int("idle", 10000, "idle keep-alive connections for the memory check (0 skips)")
	warmup      = flag.Duration("warmup", time.Second, "unmeasured wrk run before each measured one (0 skips)")
)

// fatalf stops every server started so far and removes the run's folder
// (unless BENCH_KEEP), then exits: no process and no file is left behind
// on any path out.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	stopAll()
	removeRunDir()
	os.Exit(1)
}

// runDir is the run's temporary folder, once made.
var runDir string

// removeRunDir removes the run's folder unless BENCH_KEEP asks to keep it.
func removeRunDir() {
	if runDir != "" && os.Getenv("BENCH_KEEP") == "" {
		os.RemoveAll(runDir)
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ensureTools installs what is missing from Debian's packages when running
// as root; otherwise it says what to install.
func ensureTools() {
	need := map[string]string{"wrk": "wrk", "nginx": "nginx-light", "caddy": "caddy", "python3": "python3"}
	var missing []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Geteuid() != 0 {
		fatalf("missing tools; install them: apt-get install -y %s", strings.Join(missing, " "))
	}
	fmt.Fprintf(os.Stderr, "bench: installing %s\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fatalf("apt-get %v: %v", args, err)
		}
	}
}

// target is one (case, server) pair.
type target struct {
	Case, Server, URL string
	Conns             int
	// procs are the processes whose CPU the case costs (with their
	// children: socketd's plugins, nginx's workers).
	procs []*server
}

type sample struct {
	ReqPerSec, BytesPerSec float64
	P50, P99               time.Duration
	Errors                 int
	// CPUPerReq is the servers' CPU time (user + system) per request.
	CPUPerReq time.Duration
	// ClientCPUPerReq is wrk's: on loopback the kernel does part of a
	// server's sending in whichever process receives (acknowledgements,
	// queued data), so a server can look cheap by leaving work to wrk.
	ClientCPUPerReq time.Duration
}

type result struct {
	Case, Server  string
	ReqPerSec     float64 `json:"req_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50ms, P99ms  float64
	RatioToNginx  float64 `json:"ratio_to_nginx,omitempty"`
	RatioToPython float64 `json:"ratio_to_python,omitempty"`
	CPUusPerReq   float64 `json:"cpu_us_per_req"`
	ClientCPUus   float64 `json:"client_cpu_us_per_req"`
	Errors        int
	Samples       []float64 `json:"req_per_sec_samples"`
}

func main() {
	flag.Parse()
	if *backendAddr != "" {
		serveBackend(*backendAddr)
		return
	}
	if runtime.GOOS != "linux" {
		fatalf("linux only (wrk, /proc)")
	}
	ensureTools()
	raiseFileLimit()
	bin, err := filepath.Abs(*binDir)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := os.Stat(filepath.Join(bin, "socketd")); err != nil {
		fatalf("no %s/socketd: run make build first", bin)
	}
	dir, err := os.MkdirTemp("", "socketd-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	runDir = dir
	// nginx's workers run as an unprivileged user and must read the files.
	os.Chmod(dir, 0o755)
	defer removeRunDir()
	prepareFiles(dir)

	backend := startBackend(dir)
	defer backend.stop()
	socketd := startSocketd(dir, filepath.Join(dir, "www"), bin)
	defer socketd.stop()
	nginx := startNginx(dir, backend.addr)
	defer nginx.stop()
	caddy := startCaddy(dir)
	defer caddy.stop()
	python := startPython(dir)
	defer python.stop()
	defer stopAll()
	ctx, stop := signalContext()
	defer stop()

	url := func(s *server, path string) string { return "http://" + s.addr + path }
	var targets []target
	for _, c := range []struct{ name, path string }{{"page /", "/"}, {"jpeg /test.jpg", "/test.jpg"}} {
		for _, s := range []*server{socketd, nginx, caddy, python} {
			targets = append(targets, target{c.name, s.name, url(s, c.path), *connections, []*server{s}})
		}
	}
	for _, s := range []*server{socketd, nginx, caddy} {
		targets = append(targets, target{"10 MB file", s.name, url(s, "/big.bin"), 8, []*server{s}})
	}
	targets = append(targets,
		target{"dynamic /time", "socketd", url(socketd, "/time"), *connections, []*server{socketd}},
		// nginx → proxy_pass → Go: both processes' CPU counts.
		target{"dynamic /time", "nginx", url(nginx, "/time"), *connections, []*server{nginx, backend}},
		target{"dynamic /time", "go-backend", url(backend, "/time"), *connections, []*server{backend}},
		target{"dynamic /time", "python", url(python, "/"), *connections, []*server{python}}, // the floor: its cheapest answer
	)
	total := time.Duration(len(targets)**rounds) * (*warmup + *duration + 300*time.Millisecond)
	fmt.Fprintf(os.Stderr, "bench: %d runs of %v (about %v), wrk -t1 -c%d\n", len(targets)**rounds, *duration, total.Round(time.Second), *connections)

	samples := make([][]sample, len(targets))
	var peakBigRSS int64
	for r := 0; r < *rounds; r++ {
		for i, t := range targets {
			if ctx.Err() != nil {
				fatalf("interrupted")
			}
			err := warm(t)
			var s sample
			if err == nil {
				s, err = runWrk(t)
			}
			if err != nil {
				fatalf("%s %s: %v", t.Case, t.Server, err)
			}
			samples[i] = append(samples[i], s)
			fmt.Fprintf(os.Stderr, "  round %d  %-15s %-10s %10.0f req/s\n", r+1, t.Case, t.Server, s.ReqPerSec)
			if t.Server == "socketd" && t.Case == "10 MB file" {
				peakBigRSS = max(peakBigRSS, rssKB(socketd.cmd.Process.Pid, "VmRSS"))
			}
		}
	}

	results := summarize(targets, samples)
	printTable(results)

	extra := measureDaemon(dir, bin, socketd, peakBigRSS)
	goals := judge(results, extra)
	printGoals(goals)
	writeJSON(*out, map[string]any{
		"goals":   goals,
		"when":    time.Now().UTC().Format(time.RFC3339),
		"machine": fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		"wrk":     fmt.Sprintf("-t1 -c%d -d%s, %d interleaved rounds, median", *connections, *duration, *rounds),
		"results": results,
		"socketd": extra,
	})
	fmt.Printf("\nresults written to %s\n", *out)
}

func summarize(targets []target, samples [][]sample) []result {
	var results []result
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	byCase := map[string]map[string]*result{}
	for i, t := range targets {
		ss := samples[i]
		var rps, bps, p50, p99, cpu, client []float64
		errs := 0
		for _, s := range ss {
			cpu = append(cpu, float64(s.CPUPerReq)/1e3)
			client = append(client, float64(s.ClientCPUPerReq)/1e3)
			rps = append(rps, s.ReqPerSec)
			bps = append(bps, s.BytesPerSec)
			p50 = append(p50, float64(s.P50)/1e6)
			p99 = append(p99, float64(s.P99)/1e6)
			errs += s.Errors
		}
		results = append(results, result{
			Case: t.Case, Server: t.Server, ReqPerSec: med(rps), MBPerSec: med(bps) / 1e6,
			P50ms: med(p50), P99ms: med(p99), CPUusPerReq: med(cpu), ClientCPUus: med(client), Errors: errs, Samples: rps,
		})
		if byCase[t.Case] == nil {
			byCase[t.Case] = map[string]*result{}
		}
	}
	for i := range results {
		byCase[results[i].Case][results[i].Server] = &results[i]
	}
	for i := range results {
		r := &results[i]
		if n := byCase[r.Case]["nginx"]; n != nil && n.ReqPerSec > 0 {
			r.RatioToNginx = r.ReqPerSec / n.ReqPerSec
		}
		if p := byCase[r.Case]["python"]; p != nil && p.ReqPerSec > 0 {
			r.RatioToPython = r.ReqPerSec / p.ReqPerSec
		}
	}
	return results
}

func printTable(results []result) {
	fmt.Printf("\n%-15s %-11s %11s %9s %8s %8s %8s %9s %11s %11s %6s\n", "case", "server", "req/s", "MB/s", "p50 ms", "p99 ms", "×nginx", "×python", "CPU µs/req", "wrk µs/req", "errors")
	last := ""
	for _, r := range results {
		if r.Case != last && last != "" {
			fmt.Println()
		}
		last = r.Case
		ratio := func(x float64) string {
			if x == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", x)
		}
		fmt.Printf("%-15s %-11s %11.0f %9.1f %8.2f %8.2f %8s %9s %11.1f %11.1f %6d\n", r.Case, r.Server, r.ReqPerSec, r.MBPerSec, r.P50ms, r.P99ms,
			ratio(r.RatioToNginx), ratio(r.RatioToPython), r.CPUusPerReq, r.ClientCPUus, r.Errors)
	}
}

func prepareFiles(dir string) {
	www := filepath.Join(dir, "www")
	os.MkdirAll(www, 0o755)
	for _, f := range []string{"index.html", "test.jpg"} {
		b, err := os.ReadFile(filepath.Join("www", f))
		if err != nil {
			fatalf("run from the repository root: %v", err)
		}
		writeFile(filepath.Join(www, f), string(b))
	}
	big := make([]byte, bigFileMB<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	writeFile(filepath.Join(www, "big.bin"), string(big))
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	reqRe      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	xferRe     = regexp.MustCompile(`Transfer/sec:\s+([\d.]+)([KMG]?B)`)
	pctRe      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	sockErrRe  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xxRe   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	totalRe    = regexp.MustCompile(`(\d+) requests in`)
	unitFactor = map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
)

// wrkDuration is d for wrk's -d, which takes whole seconds (at least 1).
func wrkDuration(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int((d+time.Second-1)/time.Second)))
}

// warm drives t for -warmup, unmeasured, so every measured run starts on a
// server that has answered this request already (caches filled, files
// settled, connections accepted) and after the previous server's tail (a
// slow server's queued requests) is over. Each server gets the same.
func warm(t target) error {
	if *warmup <= 0 {
		return nil
	}
	args := []string{"-t1", fmt.Sprintf("-c%d", t.Conns), "-d" + wrkDuration(*warmup), t.URL}
	if out, err := exec.Command("wrk", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("warm-up wrk %v: %v\n%s", args, err, out)
	}
	return nil
}

// runWrk drives one target for -duration with one wrk thread.
func runWrk(t target) (sample, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", t.Conns), "-d" + wrkDuration(*duration), "--latency", t.URL}
	var pids []int
	for _, s := range t.procs {
		pids = append(pids, s.cmd.Process.Pid)
	}
	cpu0 := treeCPU(pids)
	cmd := exec.Command("wrk", args...)
	outb, err := cmd.CombinedOutput()
	cpu := treeCPU(pids) - cpu0
	out := string(outb)
	if err != nil {
		return sample{}, fmt.Errorf("wrk %v: %v\n%s", args, err, out)
	}
	var s sample
	m := reqRe.FindStringSubmatch(out)
	if m == nil {
		return s, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	s.ReqPerSec, _ = strconv.ParseFloat(m[1], 64)
	if m := xferRe.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		s.BytesPerSec = v * unitFactor[m[2]]
	}
	for _, m := range pctRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]))
		if m[1] == "50" {
			s.P50 = d
		} else {
			s.P99 = d
		}
	}
	if m := totalRe.FindStringSubmatch(out); m != nil {
		if n, _ := strconv.ParseFloat(m[1], 64); n > 0 {
			s.CPUPerReq = time.Duration(float64(cpu) / n)
			s.ClientCPUPerReq = time.Duration(float64(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()) / n)
		}
	}
	if m := sockErrRe.FindStringSubmatch(out); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.Atoi(x)
			s.Errors += n
		}
	}
	if m := non2xxRe.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		s.Errors += n
	}
	return s, nil
}

// daemonFigures are the goals about socketd itself (issue: performance).
type daemonFigures struct {
	StartupMedianMS   float64 `json:"startup_median_ms"`
	StartupSamplesMS  []float64
	Plugins           int
	RSSIdleMB         float64 `json:"rss_idle_mb"`
	RSSDuringBigMB    float64 `json:"rss_during_10mb_mb"`
	IdleConns         int     `json:"idle_keepalive_conns"`
	RSSWithIdleConnMB float64 `json:"rss_with_idle_conns_mb"`
}

func measureDaemon(dir, bin string, running *server, peakBigKB int64) daemonFigures {
	f := daemonFigures{Plugins: 3, RSSDuringBigMB: float64(peakBigKB) / 1024}
	// Start-up: exec to the first answered request, with its plugins.
	for i := 0; i < 5; i++ {
		s := startSocketd(filepath.Join(dir, fmt.Sprintf("start%d", i)), filepath.Join(dir, "www"), bin)
		f.StartupSamplesMS = append(f.StartupSamplesMS, float64(s.ready.Microseconds())/1000)
		s.stop()
	}
	xs := append([]float64(nil), f.StartupSamplesMS...)
	sort.Float64s(xs)
	f.StartupMedianMS = xs[len(xs)/2]

	// Idle keep-alive connections: a fresh daemon, one request each, then
	// they stay open.
	s := startSocketd(filepath.Join(dir, "idle"), filepath.Join(dir, "www"), bin)
	defer s.stop()
	f.RSSIdleMB = float64(rssKB(s.cmd.Process.Pid, "VmRSS")) / 1024
	if *idleConns > 0 {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < *idleConns; i++ {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				fmt.Printf("idle connections: stopped at %d: %v\n", i, err)
				break
			}
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				c.Close()
				fmt.Printf("idle connections: stopped at %d: %v\n", i, err)
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			conns = append(conns, c)
		}
		time.Sleep(500 * time.Millisecond)
		f.IdleConns = len(conns)
		f.RSSWithIdleConnMB = float64(rssKB(s.cmd.Process.Pid, "VmRSS")) / 1024
	}
	fmt.Printf("\nsocketd start-up with %d plugins, exec to first answer: median %.1f ms (%v)\n",
		f.Plugins, f.StartupMedianMS, f.StartupSamplesMS)
	fmt.Printf("socketd RSS: idle %.1f MB, while serving the 10 MB file %.1f MB, with %d idle keep-alive connections %.1f MB\n",
		f.RSSIdleMB, f.RSSDuringBigMB, f.IdleConns, f.RSSWithIdleConnMB)
	return f
}

// treeCPU returns the CPU time (user + system) the processes pids and all
// their descendants have used, from /proc. A server's cost per request is
// what it burns, whatever else the machine runs at the time; req/s on a
// shared 2-core machine moves with the neighbours.
func treeCPU(pids []int) time.Duration {
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command may hold spaces and parentheses: fields start after
		// the last ')'. Then: state ppid ... utime(14) stime(15).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid, utime + stime}
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	var ticks int64
	for pid := range in {
		ticks += procs[pid].ticks
	}
	// /proc counts in USER_HZ, 100 per second on Linux.
	return time.Duration(ticks) * (time.Second / 100)
}

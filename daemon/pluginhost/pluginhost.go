// Package pluginhost starts plugin processes through go-plugin, keeps them
// running (restart with backoff after a crash, marked failed after a crash
// loop) and hands out their gRPC clients.
package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/socketd/socketd/daemon/fileid"
	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// Errors a caller maps to HTTP statuses (DESIGN.md, "Failure rules").
var (
	// ErrUnavailable: the plugin is restarting and did not come back within
	// the wait bound (502).
	ErrUnavailable = errors.New("plugin is restarting")
	// ErrFailed: the plugin crashed repeatedly and is not restarted until the
	// next reload (503).
	ErrFailed = errors.New("plugin failed: it crashed repeatedly and is disabled until the next reload")
	// ErrOverloaded: the plugin's concurrency limit is reached (503 with
	// Retry-After).
	ErrOverloaded = errors.New("plugin overloaded")
)

// Restart policy. A plugin that crashes crashLimit times within crashWindow
// is marked failed instead of being restarted forever (as Mattermost does);
// between restarts the wait doubles from backoffMin up to backoffMax, with
// jitter (as Nomad does).
const (
	crashLimit  = 5
	crashWindow = time.Minute
	backoffMin  = 50 * time.Millisecond
	backoffMax  = 5 * time.Second
	// restartWait bounds how long a new request waits for a restarting
	// plugin before it gets 502.
	restartWait = 2 * time.Second
	// exitPoll is how often the supervisor checks that the process lives.
	exitPoll = 50 * time.Millisecond
)

// Options describe one plugin process.
type Options struct {
	Name   string
	Binary string
	// Dir is the plugin's working directory: the config file's folder, so
	// relative paths in its config mean what they mean in config.hcl.
	Dir            string
	StartTimeout   time.Duration
	MaxConcurrency int
	// SHA256, if set, pins the binary (go-plugin SecureConfig).
	SHA256 []byte
	// OnRestart, if set, is called each time a crashed process has been
	// replaced (for metrics).
	OnRestart func()
	// Pprof asks the plugin to serve Go's profiler on a loopback port of
	// its choosing, which it logs (sdk.PprofEnv).
	Pprof bool
	// Processors, if above 0, is the process's GOMAXPROCS, in place of
	// any the daemon's environment holds.
	Processors int
}

// Pool owns the plugin processes of a daemon and the private directory
// their sockets live in.
type Pool struct {
	log     *slog.Logger
	sockDir string

	mu      sync.Mutex
	plugins []*Plugin
}

// NewPool creates the daemon-owned socket directory (0700, short path so
// unix socket names stay under the kernel's 108-byte limit). Its name
// carries the daemon's pid, so a later daemon can tell a directory left
// behind by one that was killed (removeStale) from one still in use.
func NewPool(log *slog.Logger) (*Pool, error) {
	removeStale(os.TempDir(), log)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", sockDirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("create plugin socket directory: %w", err)
	}
	return &Pool{log: log, sockDir: dir}, nil
}

// Start launches a plugin and asks it to describe itself. It is not
// supervised until Configure succeeds.
func (p *Pool) Start(ctx context.Context, o Options) (*Plugin, error) {
	// A stat, not a hash: hashing three 15-20 MB binaries took a quarter
	// of the daemon's start-up.
	binary, err := fileid.Of(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", o.Name, err)
	}
	pl := &Plugin{
		opts:    o,
		pool:    p,
		binary:  binary,
		sockDir: p.sockDir,
		log:     p.log.With("plugin", o.Name),
		sem:     make(chan struct{}, max(o.MaxConcurrency, 1)),
		stop:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
	}
	inst, err := pl.launch()
	if err != nil {
		return nil, err
	}
	desc, err := inst.rpc.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		inst.kill()
		return nil, fmt.Errorf("plugin %s: describe: %w", o.Name, err)
	}
	pl.desc = desc
	pl.cur.Store(inst)
	close(pl.ready)
	p.mu.Lock()
	p.plugins = append(p.plugins, pl)
	p.mu.Unlock()
	return pl, nil
}

func (p *Pool) remove(pl *Plugin) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plugins = slices.DeleteFunc(p.plugins, func(x *Plugin) bool { return x == pl })
}

// Close stops every plugin (in parallel, each with go-plugin's graceful
// then forced kill) and removes the socket directory.
func (p *Pool) Close() {
	p.mu.Lock()
	plugins := slices.Clone(p.plugins)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pl := range plugins {
		wg.Go(pl.Stop)
	}
	wg.Wait()
	os.RemoveAll(p.sockDir)
}

// FileSHA256 returns the sha256 of a file's content: what a plugin block's
// sha256 pins (`socketd plugins` prints it).
func FileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// Plugin is one running plugin: its description, its current process and
// the supervisor that replaces the process when it dies.
type Plugin struct {
	opts    Options
	pool    *Pool
	binary  fileid.ID // the binary's file when it was started
	sockDir string
	log     *slog.Logger
	desc    *pluginpb.DescribeResponse
	sem     chan struct{}

	cur   atomic.Pointer[instance]
	mu    sync.Mutex
	ready chan struct{} // closed once cur is set; replaced during a restart
	// suspect is the process whose connection a call found broken: out of
	// service (cur is nil) until the supervisor has looked at it.
	suspect   *instance
	failed    bool
	configure *pluginpb.ConfigureRequest
	restarts  atomic.Int64

	stopOnce sync.Once
	stop     chan struct{}
	kick     chan struct{} // asks the supervisor to look now
	wg       sync.WaitGroup
}

type instance struct {
	client *plugin.Client
	rpc    pluginpb.PluginClient
	// sockDir holds this process's socket; removed when it is killed.
	sockDir string
}

// kill stops the process (gracefully, then by force) and removes its socket
// directory, which a plugin killed by a signal could not clean up itself.
func (i *instance) kill() {
	i.client.Kill()
	os.RemoveAll(i.sockDir)
}

// Name returns the plugin's name as declared in config.
func (pl *Plugin) Name() string { return pl.opts.Name }

// Description returns what the plugin said of itself at start.
func (pl *Plugin) Description() *pluginpb.DescribeResponse { return pl.desc }

// Restarts counts how often the process was replaced after a crash.
func (pl *Plugin) Restarts() int64 { return pl.restarts.Load() }

// Options returns the options the plugin was started with.
func (pl *Plugin) Options() Options { return pl.opts }

// Binary identifies the binary's file as it was when the plugin started: a
// binary replaced or rewritten since has another fileid.ID.
func (pl *Plugin) Binary() fileid.ID { return pl.binary }

// RunsContentOf reports whether the running process executes a file with
// the same bytes as the one at path: a binary reinstalled or touched but
// not changed (make install writes every file anew) needs no new process.
func (pl *Plugin) RunsContentOf(path string) bool {
	inst := pl.cur.Load()
	if inst == nil {
		return false
	}
	rc := inst.client.ReattachConfig()
	if rc == nil || rc.Pid == 0 {
		return false
	}
	exe := executable(rc.Pid)
	return exe != "" && sameContent(exe, path)
}

// sameContent reports whether files a and b hold the same bytes.
func sameContent(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	sa, errA := fa.Stat()
	sb, errB := fb.Stat()
	if errA != nil || errB != nil || sa.Size() != sb.Size() {
		return false
	}
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(fa, ba)
		nb, errB := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if errA != nil || errB != nil {
			// Equal sizes: both end here, or a read failed.
			return (errA == io.EOF || errA == io.ErrUnexpectedEOF) && errA == errB
		}
	}
}

// State is a plugin's health as the supervisor sees it.
type State int

// The states of a plugin.
const (
	// Running: a process is up and answering.
	Running State = iota
	// Restarting: the process died and a new one is on its way.
	Restarting
	// Failed: it crashed repeatedly and stays down until the next reload.
	Failed
	// Stopped: Stop was called (a reload replaced it, or the daemon stops).
	Stopped
)

// String names the state as metrics and logs show it.
func (s State) String() string {
	return [...]string{"running", "restarting", "failed", "stopped"}[s]
}

// State returns the plugin's state now.
func (pl *Plugin) State() State {
	select {
	case <-pl.stop:
		return Stopped
	default:
	}
	if pl.cur.Load() != nil {
		return Running
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.failed {
		return Failed
	}
	return Restarting
}

// Serves reports whether the plugin declared protocol p.
func (pl *Plugin) Serves(p pluginpb.Protocol) bool {
	for _, x := range pl.desc.GetProtocols() {
		if x == p {
			return true
		}
	}
	return false
}

func (pl *Plugin) launch() (*instance, error) {
	// go-plugin tells the plugin where to put its socket only when a custom
	// runner is configured, so the core says it itself: a directory of the
	// daemon's own (0700), never the shared temporary directory.
	sockDir, err := os.MkdirTemp(pl.sockDir, "p")
	if err != nil {
		return nil, fmt.Errorf("plugin %s: socket directory: %w", pl.opts.Name, err)
	}
	cmd := exec.Command(pl.opts.Binary)
	cmd.Dir = pl.opts.Dir
	cmd.Env = []string{plugin.EnvUnixSocketDir + "=" + sockDir}
	if pl.opts.Pprof {
		cmd.Env = append(cmd.Env, sdk.PprofEnv+"=127.0.0.1:0")
	}
	// go-plugin adds the daemon's environment after ours, and a later
	// value wins; when the block sets processors, the core passes its
	// environment itself, without its GOMAXPROCS.
	skipHostEnv := pl.opts.Processors > 0
	if skipHostEnv {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOMAXPROCS=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(pl.opts.Processors))
	}
	dieWithParent(cmd)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.HostPlugins(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newSlogAdapter(pl.log),
		StartTimeout:     pl.opts.StartTimeout,
		SkipHostEnv:      skipHostEnv,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: pl.sockDir},
		GRPCDialOptions:  DialOptions(),
		// What a plugin prints to stdout or stderr directly (not through
		// its logger) still reaches the daemon's log.
		SyncStdout: &lineLogger{log: pl.log, stream: "stdout", level: slog.LevelWarn},
		SyncStderr: &lineLogger{log: pl.log, stream: "stderr", level: slog.LevelInfo},
	}
	if len(pl.opts.SHA256) > 0 {
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: pl.opts.SHA256, Hash: sha256.New()}
	}
	inst := &instance{client: plugin.NewClient(cfg), sockDir: sockDir}
	rpcClient, err := inst.client.Client()
	if err != nil {
		inst.kill()
		return nil, explainStartError(pl.opts, err)
	}
	raw, err := rpcClient.Dispense(sdk.PluginKey)
	if err != nil {
		inst.kill()
		return nil, fmt.Errorf("plugin %s: %w", pl.opts.Name, err)
	}
	rpc, ok := raw.(pluginpb.PluginClient)
	if !ok {
		inst.kill()
		return nil, fmt.Errorf("plugin %s: unexpected client type %T", pl.opts.Name, raw)
	}
	inst.rpc = rpc
	return inst, nil
}

// explainStartError turns go-plugin's start errors into sentences that say
// what to do.
func explainStartError(o Options, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("plugin %s: the binary %s does not match the sha256 pinned in config", o.Name, o.Binary)
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		// go-plugin: "incompatible API version with plugin. Plugin
		// version: 2, Client versions: [1]".
		theirs := "unknown"
		if _, rest, ok := strings.Cut(msg, "Plugin version: "); ok {
			theirs, _, _ = strings.Cut(rest, ",")
		}
		return fmt.Errorf("plugin %s (%s) speaks plugin protocol version %s, but this socketd speaks version %d: "+
			"rebuild the plugin against this socketd's sdk, or run a socketd that speaks version %s",
			o.Name, o.Binary, theirs, sdk.ProtocolVersion, theirs)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("plugin %s did not complete its handshake within %s: is %s a socketd plugin?", o.Name, o.StartTimeout, o.Binary)
	case strings.Contains(msg, "exited before we could connect") || strings.Contains(msg, "Unrecognized remote plugin message"):
		return fmt.Errorf("plugin %s (%s) exited or printed something other than a handshake: is it a socketd plugin? %w", o.Name, o.Binary, err)
	}
	return fmt.Errorf("plugin %s: start %s: %w", o.Name, o.Binary, err)
}

// Configure sends the plugin its decoded config. On success the plugin is
// supervised from then on, and the same request is replayed to every
// replacement process.
func (pl *Plugin) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) ([]*pluginpb.Diagnostic, error) {
	inst := pl.cur.Load()
	if inst == nil {
		return nil, ErrUnavailable
	}
	resp, err := inst.rpc.Configure(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: configure: %w", pl.opts.Name, err)
	}
	for _, d := range resp.GetDiagnostics() {
		if d.GetSeverity() == pluginpb.Severity_SEVERITY_ERROR {
			return resp.GetDiagnostics(), nil
		}
	}
	pl.mu.Lock()
	first := pl.configure == nil
	pl.configure = req
	pl.mu.Unlock()
	if first {
		pl.wg.Add(1)
		go pl.supervise(inst)
	}
	return resp.GetDiagnostics(), nil
}

// Client returns the gRPC client of the live process. While the plugin
// restarts it waits (bounded by restartWait and ctx) for the new one.
func (pl *Plugin) Client(ctx context.Context) (pluginpb.PluginClient, error) {
	if inst := pl.cur.Load(); inst != nil {
		return inst.rpc, nil
	}
	pl.mu.Lock()
	ready, failed := pl.ready, pl.failed
	pl.mu.Unlock()
	if failed {
		return nil, ErrFailed
	}
	t := time.NewTimer(restartWait)
	defer t.Stop()
	select {
	case <-ready:
		if inst := pl.cur.Load(); inst != nil {
			return inst.rpc, nil
		}
		return nil, ErrFailed
	case <-t.C:
		return nil, ErrUnavailable
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-pl.stop:
		return nil, ErrUnavailable
	}
}

// Unreachable reports that a call on c found the plugin's connection gone
// (the process most likely died a moment ago). c is taken out of service at
// once, so no new call is sent down a dead connection: calls wait in Client
// (bounded) for the supervisor's verdict, the same process back if it is
// alive after all, its replacement if it died.
func (pl *Plugin) Unreachable(c pluginpb.PluginClient) {
	pl.mu.Lock()
	if inst := pl.cur.Load(); inst != nil && inst.rpc == c {
		pl.cur.Store(nil)
		pl.suspect = inst
		pl.ready = make(chan struct{})
	}
	pl.mu.Unlock()
	select {
	case pl.kick <- struct{}{}:
	default:
	}
}

// Acquire takes one of the plugin's concurrency slots, or fails at once
// with ErrOverloaded: queueing would only hide the overload from clients.
func (pl *Plugin) Acquire() (release func(), err error) {
	select {
	case pl.sem <- struct{}{}:
		return func() { <-pl.sem }, nil
	default:
		return nil, ErrOverloaded
	}
}

// InFlight returns the number of calls holding a concurrency slot.
func (pl *Plugin) InFlight() int { return len(pl.sem) }

// Stop ends supervision and kills the process (gracefully first).
func (pl *Plugin) Stop() {
	pl.stopOnce.Do(func() { close(pl.stop) })
	pl.wg.Wait()
	if inst := pl.cur.Swap(nil); inst != nil {
		inst.kill()
	}
	pl.mu.Lock()
	suspect := pl.suspect
	pl.suspect = nil
	pl.mu.Unlock()
	if suspect != nil {
		suspect.kill()
	}
	if pl.pool != nil {
		pl.pool.remove(pl)
	}
}

// supervise waits for the process to die and replaces it, until Stop.
func (pl *Plugin) supervise(inst *instance) {
	defer pl.wg.Done()
	var crashes []time.Time
	backoff := backoffMin
	tick := time.NewTicker(exitPoll)
	defer tick.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case <-tick.C:
		case <-pl.kick:
		}
		pl.mu.Lock()
		suspected := pl.suspect == inst
		pl.mu.Unlock()
		if !exited(inst, suspected) {
			if suspected {
				// The connection failed but the process lives: back in
				// service, and the waiting calls go on.
				pl.mu.Lock()
				pl.suspect = nil
				pl.cur.Store(inst)
				close(pl.ready)
				pl.mu.Unlock()
			}
			continue
		}
		pl.mu.Lock()
		pl.cur.Store(nil)
		if suspected {
			pl.suspect = nil // its waiters keep waiting on the same ready
		} else {
			pl.ready = make(chan struct{})
		}
		pl.mu.Unlock()
		inst.kill() // reap, close the connection, remove the socket
		now := time.Now()
		crashes = append(crashes, now)
		for len(crashes) > 0 && now.Sub(crashes[0]) > crashWindow {
			crashes = crashes[1:]
		}
		if len(crashes) >= crashLimit {
			pl.log.Error("plugin crashed repeatedly; its routes answer 503 until the next reload",
				"crashes", len(crashes), "window", crashWindow)
			pl.mu.Lock()
			pl.failed = true
			close(pl.ready)
			pl.mu.Unlock()
			return
		}
		if len(crashes) == 1 {
			backoff = backoffMin
		}
		pl.log.Warn("plugin exited; restarting", "backoff", backoff)
		next, ok := pl.restart(backoff)
		if !ok {
			return
		}
		backoff = min(backoff*2, backoffMax)
		inst = next
	}
}

// suspectWait bounds how long the supervisor waits for a suspect process
// to be seen exited: the broken connection and the reaped process are
// noticed by different goroutines, moments apart.
const suspectWait = 200 * time.Millisecond

// exited reports whether the process has exited; for a suspect it waits a
// little for the exit to be noticed before calling the process alive.
func exited(inst *instance, suspected bool) bool {
	deadline := time.Now().Add(suspectWait)
	for !inst.client.Exited() {
		if !suspected || time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// restart starts and configures a replacement process, retrying with
// backoff; false means Stop was called meanwhile.
func (pl *Plugin) restart(backoff time.Duration) (*instance, bool) {
	for {
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-pl.stop:
			return nil, false
		case <-time.After(wait):
		}
		inst, err := pl.launch()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), pl.opts.StartTimeout)
			pl.mu.Lock()
			req := pl.configure
			pl.mu.Unlock()
			_, err = inst.rpc.Configure(ctx, req)
			cancel()
			if err != nil {
				inst.kill()
			}
		}
		if err != nil {
			pl.log.Error("plugin restart failed", "error", err)
			backoff = min(backoff*2, backoffMax)
			continue
		}
		pl.restarts.Add(1)
		if pl.opts.OnRestart != nil {
			pl.opts.OnRestart()
		}
		pl.mu.Lock()
		pl.cur.Store(inst)
		close(pl.ready)
		pl.mu.Unlock()
		pl.log.Info("plugin restarted")
		return inst, true
	}
}

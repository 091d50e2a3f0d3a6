package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/socketd/socketd/daemon/config"
	"github.com/socketd/socketd/daemon/pluginhost"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// pluginInfo is what `socketd plugins` reports of one binary.
type pluginInfo struct {
	Name      string              `json:"name"`
	Binary    string              `json:"binary"`
	SHA256    string              `json:"sha256"`
	Version   string              `json:"version,omitempty"`
	Protocols []string            `json:"protocols,omitempty"`
	Schema    map[string][]attrJS `json:"schema,omitempty"` // plugin, route, listener
	Error     string              `json:"error,omitempty"`
}

type attrJS struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Default     string `json:"default,omitempty"` // JSON text
	Description string `json:"description,omitempty"`
}

func cmdPlugins(args []string, stdout, stderr io.Writer) int {
	fs, c := newFlagSet("plugins", "List the plugins in plugin_dir (every socketd-plugin-* file): each is started,\nasked to describe itself (version, protocols, config schema) and stopped.", "warn", stderr)
	dir := fs.String("dir", "", "the folder to scan (default: the config's plugin_dir)")
	asJSON := fs.Bool("json", false, "print JSON")
	log, code := parse(fs, c, args, stderr)
	if code >= 0 {
		return code
	}
	if *dir == "" {
		cfg, diags := config.Load(c.config)
		if _, err := os.Stat(c.config); err != nil {
			cfg.WriteDiagnostics(stderr, diags)
			return 1
		}
		*dir = cfg.PluginDir // set even when the rest of the config has errors
	}
	bins, _ := filepath.Glob(filepath.Join(*dir, "socketd-plugin-*"))
	bins = slices.DeleteFunc(bins, func(p string) bool {
		fi, err := os.Stat(p)
		return err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0
	})
	if len(bins) == 0 {
		fmt.Fprintf(stderr, "socketd plugins: no socketd-plugin-* executables in %s\n", *dir)
		return 1
	}
	pool, err := pluginhost.NewPool(log)
	if err != nil {
		fmt.Fprintln(stderr, "socketd plugins:", err)
		return 1
	}
	defer pool.Close()
	infos := make([]pluginInfo, len(bins))
	var wg sync.WaitGroup
	for i, bin := range bins {
		wg.Go(func() { infos[i] = describe(pool, bin) })
	}
	wg.Wait()
	failed := slices.ContainsFunc(infos, func(p pluginInfo) bool { return p.Error != "" })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(infos)
	} else {
		printPlugins(stdout, infos)
	}
	if failed {
		return 1
	}
	return 0
}

func describe(pool *pluginhost.Pool, bin string) pluginInfo {
	name := strings.TrimPrefix(filepath.Base(bin), "socketd-plugin-")
	info := pluginInfo{Name: name, Binary: bin}
	if sum, err := pluginhost.FileSHA256(bin); err == nil {
		info.SHA256 = fmt.Sprintf("%x", sum)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pl, err := pool.Start(ctx, pluginhost.Options{Name: name, Binary: bin, Dir: filepath.Dir(bin), StartTimeout: 10 * time.Second, MaxConcurrency: 1})
	if err != nil {
		info.Error = err.Error()
		return info
	}
	defer pl.Stop()
	d := pl.Description()
	info.Version = d.GetVersion()
	for _, p := range d.GetProtocols() {
		info.Protocols = append(info.Protocols, map[pluginpb.Protocol]string{
			pluginpb.Protocol_PROTOCOL_HTTP: "http", pluginpb.Protocol_PROTOCOL_STREAM: "tcp", pluginpb.Protocol_PROTOCOL_DATAGRAM: "udp",
		}[p])
	}
	info.Schema = map[string][]attrJS{}
	for kind, s := range map[string]*pluginpb.Schema{"plugin": d.GetPluginSchema(), "route": d.GetRouteSchema(), "listener": d.GetListenerSchema()} {
		for _, a := range s.GetAttributes() {
			info.Schema[kind] = append(info.Schema[kind], attrJS{
				Name: a.GetName(), Type: a.GetType(), Required: a.GetRequired(),
				Default: a.GetDefaultJson(), Description: a.GetDescription(),
			})
		}
	}
	return info
}

// printPlugins prints one paragraph per plugin: a header line, then each
// config block it takes with its attributes.
func printPlugins(w io.Writer, infos []pluginInfo) {
	for i, p := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if p.Error != "" {
			fmt.Fprintf(w, "%s  (%s)\n  error: %s\n", p.Name, p.Binary, p.Error)
			continue
		}
		fmt.Fprintf(w, "%s %s  serves: %s  (%s)\n", p.Name, p.Version, strings.Join(p.Protocols, ", "), p.Binary)
		fmt.Fprintf(w, "  sha256 = %q\n", p.SHA256)
		for _, kind := range []string{"plugin", "route", "listener"} {
			attrs := p.Schema[kind]
			if len(attrs) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s \"...\" { config { ... } }:\n", kind)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, a := range attrs {
				typ := a.Type
				if typ == "" {
					typ = "any"
				}
				req := "optional"
				if a.Required {
					req = "required"
				} else if a.Default != "" {
					req = "default " + a.Default
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", a.Name, typ, req, a.Description)
			}
			tw.Flush()
		}
	}
}

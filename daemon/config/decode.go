package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder turns blocks into structs, collecting every diagnostic instead of
// stopping at the first, so a user fixes a whole file in one round.
type decoder struct {
	c     *Config
	diags hcl.Diagnostics
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// value evaluates a's expression and converts it to ty; it reports whether
// that worked, having added any diagnostic. Evaluating here rather than with
// gohcl keeps a failed function call from being reported twice.
func (d *decoder) value(a *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	v, diags := a.Expr.Value(d.c.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.errorf(a.Expr.Range(), "Missing value", "%s cannot be null; give it a value, or remove it where it is optional.", a.Name)
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(a.Expr.Range(), "Incorrect value type", "%s must be %s, not %s.", a.Name, typeName(ty), typeName(v.Type()))
		return cty.NilVal, false
	}
	return cv, true
}

func typeName(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "true or false"
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		return "a list"
	}
	return "an object"
}

// str decodes a string attribute; it reports whether dst was set.
func (d *decoder) str(a *hcl.Attribute, dst *string) bool {
	if a == nil {
		return false
	}
	v, ok := d.value(a, cty.String)
	if ok {
		*dst = v.AsString()
	}
	return ok
}

// duration decodes a duration written as a string ("10s"); absent leaves dst.
func (d *decoder) duration(a *hcl.Attribute, dst *time.Duration) {
	var s string
	if !d.str(a, &s) {
		return
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(a.Expr.Range(), "Invalid duration",
			`%q is not a duration. Write a number with a unit, like "500ms", "10s" or "2m".`, s)
	case v < 0:
		d.errorf(a.Expr.Range(), "Negative duration",
			`%s cannot be negative. Write a duration like "30s", or "0s" for no limit.`, a.Name)
	default:
		*dst = v
	}
}

// integer decodes a whole number that must be at least min; absent leaves dst.
func integer[T int | int64](d *decoder, a *hcl.Attribute, min int64, dst *T) {
	if a == nil {
		return
	}
	v, ok := d.value(a, cty.Number)
	if !ok {
		return
	}
	n, acc := v.AsBigFloat().Int64()
	switch {
	case !v.AsBigFloat().IsInt():
		d.errorf(a.Expr.Range(), "Not a whole number", "%s must be a whole number.", a.Name)
	case n < min:
		d.errorf(a.Expr.Range(), "Value too small", "%s must be at least %d.", a.Name, min)
	case acc != big.Exact || n > math.MaxInt:
		d.errorf(a.Expr.Range(), "Value too large", "%s must be at most %d.", a.Name, math.MaxInt)
	default:
		*dst = T(n)
	}
}

// names decodes either one string or a list of strings, with the range of
// each; a single string is the common case ("web"), a list the rare one.
func (d *decoder) names(a *hcl.Attribute) ([]string, []hcl.Range) {
	val, diags := a.Expr.Value(d.c.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return nil, nil
	}
	if val.Type() == cty.String && !val.IsNull() {
		return []string{val.AsString()}, []hcl.Range{a.Expr.Range()}
	}
	list, err := convert.Convert(val, cty.List(cty.String))
	if err != nil || list.IsNull() || !list.IsWhollyKnown() {
		d.errorf(a.Expr.Range(), "Incorrect value type",
			`%s must be a string or a list of strings, like %s.`, a.Name, map[string]string{
				"listener": `"web" or ["web", "admin"]`, "allow": `["127.0.0.0/8", "::1"]`, "deny": `["10.0.0.0/8"]`,
			}[a.Name])
		return nil, nil
	}
	var out []string
	var rngs []hcl.Range
	tuple, _ := a.Expr.(*hclsyntax.TupleConsExpr)
	for i, v := range list.AsValueSlice() {
		if v.IsNull() {
			d.errorf(a.Expr.Range(), "Missing value", "%s cannot contain null.", a.Name)
			return nil, nil
		}
		rng := a.Expr.Range()
		if tuple != nil && i < len(tuple.Exprs) {
			rng = tuple.Exprs[i].Range()
		}
		out = append(out, v.AsString())
		rngs = append(rngs, rng)
	}
	return out, rngs
}

// configBlock returns the body of the one config { } block, nil if none.
func (d *decoder) configBlock(blocks hcl.Blocks) hcl.Body {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		d.errorf(b.DefRange, "Duplicate config block",
			"A config block is also defined at %s. Merge them into one config block.", pos(blocks[0].DefRange))
	}
	return blocks[0].Body
}

func (d *decoder) name(b *hcl.Block, kind, example string) bool {
	if nameRE.MatchString(b.Labels[0]) {
		return true
	}
	d.errorf(b.LabelRanges[0], "Invalid "+kind+" name",
		`%q cannot be a %s name. Use letters, digits, "-" and "_", like %q.`, b.Labels[0], kind, example)
	return false
}

// listenerAttrs maps each listener attribute to the protocols it applies to.
var listenerAttrs = map[string]string{
	"protocol": "http tcp udp", "address": "http tcp udp",
	"allow": "http tcp udp", "deny": "http tcp udp",
	"plugin":              "tcp udp",
	"read_header_timeout": "http", "read_timeout": "http", "write_timeout": "http",
	"max_header_bytes": "http", "max_uri_bytes": "http", "fast_lane": "http",
	"idle_timeout":    "http tcp",
	"max_connections": "tcp", "max_connections_per_source": "tcp",
	"max_reply_bytes": "udp",
}

var listenerSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "config"}}}
	for name := range listenerAttrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: name, Required: name == "protocol" || name == "address"})
	}
	// Map order is random; a fixed order keeps diagnostics and suggestions stable.
	slices.SortFunc(s.Attributes, func(a, b hcl.AttributeSchema) int { return strings.Compare(a.Name, b.Name) })
	return s
}()

func (d *decoder) listener(b *hcl.Block) *Listener {
	content, diags := b.Body.Content(listenerSchema)
	d.diags = append(d.diags, diags...)
	if !d.name(b, "listener", "web") {
		return nil
	}
	l := &Listener{
		Name: b.Labels[0], DeclRange: b.DefRange, NameRange: b.LabelRanges[0],
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute, WriteTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10, MaxURIBytes: 8 << 10, FastLane: true,
		MaxConnections: 1024, StreamIdleTimeout: 5 * time.Minute, MaxDatagramReply: 1232,
	}
	attrs := content.Attributes
	if a := attrs["protocol"]; d.str(a, &l.Protocol) && !strings.Contains(" http tcp udp ", " "+l.Protocol+" ") {
		d.errorf(a.Expr.Range(), "Unknown protocol", `socketd serves "http", "tcp" and "udp", not %q.%s`,
			l.Protocol, didYouMean(l.Protocol, []string{"http", "tcp", "udp"}))
		l.Protocol = ""
	}
	if a := attrs["address"]; d.str(a, &l.Address) {
		l.addrRange = a.Expr.Range()
		if err := checkAddress(l.Address); err != nil {
			d.errorf(a.Expr.Range(), "Invalid address",
				`%q is not a host:port address: %v. Write it like "127.0.0.1:8000", ":8000" (every interface) or "[::1]:8000".`,
				l.Address, err)
			l.Address = ""
		}
	}
	for name, a := range attrs {
		if l.Protocol == "" || strings.Contains(listenerAttrs[name], l.Protocol) {
			continue
		}
		if name == "plugin" {
			d.errorf(a.NameRange, "Unexpected plugin",
				"An http listener sends each request to the plugin of the route that matches it. Remove plugin here and write route blocks instead.")
			continue
		}
		d.errorf(a.NameRange, "Argument does not apply to "+l.Protocol,
			"%s applies only to %s listeners. Remove it from this %s listener.",
			name, strings.ReplaceAll(listenerAttrs[name], " ", " and "), l.Protocol)
	}
	if l.Protocol == "http" {
		for _, cb := range content.Blocks {
			d.errorf(cb.DefRange, "Unexpected config block",
				"An http listener has no plugin to configure; each route's plugin gets its own config. Move this block into a route or plugin block.")
		}
	} else {
		l.Config = d.configBlock(content.Blocks)
		if a := attrs["plugin"]; d.str(a, &l.Plugin) {
			l.PluginRange = a.Expr.Range()
		} else if a == nil && l.Protocol != "" {
			d.errorf(b.DefRange, "Missing plugin",
				`A %s listener hands each %s to a plugin. Add plugin = "NAME", naming a plugin block.`,
				l.Protocol, map[string]string{"tcp": "connection", "udp": "datagram"}[l.Protocol])
		}
	}
	d.duration(attrs["read_header_timeout"], &l.ReadHeaderTimeout)
	d.duration(attrs["read_timeout"], &l.ReadTimeout)
	d.duration(attrs["write_timeout"], &l.WriteTimeout)
	if a := attrs["idle_timeout"]; a != nil {
		idle := time.Duration(-1)
		if d.duration(a, &idle); idle >= 0 {
			l.IdleTimeout, l.StreamIdleTimeout = idle, idle
		}
	}
	integer(d, attrs["max_header_bytes"], 1, &l.MaxHeaderBytes)
	integer(d, attrs["max_uri_bytes"], 1, &l.MaxURIBytes)
	if a := attrs["fast_lane"]; a != nil {
		if v, ok := d.value(a, cty.Bool); ok {
			l.FastLane = v.True()
		}
	}
	integer(d, attrs["max_connections"], 1, &l.MaxConnections)
	integer(d, attrs["max_connections_per_source"], 0, &l.MaxPerSource)
	integer(d, attrs["max_reply_bytes"], 1, &l.MaxDatagramReply)
	l.Allow = d.prefixes(attrs["allow"])
	l.Deny = d.prefixes(attrs["deny"])
	return l
}

func checkAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			return errors.New(ae.Err) // without the address, which the message already shows
		}
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func (d *decoder) prefixes(a *hcl.Attribute) []netip.Prefix {
	if a == nil {
		return nil
	}
	names, rngs := d.names(a)
	var out []netip.Prefix
	for i, s := range names {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if addr, aerr := netip.ParseAddr(s); aerr == nil { // a bare address is a /32 or /128
				p, err = addr.Prefix(addr.BitLen())
			}
		}
		if err != nil {
			d.errorf(rngs[i], "Invalid address range",
				`%q is not an address range. Write CIDR notation like "127.0.0.0/8" or "::1/128", or a single address.`, s)
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

var adminSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "address"}, {Name: "pprof"}}}

func (d *decoder) admin(b *hcl.Block) *Admin {
	content, diags := b.Body.Content(adminSchema)
	d.diags = append(d.diags, diags...)
	a := &Admin{Address: DefaultAdminAddress, DeclRange: b.DefRange, addrRange: b.DefRange}
	if attr := content.Attributes["address"]; d.str(attr, &a.Address) {
		a.addrRange = attr.Expr.Range()
		if err := checkAddress(a.Address); err != nil {
			d.errorf(attr.Expr.Range(), "Invalid address",
				`%q is not a host:port address: %v. Write it like "127.0.0.1:9180"; keep it on loopback unless a firewall guards it.`,
				a.Address, err)
			a.Address = ""
		}
	}
	if attr := content.Attributes["pprof"]; attr != nil {
		if v, ok := d.value(attr, cty.Bool); ok {
			a.Pprof = v.True()
		}
	}
	return a
}

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "max_concurrency"}, {Name: "processors"}, {Name: "sha256"}, {Name: "start_timeout"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "config"}},
}

func (d *decoder) plugin(b *hcl.Block, dir string, dirOK bool) *Plugin {
	content, diags := b.Body.Content(pluginSchema)
	d.diags = append(d.diags, diags...)
	if !d.name(b, "plugin", "static") {
		return nil
	}
	p := &Plugin{
		Name: b.Labels[0], DeclRange: b.DefRange, NameRange: b.LabelRanges[0],
		Binary:         filepath.Join(dir, "socketd-plugin-"+b.Labels[0]),
		Config:         d.configBlock(content.Blocks),
		MaxConcurrency: defaultMaxConcurrency, StartTimeout: defaultStartTimeout,
	}
	integer(d, content.Attributes["max_concurrency"], 1, &p.MaxConcurrency)
	integer(d, content.Attributes["processors"], 1, &p.Processors)
	d.duration(content.Attributes["start_timeout"], &p.StartTimeout)
	if a := content.Attributes["sha256"]; d.str(a, &p.SHA256) {
		p.SHA256 = strings.ToLower(p.SHA256)
		if _, err := hex.DecodeString(p.SHA256); err != nil || len(p.SHA256) != 64 {
			d.errorf(a.Expr.Range(), "Invalid sha256",
				"sha256 must be 64 hexadecimal digits, as printed by `sha256sum socketd-plugin-%s`.", p.Name)
		}
	}
	if dirOK && d.checkBinary(p, dir) && len(p.SHA256) == 64 {
		d.checkSHA256(p, content.Attributes["sha256"])
	}
	return p
}

// checkSHA256 compares the binary with its pin now, so a mismatch is
// reported at the sha256 attribute, not as a failed start. (go-plugin checks
// again when it starts the binary.)
func (d *decoder) checkSHA256(p *Plugin, a *hcl.Attribute) {
	f, err := os.Open(p.Binary)
	if err != nil {
		return // checkBinary has had its say; the start will report the rest
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		d.errorf(a.Expr.Range(), "Plugin binary does not match sha256",
			"%s has sha256 %s, but this block pins %s. If the new binary is the one you trust, set sha256 to its sum (sha256sum %s); otherwise put the pinned binary back.",
			d.c.display(p.Binary), got, p.SHA256, filepath.Base(p.Binary))
	}
}

// checkBinary reports a missing plugin binary now, at the plugin block,
// rather than as a failed start later with no position. It reports whether
// the binary is there.
func (d *decoder) checkBinary(p *Plugin, dir string) bool {
	fi, err := os.Stat(p.Binary)
	switch {
	default:
		return true
	case err != nil:
		d.errorf(p.DeclRange, "Plugin binary not found",
			"socketd looked for %s in plugin_dir (%s) and found nothing there. Build or copy the plugin into that folder, or set plugin_dir to the folder that holds it.",
			filepath.Base(p.Binary), d.c.display(dir))
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		d.errorf(p.DeclRange, "Plugin binary not executable",
			"%s is not an executable file. Make it executable (chmod +x), or point plugin_dir at the right folder.", d.c.display(p.Binary))
	}
	return false
}

var routeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listener"}, {Name: "max_body_bytes"}, {Name: "plugin", Required: true}, {Name: "timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "config"}},
}

func (d *decoder) route(b *hcl.Block) *Route {
	content, diags := b.Body.Content(routeSchema)
	d.diags = append(d.diags, diags...)
	r := &Route{
		ID: b.Labels[0], DeclRange: b.DefRange, LabelRange: b.LabelRanges[0],
		Timeout: defaultRouteTimeout, MaxBodyBytes: defaultMaxBodyBytes,
		Config: d.configBlock(content.Blocks),
	}
	if a := content.Attributes["plugin"]; d.str(a, &r.Plugin) {
		r.PluginRange = a.Expr.Range()
	}
	if a := content.Attributes["listener"]; a != nil {
		r.Listeners, r.listenerRanges = d.names(a)
	}
	d.duration(content.Attributes["timeout"], &r.Timeout)
	integer(d, content.Attributes["max_body_bytes"], 0, &r.MaxBodyBytes)
	return r
}

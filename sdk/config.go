package sdk

import (
	"encoding/json"
	"fmt"
)

// Description names a plugin and declares the configuration it accepts. The
// core decodes each config block against the matching schema, so a typo in
// config.hcl is reported with its line and column before the plugin sees it.
type Description struct {
	Name    string
	Version string
	// PluginSchema describes the plugin "NAME" { config { ... } } block.
	PluginSchema Schema
	// RouteSchema describes a route's config { ... } block.
	RouteSchema Schema
	// ListenerSchema describes a tcp/udp listener's config { ... } block.
	ListenerSchema Schema
}

// Schema lists the attributes a config block may hold.
type Schema []Attribute

// Attribute is one attribute of a config block.
type Attribute struct {
	Name string
	// Type is an HCL type constraint: "string", "number", "bool",
	// "list(string)", "map(number)", "any", ... Empty means "any".
	Type     string
	Required bool
	// Description is one sentence shown by `socketd plugins`.
	Description string
}

// Config is everything the core decoded for this plugin. Each block arrives
// as JSON; Decode it into a struct with json tags.
type Config struct {
	Plugin    RawConfig
	Routes    []RouteConfig
	Listeners []ListenerConfig
}

// RawConfig is one config block as a JSON object (empty when absent).
type RawConfig []byte

// Decode unmarshals the block into v. An absent block leaves v unchanged, so
// v's prior values act as defaults.
func (c RawConfig) Decode(v any) error {
	if len(c) == 0 || string(c) == "null" {
		return nil
	}
	if err := json.Unmarshal(c, v); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// RouteConfig is the config block of one route using the plugin.
type RouteConfig struct {
	// ID is the route as written in config.hcl, e.g. "GET /guestbook"; each
	// request names it (see RouteID).
	ID     string
	Config RawConfig
}

// ListenerConfig is the config block of one tcp or udp listener using the
// plugin.
type ListenerConfig struct {
	Name string
	// Protocol is "tcp" or "udp".
	Protocol string
	Config   RawConfig
}

// Severity tells whether a Diagnostic makes the configuration invalid.
type Severity int

const (
	// Error makes the configuration invalid: socketd will not start with it
	// and a reload keeps the running config.
	Error Severity = iota
	// Warning is logged and otherwise ignored.
	Warning
)

// Diagnostic is one problem a plugin found in its configuration. The core
// turns it into config.hcl:LINE:COL using Route or Listener (both empty: the
// plugin block) and Path (attribute name, then map keys or list indexes).
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Route    string
	Listener string
	Path     []string
}

// Diagnostics is a list of Diagnostic.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an Error.
func (d Diagnostics) HasErrors() bool {
	for _, x := range d {
		if x.Severity == Error {
			return true
		}
	}
	return false
}

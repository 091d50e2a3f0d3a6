package sdk

import (
	"encoding/json"
	"fmt"
)

// Description names a plugin and declares the configuration it accepts. The
// core decodes each config block against the matching schema, so a typo in
// config.hcl is reported with its line and column before the plugin sees it.
type Description struct {
	// Name is the plugin's name: plugin "NAME" {} in config.hcl, and the
	// binary is socketd-plugin-NAME.
	Name string
	// Version is the plugin's own version, shown by socketd; free form,
	// semantic versioning recommended.
	Version string
	// PluginSchema describes the plugin "NAME" { config { ... } } block.
	PluginSchema Schema
	// RouteSchema describes a route's config { ... } block.
	RouteSchema Schema
	// ListenerSchema describes a tcp/udp listener's config { ... } block.
	ListenerSchema Schema
}

// Schema lists the attributes a config block may hold. An attribute not
// listed is an error the core reports at its position in config.hcl; an
// empty Schema allows no config block at all.
type Schema []Attribute

// Attribute is one attribute of a config block.
type Attribute struct {
	// Name is the attribute's name in config.hcl, and its key in the
	// block's JSON.
	Name string
	// Type is an HCL type constraint: "string", "number", "bool",
	// "list(string)", "map(number)", "object({...})", "any", ... Empty
	// means "any". The core converts the value to it (or reports a
	// positioned error), so the plugin receives exactly this type.
	Type string
	// Required makes the core refuse a block without the attribute.
	Required bool
	// Description is one sentence shown by `socketd plugins` and in the
	// core's error messages.
	Description string
	// Default, when not nil, is used when the attribute is absent (or
	// null): the SDK writes it into the block's JSON before Configure, so
	// Decode sees it, and socketd shows it beside Description. It must
	// marshal to JSON of the attribute's Type ("UTC", 50, []string{...}).
	Default any
}

// Config is everything the core decoded for this plugin: the plugin block's
// config, and that of every route and listener using the plugin. Each block
// arrives as a JSON object; Decode it into a struct with json tags.
type Config struct {
	// Plugin is the plugin block's config, decoded against PluginSchema.
	Plugin RawConfig
	// Routes lists every route that uses the plugin, in config order.
	Routes []RouteConfig
	// Listeners lists every tcp or udp listener that uses the plugin.
	Listeners []ListenerConfig
	// CheckOnly: the config is only being checked (`socketd validate`),
	// not served. Check it as fully as you can without lasting effects:
	// create no file, change no database. No request follows, and the
	// process is stopped after Configure returns.
	CheckOnly bool
}

// RawConfig is one config block as a JSON object. It holds every attribute
// of the block's schema: one absent from config.hcl arrives as JSON null
// (or as its Attribute.Default, which the SDK fills in). A plugin that
// declares no schema receives an empty object or nothing.
type RawConfig []byte

// Decode unmarshals the block into v (with encoding/json). Since absent
// attributes are null, and null leaves a Go field as it was, fields set
// before Decode act as defaults; to tell "absent" from a zero value, use a
// pointer field. An empty or null block leaves v unchanged.
func (c RawConfig) Decode(v any) error {
	if len(c) == 0 || string(c) == "null" {
		return nil
	}
	if err := json.Unmarshal(c, v); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// Decode returns the block c decoded into a new T, typically a struct whose
// json tags name the attributes of the block's schema:
//
//	type routeConfig struct {
//		Greeting string `json:"greeting"`
//	}
//	rc, err := sdk.Decode[routeConfig](route.Config)
func Decode[T any](c RawConfig) (T, error) {
	var v T
	err := c.Decode(&v)
	return v, err
}

// withDefaults returns c with the schema's defaults in place of absent or
// null attributes. A block that is not a JSON object is returned as is, for
// Decode to report.
func withDefaults(c RawConfig, s Schema) RawConfig {
	var defaults []Attribute
	for _, a := range s {
		if a.Default != nil {
			defaults = append(defaults, a)
		}
	}
	if len(defaults) == 0 {
		return c
	}
	obj := map[string]json.RawMessage{}
	if len(c) > 0 && string(c) != "null" {
		if err := json.Unmarshal(c, &obj); err != nil {
			return c
		}
	}
	for _, a := range defaults {
		if v, ok := obj[a.Name]; ok && string(v) != "null" {
			continue
		}
		b, err := json.Marshal(a.Default)
		if err != nil {
			continue // reported when Describe marshals it
		}
		obj[a.Name] = b
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return c
	}
	return out
}

// RouteConfig is the config block of one route using the plugin.
type RouteConfig struct {
	// ID is the route as written in config.hcl, e.g. "GET /guestbook"; each
	// request names it (see RouteID).
	ID string
	// Config is the route's config block, decoded against RouteSchema.
	Config RawConfig
}

// ListenerConfig is the config block of one tcp or udp listener using the
// plugin.
type ListenerConfig struct {
	// Name is the listener's name: listener "NAME" in config.hcl.
	Name string
	// Protocol is "tcp" (a StreamHandler serves it) or "udp" (a
	// DatagramHandler serves it); empty if the core did not say.
	Protocol string
	// Config is the listener's config block, decoded against
	// ListenerSchema.
	Config RawConfig
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
	// Severity is Error (the zero value) or Warning.
	Severity Severity
	// Summary is one short sentence; Detail says what to do about it.
	Summary string
	Detail  string
	// Route is the RouteConfig.ID of the block at fault, Listener the
	// ListenerConfig.Name; both empty: the plugin block.
	Route    string
	Listener string
	// Path is the attribute name, then map keys or list indexes, e.g.
	// ["params", "limit"] or ["index", "2"]; empty: the whole block.
	Path []string
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

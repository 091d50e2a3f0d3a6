package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Attribute mirrors one attribute of a plugin's declared config schema. The
// core knows nothing of plugin configs; the plugin describes them, and the
// core decodes with this so errors still point into config.hcl.
type Attribute struct {
	Name        string
	Type        string // an HCL type constraint such as "string" or "map(number)"; "" means any
	Required    bool
	Description string
}

// DecodeBlock decodes a config { } body against a plugin's schema and
// returns it as a JSON object, the form the plugin receives. An absent body
// (nil) decodes like an empty one, and a missing required attribute is then
// reported at owner, the range of the block that would hold it. Diagnostics
// name pluginName where the plugin, not the user, is at fault.
func (c *Config) DecodeBlock(body hcl.Body, owner hcl.Range, schema []Attribute, pluginName string) ([]byte, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	spec := hcldec.ObjectSpec{}
	defaults := map[string]*typeexpr.Defaults{}
	for _, a := range schema {
		ty, def, err := parseType(a.Type)
		if err == nil && !hclsyntax.ValidIdentifier(a.Name) {
			err = fmt.Errorf("%q is not a valid attribute name", a.Name)
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid plugin schema",
				Detail: fmt.Sprintf("Plugin %q declares attribute %q with an invalid type %q: %v. This is a bug in the plugin; report it to its author.",
					pluginName, a.Name, a.Type, err),
				Subject: owner.Ptr(),
			})
			continue
		}
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
		defaults[a.Name] = def
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if body == nil {
		for _, a := range schema {
			if !a.Required {
				continue
			}
			what := fmt.Sprintf("%q", a.Name)
			if a.Description != "" {
				what += " (" + strings.TrimSuffix(a.Description, ".") + ")"
			}
			detail := fmt.Sprintf("Plugin %q requires the argument %s. Add it in a config block here: config { %s = ... }.", pluginName, what, a.Name)
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing required argument", Detail: detail, Subject: owner.Ptr(),
			})
		}
		if diags.HasErrors() {
			return nil, diags
		}
		body = hcl.EmptyBody()
	}
	val, d := hcldec.Decode(body, spec, c.ctx)
	if diags = append(diags, d...); diags.HasErrors() {
		return nil, diags
	}
	if m := val.AsValueMap(); len(m) > 0 {
		for name, def := range defaults {
			if def != nil {
				m[name] = def.Apply(m[name])
			}
		}
		val = cty.ObjectVal(m)
	}
	out, err := ctyjson.Marshal(val, val.Type())
	if err != nil { // only for unknown values, which a config without variables cannot hold
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Cannot encode config", Detail: err.Error(), Subject: owner.Ptr(),
		})
	}
	return out, diags
}

// parseType parses a schema type constraint string; "" is any type.
func parseType(s string) (cty.Type, *typeexpr.Defaults, error) {
	if s == "" {
		return cty.DynamicPseudoType, nil, nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(s), "type", hcl.InitialPos)
	if !diags.HasErrors() {
		var ty cty.Type
		var def *typeexpr.Defaults
		if ty, def, diags = typeexpr.TypeConstraintWithDefaults(expr); !diags.HasErrors() {
			return ty, def, nil
		}
	}
	return cty.NilType, nil, errors.New(strings.TrimSuffix(diags[0].Detail, "."))
}

// PathRange maps an attribute path reported by a plugin (["params", "limit"],
// ["items", "2"]) inside body to the most precise source range it can find:
// the object item or list element, else the attribute, else owner.
func (c *Config) PathRange(body hcl.Body, owner hcl.Range, path []string) hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok || len(path) == 0 {
		return owner
	}
	attr := sb.Attributes[path[0]]
	if attr == nil {
		return owner
	}
	rng, expr := attr.SrcRange, attr.Expr
	for _, key := range path[1:] {
		for {
			p, ok := expr.(*hclsyntax.ParenthesesExpr)
			if !ok {
				break
			}
			expr = p.Expression
		}
		switch e := expr.(type) {
		case *hclsyntax.ObjectConsExpr:
			item := objectItem(e, key, c.ctx)
			if item == nil {
				return rng
			}
			rng, expr = hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range()), item.ValueExpr
		case *hclsyntax.TupleConsExpr:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(e.Exprs) {
				return rng
			}
			rng, expr = e.Exprs[i].Range(), e.Exprs[i]
		default:
			return rng
		}
	}
	return rng
}

func objectItem(e *hclsyntax.ObjectConsExpr, key string, ctx *hcl.EvalContext) *hclsyntax.ObjectConsItem {
	for i, item := range e.Items {
		k, diags := item.KeyExpr.Value(ctx)
		if diags.HasErrors() || !k.IsKnown() || k.IsNull() {
			continue
		}
		if k, err := convert.Convert(k, cty.String); err == nil && k.AsString() == key {
			return &e.Items[i]
		}
	}
	return nil
}

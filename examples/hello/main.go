// Command socketd-plugin-hello greets the {name} in its route; see README.md.
package main

import (
	"context"
	"fmt"
	"github.com/socketd/socketd/sdk"
	"net/http"
)

type hello struct{ Greeting string } // from plugin "hello" { config { ... } }

func (*hello) Describe() sdk.Description {
	return sdk.Description{Name: "hello", Version: "1.0.0", PluginSchema: sdk.Schema{
		{Name: "greeting", Type: "string", Default: "Hello", Description: "Said before the name."},
	}}
}

func (h *hello) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	if err := cfg.Plugin.Decode(h); err != nil {
		return sdk.Diagnostics{{Summary: "invalid hello config", Detail: err.Error()}}
	}
	return nil
}

func (h *hello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s, %s!\n", h.Greeting, r.PathValue("name"))
}

func main() { sdk.Serve(&hello{}) }

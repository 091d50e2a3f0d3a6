// Command versionkit is a plugin used only by the lifecycle tests: it
// answers every request with the version it was built as (-ldflags
// "-X main.version=..."), its configured greeting and its pid, so a test
// can tell which binary, which config and which process served a request.
// It is not installed.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/socketd/socketd/sdk"
)

var version = "dev"

type kit struct{ greeting string }

func (*kit) Describe() sdk.Description {
	return sdk.Description{
		Name:    "versionkit",
		Version: version,
		PluginSchema: sdk.Schema{
			{Name: "greeting", Type: "string", Description: "the word answered after the version"},
		},
	}
}

func (k *kit) Configure(_ context.Context, cfg *sdk.Config) sdk.Diagnostics {
	var c struct {
		Greeting *string `json:"greeting"`
	}
	if err := cfg.Plugin.Decode(&c); err != nil {
		return sdk.Diagnostics{{Summary: "bad config", Detail: err.Error()}}
	}
	k.greeting = "hello"
	if c.Greeting != nil {
		k.greeting = *c.Greeting
	}
	return nil
}

func (k *kit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s pid=%d\n", version, k.greeting, os.Getpid())
}

func main() { sdk.Serve(&kit{}) }

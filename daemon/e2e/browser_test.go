package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. CI installs it (.ci/run), so there
// a missing browser fails the test instead of skipping it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run installs it")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

// TestBrowserLoadsThePageAndPicture is the tutorial's own check, made by a
// real browser: the page renders and its picture has loaded.
func TestBrowserLoadsThePageAndPicture(t *testing.T) {
	exe := chromiumPath(t)
	d := startDaemon(t, `
plugin_dir = "{{BIN}}"
listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}
plugin "static" {
  config { root = "{{WWW}}" }
}
route "GET /" { plugin = "static" }
`, nil)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// Chromium also makes a folder of its own in TMPDIR and leaves
		// it behind; give it one the test removes.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		// The machine has no network beyond loopback: keep Chromium from
		// trying to reach its services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	fail := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v\ndaemon log:\n%s", step, err, d.Log())
		}
	}
	fail("load /", chromedp.Do(ctx, chromedp.Navigate(d.URL("/")), chromedp.WaitVisible(chromedp.CSS("img"))))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector("img").complete && document.querySelector("img").naturalWidth > 0`,
		chromedp.WithPollingTimeout(30*time.Second)))
	fail("wait for the picture", err)
	title, err := chromedp.Run(ctx, chromedp.Title())
	fail("title", err)
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	fail("text", err)
	naturalWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("img").naturalWidth`))
	fail("naturalWidth", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	fail("screenshot", err)
	if title != "WOW" {
		t.Errorf("title %q, want WOW", title)
	}
	if want := "Wow, Python Server"; !strings.Contains(heading, want) {
		t.Errorf("page text %q lacks %q", heading, want)
	}
	if naturalWidth <= 0 {
		t.Errorf("image naturalWidth %d: the picture did not load", naturalWidth)
	}
	if dir := os.Getenv("SOCKETD_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "browser.jpg"), shot, 0o644)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSDKDocs parses every code block of the plugin author's documents
// (sdk/*.md, examples/*/README.md and the sdk package's doc comment): Go
// with go/parser, JSON with encoding/json, and HCL with `socketd validate`
// beside a plugin_dir holding the real plugins, examples/hello and (when
// node is installed) the Node.js plugin. An HCL fragment (no listener) is
// validated inside a minimal config, as a reader would paste it.
func TestSDKDocs(t *testing.T) {
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "sdk", "*.md"))
	examples, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "README.md"))
	docs = append(docs, examples...)
	type block struct{ lang, src string }
	blocks := map[string][]block{}
	for _, path := range docs {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for _, m := range sdkFenced.FindAllStringSubmatch(string(src), -1) {
			blocks[rel] = append(blocks[rel], block{m[1], m[2]})
		}
	}
	for _, code := range sdkPackageDocCode(t, filepath.Join(repoRoot, "sdk", "doc.go")) {
		lang := "go"
		if strings.HasPrefix(code, "plugin ") || strings.HasPrefix(code, "route ") {
			lang = "hcl"
		}
		blocks["sdk/doc.go"] = append(blocks["sdk/doc.go"], block{lang, code})
	}

	root := sdkDocsPluginDir(t)
	counts := map[string]int{}
	for file, bs := range blocks {
		for i, b := range bs {
			counts[b.lang]++
			t.Run(fmt.Sprintf("%s#%d.%s", strings.ReplaceAll(file, "/", "_"), i, b.lang), func(t *testing.T) {
				switch b.lang {
				case "go":
					if err := sdkParseGo(b.src); err != nil {
						t.Errorf("%s block %d does not parse: %v\n%s", file, i, err, b.src)
					}
				case "json":
					if !json.Valid([]byte(b.src)) {
						t.Errorf("%s block %d is not JSON:\n%s", file, i, b.src)
					}
				case "hcl":
					sdkValidateHCL(t, root, file, i, b.src)
				}
			})
		}
	}
	for _, lang := range []string{"go", "hcl"} {
		if counts[lang] == 0 {
			t.Errorf("found no %s block in the SDK's documents", lang)
		}
	}
}

var sdkFenced = regexp.MustCompile("(?sm)^```(\\w+)\\n(.*?)^```")

// sdkPackageDocCode returns the code blocks of a package doc comment.
func sdkPackageDocCode(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var p comment.Parser
	var out []string
	for _, b := range p.Parse(f.Doc.Text()).Content {
		if c, ok := b.(*comment.Code); ok {
			out = append(out, c.Text)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no code in the package doc", path)
	}
	return out
}

// sdkParseGo accepts a whole file, declarations, or statements.
func sdkParseGo(src string) error {
	fset := token.NewFileSet()
	if strings.HasPrefix(strings.TrimSpace(src), "package ") {
		_, err := parser.ParseFile(fset, "block.go", src, parser.ParseComments)
		return err
	}
	if _, err := parser.ParseFile(fset, "block.go", "package p\n"+src, 0); err == nil {
		return nil
	}
	_, err := parser.ParseFile(fset, "block.go", "package p\nfunc _() {\n"+src+"\n}", 0)
	return err
}

// sdkDocsPluginDir returns a folder holding bin/ with every plugin the docs
// name, and www/.
func sdkDocsPluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	plugins, _ := filepath.Glob(filepath.Join(binDir, "socketd-plugin-*"))
	hello, err := buildHello()
	if err != nil {
		t.Fatalf("build examples/hello: %v", err)
	}
	plugins = append(plugins, hello)
	if _, err := exec.LookPath("node"); err == nil {
		if err := npmCI(); err != nil {
			t.Fatal(err)
		}
		plugins = append(plugins, filepath.Join(nodePluginSrc, "socketd-plugin-node"))
	}
	for _, p := range plugins {
		if err := os.Symlink(p, filepath.Join(bin, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(repoRoot, "www"), filepath.Join(dir, "www")); err != nil {
		t.Fatal(err)
	}
	return dir
}

const sdkDocsBase = `plugin_dir = "./bin"

listener "web" {
  protocol = "http"
  address  = "127.0.0.1:0"
}

`

func sdkValidateHCL(t *testing.T, dir, file string, i int, src string) {
	t.Helper()
	if strings.Contains(src, `plugin "node"`) {
		if _, err := os.Stat(filepath.Join(dir, "bin", "socketd-plugin-node")); err != nil {
			t.Skip("node is not installed; .ci/run installs it")
		}
	}
	config := src
	if !strings.Contains(src, "listener") {
		config = sdkDocsBase + src
	}
	sub := t.TempDir()
	for _, name := range []string{"bin", "www"} {
		if err := os.Symlink(filepath.Join(dir, name), filepath.Join(sub, name)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(sub, "config.hcl")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := socketd(t, "validate", "-config", path); code != 0 {
		t.Errorf("%s block %d does not validate (exit %d):\n%s%s\n--- config ---\n%s", file, i, code, out, errOut, config)
	}
}

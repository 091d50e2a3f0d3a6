package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hclBlock finds ```hcl fenced blocks in Markdown.
var hclBlock = regexp.MustCompile("(?s)```hcl\n(.*?)```")

// TestReadmeConfigsValidate runs `socketd validate` on every ```hcl block
// of the READMEs (as CoreDNS tests its plugin READMEs' Corefiles), beside a
// bin/ with the real plugins and a www/ with the tutorial's files, so a
// documented example cannot rot. The plugins are started and asked, so a
// plugin's own schema checks apply too.
func TestReadmeConfigsValidate(t *testing.T) {
	readmes, _ := filepath.Glob(filepath.Join(repoRoot, "plugins", "*", "README.md"))
	readmes = append(readmes, filepath.Join(repoRoot, "README.md"))
	more, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "README.md"))
	readmes = append(readmes, more...)
	n := 0
	for _, readme := range readmes {
		src, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, readme)
		for i, m := range hclBlock.FindAllSubmatch(src, -1) {
			block := string(m[1])
			if !strings.Contains(block, "listener") {
				continue // a fragment, not a whole config
			}
			n++
			t.Run(strings.ReplaceAll(rel, "/", "_")+"#"+strconv.Itoa(i), func(t *testing.T) {
				dir := t.TempDir()
				os.Symlink(binDir, filepath.Join(dir, "bin"))
				os.Symlink(filepath.Join(repoRoot, "www"), filepath.Join(dir, "www"))
				os.Symlink(filepath.Join(repoRoot, "data"), filepath.Join(dir, "data"))
				path := filepath.Join(dir, "config.hcl")
				if err := os.WriteFile(path, []byte(block), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, errOut, code := socketd(t, "validate", "-config", path); code != 0 {
					t.Fatalf("%s block %d does not validate (exit %d):\n%s%s\n--- block ---\n%s", rel, i, code, out, errOut, block)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("found no ```hcl config in any README")
	}
}

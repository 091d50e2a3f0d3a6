package fileid_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socketd/socketd/daemon/fileid"
)

// TestIDSeesEveryChange checks the changes a plugin binary or a served
// file goes through: none, a rewrite in place that keeps size and mtime,
// and another file renamed onto the path.
func TestIDSeesEveryChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "socketd-plugin-x")
	os.WriteFile(path, []byte("version 1"), 0o755)
	fi, _ := os.Stat(path)
	first, err := fileid.Of(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Regular || first.Size != 9 {
		t.Fatalf("first: %+v", first)
	}
	if again, _ := fileid.Of(path); again != first {
		t.Fatalf("an untouched file changed ID: %+v, then %+v", first, again)
	}

	// A timestamp tick later, the same size and the old mtime again.
	time.Sleep(20 * time.Millisecond)
	os.WriteFile(path, []byte("version 2"), 0o755)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	rewritten, _ := fileid.Of(path)
	if rewritten == first {
		t.Fatal("a rewrite in place that kept size and mtime kept the ID")
	}

	other := filepath.Join(dir, "new")
	os.WriteFile(other, []byte("version 2"), 0o755)
	os.Chtimes(other, fi.ModTime(), fi.ModTime())
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if renamed, _ := fileid.Of(path); renamed == rewritten || renamed.Inode == rewritten.Inode {
		t.Fatal("a file renamed onto the path kept the ID")
	}

	if _, err := fileid.Of(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("a missing file: %v", err)
	}
}

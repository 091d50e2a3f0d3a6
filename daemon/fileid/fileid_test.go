package fileid_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/socketd/socketd/daemon/fileid"
)

// TestIDSeesEveryChange checks the changes a plugin binary or a served
// file goes through: none, a rewrite in place that keeps size and mtime,
// and another file renamed onto the path; with Of and with OfLocal.
func TestIDSeesEveryChange(t *testing.T) {
	t.Run("Of", func(t *testing.T) { testIDSeesEveryChange(t, fileid.Of) })
	t.Run("OfLocal", func(t *testing.T) { testIDSeesEveryChange(t, fileid.OfLocal) })
}

func testIDSeesEveryChange(t *testing.T, of func(string) (fileid.ID, error)) {
	dir := t.TempDir()
	path := filepath.Join(dir, "socketd-plugin-x")
	os.WriteFile(path, []byte("version 1"), 0o755)
	fi, _ := os.Stat(path)
	first, err := of(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Regular || first.Size != 9 {
		t.Fatalf("first: %+v", first)
	}
	if again, _ := of(path); again != first {
		t.Fatalf("an untouched file changed ID: %+v, then %+v", first, again)
	}

	// A timestamp tick later, the same size and the old mtime again.
	time.Sleep(20 * time.Millisecond)
	os.WriteFile(path, []byte("version 2"), 0o755)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	rewritten, _ := of(path)
	if rewritten == first {
		t.Fatal("a rewrite in place that kept size and mtime kept the ID")
	}

	other := filepath.Join(dir, "new")
	os.WriteFile(other, []byte("version 2"), 0o755)
	os.Chtimes(other, fi.ModTime(), fi.ModTime())
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if renamed, _ := of(path); renamed == rewritten || renamed.Inode == rewritten.Inode {
		t.Fatal("a file renamed onto the path kept the ID")
	}

	if _, err := of(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestOfLocalMatchesOf checks that the raw stat reads the same ID as the
// ordinary one, and that /proc, whose files are not on a disk, is not
// taken for local.
func TestOfLocalMatchesOf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.jpg")
	os.WriteFile(path, []byte("not really a JPEG"), 0o644)
	want, err := fileid.Of(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fileid.OfLocal(path); err != nil || got != want {
		t.Fatalf("OfLocal: %+v, %v; Of: %+v", got, err, want)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc here")
	}
	defer f.Close()
	if fileid.Local(f, "/proc/self/status") {
		t.Error("a file in /proc was taken for one on a local file system")
	}
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Where every folder from / to the test's temporary one is on a disk
	// or in memory (the usual case), the file is local.
	if localPath(t, path) && !fileid.Local(g, path) {
		t.Errorf("%s, on local file systems all the way, was not taken for local", path)
	}
	// A local file reached through a folder that is not: the folder decides.
	if fileid.Local(g, "/proc/self/cwd/x") {
		t.Error("a path through /proc was taken for a local one")
	}
}

// localPath says whether every folder above path is on ext4, xfs, btrfs,
// tmpfs or overlayfs, as statfs(1) names them.
func localPath(t *testing.T, path string) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		var fs syscall.Statfs_t
		if err := syscall.Statfs(dir, &fs); err != nil {
			t.Fatal(err)
		}
		switch uint32(fs.Type) {
		case 0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630:
		default:
			return false
		}
		if filepath.Dir(dir) == dir {
			return true
		}
	}
}

package sdk_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/socketd/socketd/sdk"
)

// TestOpenFileRefusesAFIFOInThePlace swaps a resolved file for a FIFO.
// Opening a FIFO for reading waits for a writer, so an open that does not
// take care would hold the request, and its goroutine, until one comes;
// OpenFile must report the change instead.
func TestOpenFileRefusesAFIFOInThePlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(path, []byte("<p>hello</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f := sdk.FileFor(path, fi)
	fh, err := sdk.OpenFile(f)
	if err != nil {
		t.Fatalf("the resolved file: %v", err)
	}
	fh.Close()

	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		fh, err := sdk.OpenFile(f)
		if fh != nil {
			fh.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, sdk.ErrFileChanged) {
			t.Fatalf("a FIFO in the file's place: %v, want ErrFileChanged", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the open so the test ends.
		if w, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Fatal("OpenFile waited for a writer on a FIFO put in the file's place")
	}
}

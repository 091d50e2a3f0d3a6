package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// ErrFileChanged reports that the file at a path is no longer the one a
// plugin resolved (replaced, rewritten or swapped for a symlink).
var ErrFileChanged = errors.New("file changed since it was resolved")

// FileFor builds a File for path from its FileInfo (as returned by Stat on
// the opened file), with a strong ETag made of the modification time and
// size, as nginx does.
func FileFor(path string, fi fs.FileInfo) File {
	id := IdentityOf(fi)
	return File{
		Path:     path,
		Identity: id,
		ETag:     `"` + strconv.FormatInt(id.ModTimeNanos, 36) + "-" + strconv.FormatInt(id.Size, 36) + `"`,
	}
}

// IdentityOf returns the identity of the file fi describes.
func IdentityOf(fi fs.FileInfo) FileIdentity {
	id := FileIdentity{Size: fi.Size(), ModTimeNanos: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Device, id.Inode = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// OpenFile opens f.Path and checks that the opened file still has
// f.Identity, so a file swapped after the plugin resolved it is never served.
// It fails with ErrFileChanged (or the open error) otherwise.
func OpenFile(f File) (*os.File, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() || IdentityOf(fi) != f.Identity {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, ErrFileChanged)
	}
	return fh, nil
}

func modTime(id FileIdentity) time.Time { return time.Unix(0, id.ModTimeNanos) }

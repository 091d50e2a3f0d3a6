package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// File is a file on disk that the core should serve for a plugin, with the
// identity the plugin resolved. Build it with FileFor.
type File struct {
	// Path is absolute.
	Path string
	// Identity is the file's as the plugin resolved it (IdentityOf).
	Identity FileIdentity
	// ContentType may be empty: the core then sniffs it from the name and
	// content, as http.ServeContent does.
	ContentType string
	// ETag is a strong validator, quoted. Empty: none is sent.
	ETag string
	// Cacheable promises the answer depends only on the method (GET/HEAD)
	// and path, so the core may reuse it while the file is unchanged.
	Cacheable bool
}

// FileIdentity pins the exact file the plugin resolved; the core serves the
// file only if what it opens has the same identity. Build it with
// IdentityOf.
type FileIdentity struct {
	// Device and Inode name the file on its file system.
	Device, Inode uint64
	// Size is the file's length in bytes.
	Size int64
	// ModTimeNanos is the modification time in nanoseconds since the Unix
	// epoch.
	ModTimeNanos int64
}

// ErrFileChanged reports that the file at a path is no longer the one a
// plugin resolved (replaced, rewritten or swapped for a symlink).
var ErrFileChanged = errors.New("file changed since it was resolved")

// ServeFile answers r with f. Inside socketd the core serves the file itself
// (Range, If-None-Match, HEAD, sendfile) so its bytes never cross the plugin
// connection; headers set on w (Cache-Control, ...) go along. The core opens
// f.Path with the core's own permissions, so a plugin must only hand it
// files it means to publish.
//
// Outside socketd (a handler called with an httptest.ResponseRecorder) it
// serves the file with http.ServeContent, answering 404 when the file is
// gone, 403 when it cannot be read and 503 when it is no longer the file
// f.Identity names.
func ServeFile(w http.ResponseWriter, r *http.Request, f File) {
	if sw, ok := w.(*responseWriter); ok {
		sw.file = &pluginpb.FileAnswer{
			Path: f.Path,
			Identity: &pluginpb.FileIdentity{
				Device: f.Identity.Device, Inode: f.Identity.Inode,
				Size: f.Identity.Size, MtimeUnixNano: f.Identity.ModTimeNanos,
			},
			ContentType: f.ContentType,
			Etag:        f.ETag,
			Cacheable:   f.Cacheable,
		}
		sw.WriteHeader(http.StatusOK)
		return
	}
	serveFileDirect(w, r, f)
}

func serveFileDirect(w http.ResponseWriter, r *http.Request, f File) {
	fh, err := OpenFile(f)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			http.Error(w, "404 not found", http.StatusNotFound)
		case errors.Is(err, fs.ErrPermission):
			http.Error(w, "403 forbidden", http.StatusForbidden)
		case errors.Is(err, ErrFileChanged):
			w.Header().Set("Retry-After", "1")
			http.Error(w, "503 file is changing, try again", http.StatusServiceUnavailable)
		default:
			http.Error(w, "500 cannot open file", http.StatusInternalServerError)
		}
		return
	}
	defer fh.Close()
	if f.ContentType != "" {
		w.Header().Set("Content-Type", f.ContentType)
	}
	if f.ETag != "" {
		w.Header().Set("Etag", f.ETag)
	}
	http.ServeContent(w, r, f.Path, f.Identity.ModTime(), fh)
}

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
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return IdentityOfStat(st)
	}
	return FileIdentity{Size: fi.Size(), ModTimeNanos: fi.ModTime().UnixNano()}
}

// IdentityOfStat returns the identity of the file st describes.
func IdentityOfStat(st *syscall.Stat_t) FileIdentity {
	return FileIdentity{Device: uint64(st.Dev), Inode: uint64(st.Ino), Size: st.Size, ModTimeNanos: modTimeNanos(st)}
}

// OpenFile opens f.Path and checks that the opened file still has
// f.Identity, so a file swapped after the plugin resolved it is never served.
// It fails with ErrFileChanged (or the open error) otherwise. The core uses
// it to serve file answers; so does sdktest.
//
// The open does not wait: a FIFO put in the file's place would otherwise
// hold the request until some writer came (O_NONBLOCK, which regular
// files ignore). It also skips os.Open's attempt to register the file with
// the network poller, which always fails for a regular file: five system
// calls instead of eight.
func OpenFile(f File) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(f.Path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: f.Path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: f.Path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || IdentityOfStat(&st) != f.Identity {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: %w", f.Path, ErrFileChanged)
	}
	// Blocking again, so that os.NewFile leaves the poller out of it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_RDONLY); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: f.Path, Err: err}
	}
	return os.NewFile(uintptr(fd), f.Path), nil
}

// ModTime returns the modification time the identity records.
func (id FileIdentity) ModTime() time.Time { return time.Unix(0, id.ModTimeNanos) }

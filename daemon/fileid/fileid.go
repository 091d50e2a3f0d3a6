// Package fileid tells whether a path still names the same, unchanged file
// without reading it. An ID is the file's identity (device, inode, size,
// mtime) and its inode change time: every write, truncate, chmod or
// rename onto the path moves one of them, and no one can set the change
// time back, so even a rewrite in place that restores size and mtime is
// seen. One stat instead of a hash of the content.
package fileid

import (
	"os"
	"syscall"

	"github.com/socketd/socketd/sdk"
)

// ID is a file's identity and change time at one stat.
type ID struct {
	sdk.FileIdentity
	Change syscall.Timespec
	// Regular: the file is a regular file.
	Regular bool
}

// Of stats path, following symbolic links.
func Of(path string) (ID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return FromStat(&st), nil
}

// FromStat is the ID a stat describes.
func FromStat(st *syscall.Stat_t) ID {
	return ID{FileIdentity: sdk.IdentityOfStat(st), Change: changeTime(st), Regular: st.Mode&syscall.S_IFMT == syscall.S_IFREG}
}

//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package fileid

import (
	"os"
	"syscall"
)

// changeTime reads a stat's ctime, whose field name differs between Linux
// and the BSDs.
func changeTime(st *syscall.Stat_t) syscall.Timespec { return st.Ctimespec }

// OfLocal is Of: the raw stat is Linux's alone.
func OfLocal(path string) (ID, error) { return Of(path) }

// Local reports false: OfLocal is Of here.
func Local(f *os.File, path string) bool { return false }

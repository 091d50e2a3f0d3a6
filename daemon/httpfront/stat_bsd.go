//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package httpfront

import "syscall"

// changeTime and modTimeNanos read a stat's ctime and mtime, whose field
// names differ between Linux and the BSDs.
func changeTime(st *syscall.Stat_t) syscall.Timespec { return st.Ctimespec }

func modTimeNanos(st *syscall.Stat_t) int64 { return st.Mtimespec.Nano() }

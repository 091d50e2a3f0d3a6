//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package sdk

import "syscall"

// modTimeNanos reads a stat's mtime, whose field name differs between
// Linux and the BSDs.
func modTimeNanos(st *syscall.Stat_t) int64 { return st.Mtimespec.Nano() }

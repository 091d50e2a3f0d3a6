//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package fileid

import "syscall"

// changeTime reads a stat's ctime, whose field name differs between Linux
// and the BSDs.
func changeTime(st *syscall.Stat_t) syscall.Timespec { return st.Ctimespec }

//go:build linux && (386 || arm || mips || mipsle)

package fileid

import "golang.org/x/sys/unix"

// sysFstatat is the stat system call that fills a syscall.Stat_t (stat64's
// layout on 32-bit Linux), as Go's own syscall.Stat uses it here.
const (
	sysFstatat  = unix.SYS_FSTATAT64
	haveRawStat = true
)

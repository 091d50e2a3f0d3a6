//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x)

package fileid

import "golang.org/x/sys/unix"

// sysFstatat is the stat system call that fills a syscall.Stat_t, as Go's
// own syscall.Stat uses it here.
const (
	sysFstatat  = unix.SYS_NEWFSTATAT
	haveRawStat = true
)

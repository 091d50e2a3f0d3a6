//go:build linux && !(amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || 386 || arm || mips || mipsle)

package fileid

// Here Go's syscall.Stat converts from another structure (mips64) or goes
// through statx (loong64), so OfLocal is Of.
const (
	sysFstatat  = 0
	haveRawStat = false
)

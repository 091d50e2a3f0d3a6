package fileid

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// changeTime reads a stat's ctime, whose field name differs between Linux
// and the BSDs.
func changeTime(st *syscall.Stat_t) syscall.Timespec { return st.Ctim }

// atFDCWD is AT_FDCWD as a variable: the constant (-100) does not convert
// to uintptr.
var atFDCWD = unix.AT_FDCWD

// OfLocal is Of for a path on a local file system (Local), with a raw
// system call: the scheduler is not told, so the call neither wakes the
// runtime's monitor thread nor lets it hand this thread's processor to
// another; see laneIO.read in daemon/httpfront. That is safe only where a stat
// cannot wait on a network or another process: a local file system's stat
// of a cached inode takes a microsecond or two. One whose inode was
// evicted waits for a disk read, holding the processor meanwhile, as
// nginx's worker waits in its open().
func OfLocal(path string) (ID, error) {
	if !haveRawStat {
		return Of(path)
	}
	// The path, NUL-terminated, on the stack when it fits: the copy
	// syscall.BytePtrFromString makes is an allocation per hit.
	var short [256]byte
	var p *byte
	if len(path) < len(short) && strings.IndexByte(path, 0) < 0 {
		copy(short[:], path)
		p = &short[0]
	} else {
		var err error
		if p, err = syscall.BytePtrFromString(path); err != nil {
			return ID{}, &os.PathError{Op: "stat", Path: path, Err: err}
		}
	}
	var st syscall.Stat_t
	for {
		_, _, e := syscall.RawSyscall6(sysFstatat, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&st)), 0, 0, 0)
		switch e {
		case 0:
			return FromStat(&st), nil
		case syscall.EINTR:
			continue
		case syscall.ENOSYS: // a kernel that has only statx
			return Of(path)
		default:
			return ID{}, &os.PathError{Op: "stat", Path: path, Err: e}
		}
	}
}

// localFS are the file systems whose stat never waits on a network, a FUSE
// process or a remote server: those OfLocal may be used on. The keys are
// statfs's f_type read as 32 bits (it is a signed int32 on 32-bit Linux).
var localFS = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:      true, // ext2, ext3, ext4
	unix.XFS_SUPER_MAGIC:       true,
	unix.BTRFS_SUPER_MAGIC:     true,
	unix.BCACHEFS_SUPER_MAGIC:  true,
	unix.F2FS_SUPER_MAGIC:      true,
	unix.EXFAT_SUPER_MAGIC:     true,
	unix.TMPFS_MAGIC:           true,
	unix.RAMFS_MAGIC:           true,
	unix.SQUASHFS_MAGIC:        true,
	unix.OVERLAYFS_SUPER_MAGIC: true, // containers' root; its layers are local
}

// Local reports whether f, opened at path, and every folder on the way to
// it live on local file systems (localFS), so that path may be checked
// with OfLocal: a stat looks up each name of the path in its folder, and a
// folder on a network file system may ask its server. (A folder a symbolic
// link names is seen through its link; a local file system mounted inside
// a network one is not told apart from its mount point.)
func Local(f *os.File, path string) bool {
	if !haveRawStat {
		return false // OfLocal is Of: no need to look
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil || !localFS[int64(uint32(fs.Type))] {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if unix.Statfs(dir, &fs) != nil || !localFS[int64(uint32(fs.Type))] {
			return false
		}
		if up := filepath.Dir(dir); up == dir {
			return true
		}
	}
}

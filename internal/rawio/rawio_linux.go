//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Read reads into p from the non-blocking socket fd. ready is false when
// nothing has arrived (EAGAIN): the caller, a RawConn.Read callback,
// returns false to wait for the poller. Nothing read into a non-empty p
// is io.EOF.
func Read(fd uintptr, p []byte) (n int, ready bool, err error) {
	if len(p) == 0 {
		return 0, true, nil
	}
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			if r == 0 {
				return 0, true, io.EOF
			}
			return int(r), true, nil
		case syscall.EAGAIN:
			return 0, false, nil
		case syscall.EINTR:
		default:
			return 0, true, os.NewSyscallError("read", e)
		}
	}
}

// Writev writes a, then b, to the non-blocking socket fd until both are
// written or it fails, and returns what is left of each. ready is false
// when the socket is full (EAGAIN): the caller, a RawConn.Write callback,
// returns false to wait for the poller, then writes the rest.
func Writev(fd uintptr, a, b []byte) (restA, restB []byte, ready bool, err error) {
	for len(a)+len(b) > 0 {
		var iov [2]syscall.Iovec
		n := 0
		for _, p := range [2][]byte{a, b} {
			if len(p) > 0 {
				iov[n].Base = &p[0]
				iov[n].SetLen(len(p))
				n++
			}
		}
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		switch e {
		case 0:
		case syscall.EAGAIN:
			return a, b, false, nil
		case syscall.EINTR:
			continue
		default:
			return a, b, true, os.NewSyscallError("writev", e)
		}
		done := int(r)
		if k := min(done, len(a)); k > 0 {
			a, done = a[k:], done-k
		}
		b = b[done:]
	}
	return a, b, true, nil
}

// Conn is a unix or TCP connection whose Read and Write are raw system
// calls (Read, Writev). Its other methods are the connection's own.
type Conn struct {
	net.Conn
	raw syscall.RawConn

	// A call's buffer and result, for its callback, made once rather
	// than a closure a call; the locks keep concurrent calls apart.
	rmu     sync.Mutex
	rbuf    []byte
	rn      int
	rerr    error
	readFn  func(fd uintptr) bool
	wmu     sync.Mutex
	wbuf    []byte
	werr    error
	writeFn func(fd uintptr) bool
}

// Wrap returns c as a Conn if it is a *net.UnixConn or *net.TCPConn, and
// c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	switch c.(type) {
	case *net.UnixConn, *net.TCPConn:
	default:
		return c
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return c
	}
	rc := &Conn{Conn: c, raw: raw}
	rc.readFn = func(fd uintptr) bool {
		var ready bool
		rc.rn, ready, rc.rerr = Read(fd, rc.rbuf)
		return ready
	}
	rc.writeFn = func(fd uintptr) bool {
		var ready bool
		rc.wbuf, _, ready, rc.werr = Writev(fd, rc.wbuf, nil)
		return ready
	}
	return rc
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readFn)
	c.rbuf = nil
	if err != nil {
		return 0, err
	}
	return c.rn, c.rerr
}

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.werr = p, nil
	err := c.raw.Write(c.writeFn)
	n := len(p) - len(c.wbuf)
	c.wbuf = nil
	if err == nil {
		err = c.werr
	}
	return n, err
}

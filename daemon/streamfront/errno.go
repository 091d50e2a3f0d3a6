package streamfront

import "syscall"

// syscallEMFILE is "too many open files": accept backs off instead of
// giving up, as net/http does.
var syscallEMFILE = syscall.EMFILE

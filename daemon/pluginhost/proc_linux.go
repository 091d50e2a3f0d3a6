package pluginhost

import (
	"fmt"
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to SIGKILL the plugin when the daemon dies,
// even by SIGKILL, so no plugin outlives its core. The SDK's parent watch
// is the second line of defence.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// executable is the file a running process executes, as /proc names it:
// still the file it started from after its path was replaced.
func executable(pid int) string { return fmt.Sprintf("/proc/%d/exe", pid) }

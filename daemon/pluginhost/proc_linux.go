package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to SIGKILL the plugin when the daemon dies,
// even by SIGKILL, so no plugin outlives its core. The SDK's parent watch
// is the second line of defence.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

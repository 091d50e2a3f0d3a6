//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent relies on the SDK's parent watch where Pdeathsig does not
// exist.
func dieWithParent(*exec.Cmd) {}

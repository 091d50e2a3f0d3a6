//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent relies on the SDK's parent watch where Pdeathsig does not
// exist.
func dieWithParent(*exec.Cmd) {}

// executable has no portable answer here; a reload then compares the
// binary's identity only.
func executable(int) string { return "" }

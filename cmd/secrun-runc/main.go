// Command secrun-runc is a drop-in OCI runtime: it speaks runc's command
// line, has secrun's policy decide on every container and exec an engine
// starts, records the decision in the audit trail, and hands every command
// to the real runc. See docs/secrun-runc.md.
//
// This is its front: a command that starts nothing (state, kill, start,
// delete, ...) goes straight to runc; create, run and exec go to
// secrun-runc-admit beside it, which links the policy engine.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/secrun/secrun/runner/runcfront"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "secrun-runc: cannot find its own executable: %v\n", err)
		os.Exit(runcfront.ExitError)
	}
	os.Exit(runcfront.Main(os.Args[1:], runcfront.System{
		Getenv:  os.Getenv,
		Environ: os.Environ(),
		Stderr:  os.Stderr,
		Self:    self,
		Exec:    syscall.Exec,
	}))
}

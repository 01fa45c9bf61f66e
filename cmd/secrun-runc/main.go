// Command secrun-runc is a drop-in OCI runtime: it speaks runc's command
// line, has secrun's policy decide on every container and exec an engine
// starts, records the decision in the audit trail, and hands every command
// to the real runc. See docs/secrun-runc.md.
package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/secrun/secrun/runner/wrapper"
)

func main() {
	// secrun-runc must know its own path: runc is looked up beside it, and
	// a "runc" that is secrun-runc again would loop.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "secrun-runc: cannot find its own executable: %v\n", err)
		os.Exit(wrapper.ExitError)
	}
	os.Exit(wrapper.Main(context.Background(), os.Args[1:], wrapper.System{
		Getenv:  os.Getenv,
		Environ: os.Environ(),
		Stderr:  os.Stderr,
		Self:    self,
		Exec:    syscall.Exec,
	}))
}

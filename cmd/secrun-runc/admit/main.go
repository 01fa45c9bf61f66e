// Command secrun-runc-admit is the policy-enforcing half of secrun-runc:
// secrun-runc (the front, which does not link the policy engine) hands it
// every create, run and exec, with the front's own path as argv[0]. It
// decides, records and hardens as docs/secrun-runc.md says, then replaces
// itself with the real runc.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/secrun/secrun/runner/wrapper"
)

func main() {
	// Self is the front's path when the front started us (argv[0]): runc
	// and the signature helper are looked up beside it, and a "runc" that
	// is secrun-runc again would loop. Started directly, it is our own.
	self := os.Args[0]
	if !filepath.IsAbs(self) {
		var err error
		if self, err = os.Executable(); err != nil {
			fmt.Fprintf(os.Stderr, "secrun-runc: cannot find its own executable: %v\n", err)
			os.Exit(wrapper.ExitError)
		}
	}
	os.Exit(wrapper.Main(context.Background(), os.Args[1:], wrapper.System{
		Getenv:  os.Getenv,
		Environ: os.Environ(),
		Stderr:  os.Stderr,
		Self:    self,
		Exec:    syscall.Exec,
	}))
}

// Command secrun-runc-admit is the policy-enforcing half of secrun-runc:
// secrun-runc (the front, which does not link the policy engine) hands it
// every create, run and exec, with the front's own path as argv[0]. It
// decides, records and hardens as docs/secrun-runc.md says, then replaces
// itself with the real runc. `secrun-runc-admit serve` does the same for
// every call, as a resident server the front asks first.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/secrun/secrun/runner/wrapper"
)

func main() {
	// `secrun-runc-admit serve` is the resident server the front asks
	// first (docs/secrun-runc.md). Only when started as itself: the front
	// passes its own path as argv[0], and `secrun-runc serve` is an
	// unknown runc command, refused as such.
	if len(os.Args) > 1 && os.Args[1] == "serve" && startedAsItself() {
		os.Exit(wrapper.ServeMain(os.Args[2:], os.Stderr))
	}
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

// startedAsItself reports whether argv[0] names this executable (as a
// shell or systemd starts it) rather than the front that exec'd it.
func startedAsItself() bool {
	p, err := exec.LookPath(os.Args[0])
	if err != nil {
		return false
	}
	a, err := os.Stat(p)
	if err != nil {
		return false
	}
	b, err := os.Stat("/proc/self/exe")
	return err == nil && os.SameFile(a, b)
}

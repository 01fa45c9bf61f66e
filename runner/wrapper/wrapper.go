// Package wrapper is secrun-runc, the runc-compatible wrapper mode of the
// runner: an OCI runtime that Docker (--add-runtime), podman (--runtime) and
// containerd's runc shim (BinaryName) call exactly as they call runc. Before
// a container or an exec'd process starts, it reads the bundle, applies the
// hardening its config asks for, has the policy decide on the same input
// document `secrun run` builds, records the decision in the audit trail, and
// then replaces itself with the real runc (same arguments, file
// descriptors, signals and exit status). Every other command goes to runc
// untouched.
//
// The package imports neither package runner nor package verify, so that
// secrun-runc, started for every `runc state` an engine makes, does not
// initialise cosign and the registry client; signatures are checked by a
// helper program only when the config names a trust file.
package wrapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner/runcfront"
)

// Exit statuses of secrun-runc's own failures, as secrun uses them. Any
// other status is runc's.
const (
	ExitError  = runcfront.ExitError  // secrun-runc could not do its job
	ExitDenied = runcfront.ExitDenied // refused: by the policy, or because it could not decide
)

// Error is a failure with the exit status it maps to.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func deny(format string, args ...any) error {
	return &Error{Code: ExitDenied, Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error from Run to secrun-runc's exit status.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var d *policy.DeniedError
	if errors.As(err, &d) {
		return ExitDenied
	}
	return ExitError
}

// System is what secrun-runc takes from its process; tests replace parts.
type System struct {
	Getenv  func(string) string
	Environ []string
	Stderr  io.Writer
	// Self is secrun-runc's own executable.
	Self string
	// Exec replaces the process with the real runtime (syscall.Exec).
	Exec func(path string, argv, env []string) error
	Now  func() time.Time
	// Host reports the host facts for the policy input; nil is HostInfo.
	Host func() policy.HostInfo
	// Memo keeps compiled policies from one call to the next: the
	// resident server's. Nil compiles the policy on every call.
	Memo *policy.Memo
	// Actor is who the audit records name as their writer: the
	// secrun-runc call the resident server decides for. Nil is this
	// process.
	Actor *audit.Actor
	// Decider names the resident server in the records it writes (field
	// runtime.decider); "" when this process decides for itself.
	Decider string
}

// Wrapper is one secrun-runc invocation's context.
type Wrapper struct {
	System
	// Config is nil when ConfigErr is set.
	Config    *Config
	ConfigErr error
}

// Main runs secrun-runc with args (without the program name) and returns
// the exit status; on success it does not return, runc has replaced it.
func Main(ctx context.Context, args []string, sys System) int {
	return run(ctx, args, sys, true)
}

// run is Main; oneShot says that the process ends (or becomes runc) right
// after this call, so garbage collection can be turned off for it.
func run(ctx context.Context, args []string, sys System, oneShot bool) int {
	if sys.Now == nil {
		sys.Now = time.Now
	}
	if sys.Host == nil {
		sys.Host = HostInfo
	}
	w := &Wrapper{System: sys}
	inv, err := ParseArgs(args)
	if err != nil {
		w.report(nil, &Error{Code: ExitError, Err: fmt.Errorf("cannot read the runc command line: %w", err)})
		return ExitError
	}
	if oneShot && inv.Kind == Checked && !inv.Help {
		// A decision allocates ~15 MB (mostly compiling the policy) and
		// the process is replaced by runc right after: collecting garbage
		// would only cost time. The limit keeps a pathological input from
		// growing without bound.
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(512 << 20)
	}
	path := inv.ConfigPath
	if path == "" {
		path = ConfigPath(sys.Getenv)
	}
	w.Config, w.ConfigErr = LoadConfig(path)
	if err := w.Run(ctx, inv); err != nil {
		w.report(inv, err)
		return ExitCode(err)
	}
	return 0
}

// Run decides on inv and hands it to the real runtime. It returns only on
// failure (or when System.Exec returns, in tests).
func (w *Wrapper) Run(ctx context.Context, inv *Invocation) error {
	switch {
	case inv.Help || inv.Kind == PassThrough:
		return w.handOff(inv)
	case inv.Kind == Refused:
		return &Error{Code: ExitError, Err: fmt.Errorf("runc %s is not supported by secrun-runc: a restored container would start without a policy decision; recreate the container through its engine instead", inv.Command)}
	}
	if w.ConfigErr != nil {
		return deny("refusing to start %s: %w", describe(inv), w.ConfigErr)
	}
	var err error
	if inv.Exec != nil {
		err = w.admitExec(ctx, inv)
	} else {
		err = w.admitCreate(ctx, inv)
	}
	if err != nil {
		return err
	}
	return w.handOff(inv)
}

// runtime is the real runc: the configured one, or, when the config cannot
// be read and the command starts nothing, the one found beside secrun-runc
// or on PATH, so that engines can still stop and delete containers.
func (w *Wrapper) runtime() (string, error) {
	configured := ""
	if w.Config != nil {
		configured = w.Config.Runtime
	}
	return FindRuntime(configured, w.Self)
}

// handOff replaces this process with the real runtime, with the arguments
// unchanged.
func (w *Wrapper) handOff(inv *Invocation) error {
	rt, err := w.runtime()
	if err != nil {
		return &Error{Code: ExitError, Err: err}
	}
	argv := append([]string{rt}, inv.Args...)
	if err := w.Exec(rt, argv, w.Environ); err != nil {
		return &Error{Code: ExitError, Err: fmt.Errorf("executing the real runtime %s: %w", rt, err)}
	}
	return nil
}

func describe(inv *Invocation) string {
	switch {
	case inv.Create != nil:
		return "container " + inv.Create.ID
	case inv.Exec != nil:
		return "a process in container " + inv.Exec.ID
	}
	return "runc " + inv.Command
}

// report writes err to stderr and, in runc's log format, to the --log
// file, where engines look for the reason a runtime call failed.
func (w *Wrapper) report(inv *Invocation, err error) {
	line := OneLine(err)
	fmt.Fprintln(w.Stderr, line)
	if inv == nil {
		return
	}
	if lerr := runcfront.WriteRuncLog(inv.Global, line, w.Now()); lerr != nil {
		fmt.Fprintf(w.Stderr, "secrun-runc: %v\n", lerr)
	}
}

// OneLine renders an error from Run as the single line engines show: a
// denial lists every violation, separated by " | ".
func OneLine(err error) string {
	var d *policy.DeniedError
	if errors.As(err, &d) {
		var parts []string
		for i, v := range d.Violations {
			if i == maxListed {
				parts = append(parts, fmt.Sprintf("and %d more (secrun audit log show --kind policy.decision)", len(d.Violations)-maxListed))
				break
			}
			parts = append(parts, v.String())
		}
		if d.Reason != "" {
			parts = append(parts, flat(d.Reason))
		}
		if len(parts) == 0 {
			parts = append(parts, "the policy gave no reason")
		}
		name := d.Policy
		if name == "" {
			name = "policy"
		}
		return fmt.Sprintf("secrun: denied by policy %s: %s", name, strings.Join(parts, " | "))
	}
	return "secrun-runc: " + flat(err.Error())
}

// maxListed is how many violations a one-line denial names; the audit
// trail has them all.
const maxListed = 6

func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

package runcfront

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// AdmitName is the policy-enforcing half of secrun-runc, installed beside
// it. Engines call their runtime for every state, kill, start and delete;
// those start nothing and go straight to runc from the front, which does not
// link the policy engine (whose package initialisation alone costs more
// than runc's whole start-up). create, run and exec go through AdmitName.
const AdmitName = "secrun-runc-admit"

// ExitError is secrun-runc's status when it cannot do its job.
const ExitError = 125

// System is what the front needs from the process.
type System struct {
	Getenv  func(string) string
	Environ []string
	Stderr  io.Writer
	// Self is the front's own executable.
	Self string
	// Exec replaces the process (syscall.Exec).
	Exec func(path string, argv, env []string) error
	Now  func() time.Time
}

// Main runs the front with args (without the program name). A command that
// starts nothing is handed to the real runtime unchanged; every other
// command line, and one it cannot read, goes to AdmitName beside Self, with
// Self as its argv[0] so that it knows the front's path; a create, run or
// exec is first offered to the resident admission server, when one listens
// (see AdmitSocket). On success it does not return.
func Main(args []string, sys System) int {
	if sys.Now == nil {
		sys.Now = time.Now
	}
	inv, err := ParseArgs(args)
	if err == nil && (inv.Help || inv.Kind == PassThrough) {
		path := inv.ConfigPath
		if path == "" {
			path = ConfigPath(sys.Getenv)
		}
		rt, err := FindRuntime(ConfiguredRuntime(path), sys.Self)
		if err == nil {
			err = sys.Exec(rt, append([]string{rt}, inv.Args...), sys.Environ)
			if err != nil {
				err = fmt.Errorf("executing the real runtime %s: %w", rt, err)
			}
		}
		if err != nil {
			report(sys, inv, err)
			return ExitError
		}
		return 0
	}
	if err == nil && inv.Kind == Checked {
		if code, handled := admitResident(args, sys); handled {
			return code
		}
	}
	admit := filepath.Join(filepath.Dir(sys.Self), AdmitName)
	if err := sys.Exec(admit, append([]string{sys.Self}, args...), sys.Environ); err != nil {
		report(sys, inv, fmt.Errorf("refusing %s: its policy check, %s, cannot run (%w): install it beside %s (make install)", describeArgs(inv), admit, err, sys.Self))
		return ExitError
	}
	return 0
}

// ConfiguredRuntime is the runtime: key of the config at path, or "" when
// the file is absent or unreadable. Only commands that start nothing use
// it, and for those an unreadable config must not stop an engine from
// stopping or deleting a container: the full check happens on every create,
// run and exec.
func ConfiguredRuntime(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return ""
	}
	var c struct {
		Runtime string `json:"runtime"`
	}
	if json.Unmarshal(j, &c) != nil {
		return ""
	}
	return strings.TrimSpace(c.Runtime)
}

func report(sys System, inv *Invocation, err error) {
	line := "secrun-runc: " + strings.Join(strings.Fields(err.Error()), " ")
	fmt.Fprintln(sys.Stderr, line)
	if inv == nil {
		return
	}
	if lerr := WriteRuncLog(inv.Global, line, sys.Now()); lerr != nil {
		fmt.Fprintf(sys.Stderr, "secrun-runc: %v\n", lerr)
	}
}

package wrapper

import "github.com/secrun/secrun/runner/runcfront"

// The runc command line is read by runcfront, which secrun-runc's front
// program uses without the policy engine; these names keep the wrapper's API.
type (
	Kind       = runcfront.Kind
	Global     = runcfront.Global
	CreateArgs = runcfront.CreateArgs
	ExecArgs   = runcfront.ExecArgs
	Invocation = runcfront.Invocation
)

const (
	PassThrough = runcfront.PassThrough
	Checked     = runcfront.Checked
	Refused     = runcfront.Refused
	ConfigFlag  = runcfront.ConfigFlag
)

// ParseArgs reads a runc command line (runcfront.ParseArgs).
func ParseArgs(args []string) (*Invocation, error) { return runcfront.ParseArgs(args) }

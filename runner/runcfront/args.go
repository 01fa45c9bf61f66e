package runcfront

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Kind says what secrun-runc does with a runc subcommand.
type Kind int

const (
	// PassThrough commands cannot start a process in a container; they go
	// to the real runtime unchanged.
	PassThrough Kind = iota
	// Checked commands start a container or a process in one (create, run,
	// exec): the policy decides first.
	Checked
	// Refused commands would bring a container back without a policy
	// review (checkpoint, restore).
	Refused
)

// commandKinds lists every runc subcommand secrun-runc knows. A name not
// listed is refused: a future runc command might start containers, and
// passing it through unchecked would be a way around the policy.
var commandKinds = map[string]Kind{
	"create": Checked, "run": Checked, "exec": Checked,
	"checkpoint": Refused, "restore": Refused,
	"start": PassThrough, "state": PassThrough, "kill": PassThrough, "delete": PassThrough,
	"ps": PassThrough, "pause": PassThrough, "resume": PassThrough, "update": PassThrough,
	"events": PassThrough, "features": PassThrough, "list": PassThrough, "spec": PassThrough,
	"help": PassThrough, "h": PassThrough,
}

// Global holds runc's global options.
type Global struct {
	Root          string
	Log           string
	LogFormat     string
	Debug         bool
	SystemdCgroup bool
	Rootless      string
}

// CreateArgs are the options of `create` and `run`.
type CreateArgs struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	// Detach, Keep and NoSubreaper are `run` only.
	Detach, Keep, NoSubreaper bool
}

// ExecArgs are the options of `exec`. Process is the --process file; without
// it the process is the container's own with the flag overrides below.
type ExecArgs struct {
	ID             string
	Process        string
	Args           []string
	Env            []string
	Cwd            string
	User           string
	AdditionalGids []int64
	Caps           []string
	TTY            bool
	// NoNewPrivs is nil when --no-new-privs was not given.
	NoNewPrivs   *bool
	AppArmor     string
	ProcessLabel string
	Detach       bool
	PidFile      string
}

// Invocation is a runc command line as runc itself would read it.
type Invocation struct {
	// Args are the arguments after the program name, as given but for
	// --secrun-config; they are handed to the real runtime.
	Args []string
	// ConfigPath is the --secrun-config value, "" when not given.
	ConfigPath string
	Global     Global
	// Command is the subcommand, "" when there is none (runc --version),
	// and CommandIndex its position in Args.
	Command      string
	CommandIndex int
	Kind         Kind
	// Help is set when runc would only print help or its version.
	Help   bool
	Create *CreateArgs
	Exec   *ExecArgs
}

// ConfigFlag is the one global option secrun-runc adds to runc's:
// --secrun-config FILE names its config for engines that pass runtime
// options but not the environment (podman --runtime-flag
// secrun-config=FILE, Docker's runtimeArgs). It is removed before runc sees
// the command line.
const ConfigFlag = "secrun-config"

// ParseArgs reads a runc command line (without the program name) the way
// runc v1 does (urfave/cli v1 over Go's flag package): global options up
// to the subcommand, then the subcommand's options, which for create and
// run may also follow the container id. Anything it cannot read exactly is
// an error, so that secrun-runc never mistakes a create for something else.
func ParseArgs(args []string) (*Invocation, error) {
	inv := &Invocation{}
	g := &inv.Global
	fs := newFlagSet("runc")
	fs.stringVar(&g.Root, "root")
	fs.stringVar(&g.Log, "log")
	g.LogFormat = "text"
	fs.stringVar(&g.LogFormat, "log-format")
	fs.boolVar(&g.Debug, "debug")
	fs.boolVar(&g.SystemdCgroup, "systemd-cgroup")
	g.Rootless = "auto"
	fs.stringVar(&g.Rootless, "rootless")
	var help, version bool
	fs.boolVar(&help, "help", "h")
	fs.boolVar(&version, "version", "v")
	fs.stringVar(&inv.ConfigPath, ConfigFlag)
	rest, err := fs.parse(args)
	if err != nil {
		return nil, fmt.Errorf("global options: %w", err)
	}
	globals := args[:len(args)-len(rest)]
	inv.Args = append(fs.without(globals, ConfigFlag), rest...)
	if help || version || len(rest) == 0 {
		inv.Help = true
		inv.CommandIndex = len(inv.Args)
		return inv, nil
	}
	inv.Command, inv.CommandIndex = rest[0], len(inv.Args)-len(rest)
	kind, ok := commandKinds[inv.Command]
	if !ok {
		return nil, fmt.Errorf("unknown command %q: secrun-runc only passes on the runc commands it knows", inv.Command)
	}
	inv.Kind = kind
	switch inv.Command {
	case "create", "run":
		inv.Create, inv.Help, err = parseCreate(inv.Command, rest[1:])
	case "exec":
		inv.Exec, inv.Help, err = parseExec(rest[1:])
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", inv.Command, err)
	}
	return inv, nil
}

func parseCreate(name string, args []string) (*CreateArgs, bool, error) {
	c := &CreateArgs{}
	fs := newFlagSet(name)
	fs.stringVar(&c.Bundle, "bundle", "b")
	fs.stringVar(&c.ConsoleSocket, "console-socket")
	var pidfd string
	fs.stringVar(&pidfd, "pidfd-socket")
	fs.stringVar(&c.PidFile, "pid-file")
	fs.boolVar(&c.NoPivot, "no-pivot")
	fs.boolVar(&c.NoNewKeyring, "no-new-keyring")
	fs.intVar(&c.PreserveFDs, "preserve-fds")
	if name == "run" {
		fs.boolVar(&c.Detach, "detach", "d")
		fs.boolVar(&c.Keep, "keep")
		fs.boolVar(&c.NoSubreaper, "no-subreaper")
	}
	var help bool
	fs.boolVar(&help, "help", "h")
	rest, err := fs.parse(fs.reorder(args))
	if err != nil {
		return nil, false, err
	}
	if help {
		return c, true, nil
	}
	if len(rest) != 1 {
		return nil, false, fmt.Errorf("want exactly one container id, got %d arguments (%s)", len(rest), strings.Join(rest, " "))
	}
	c.ID = rest[0]
	return c, false, nil
}

func parseExec(args []string) (*ExecArgs, bool, error) {
	e := &ExecArgs{}
	fs := newFlagSet("exec")
	var consoleSocket, pidfd string
	var preserve int
	var cgroups []string
	var ignorePaused, nnp bool
	fs.stringVar(&consoleSocket, "console-socket")
	fs.stringVar(&pidfd, "pidfd-socket")
	fs.stringVar(&e.Cwd, "cwd")
	fs.sliceVar(&e.Env, "env", "e")
	fs.boolVar(&e.TTY, "tty", "t")
	fs.stringVar(&e.User, "user", "u")
	fs.int64SliceVar(&e.AdditionalGids, "additional-gids", "g")
	fs.stringVar(&e.Process, "process", "p")
	fs.boolVar(&e.Detach, "detach", "d")
	fs.stringVar(&e.PidFile, "pid-file")
	fs.stringVar(&e.ProcessLabel, "process-label")
	fs.stringVar(&e.AppArmor, "apparmor")
	fs.boolVar(&nnp, "no-new-privs")
	fs.sliceVar(&e.Caps, "cap", "c")
	fs.intVar(&preserve, "preserve-fds")
	fs.sliceVar(&cgroups, "cgroup")
	fs.boolVar(&ignorePaused, "ignore-paused")
	var help bool
	fs.boolVar(&help, "help", "h")
	// runc's exec does not reorder: everything after the id is the command.
	rest, err := fs.parse(args)
	if err != nil {
		return nil, false, err
	}
	if help {
		return e, true, nil
	}
	if fs.isSet("no-new-privs") {
		e.NoNewPrivs = &nnp
	}
	if len(rest) == 0 {
		return nil, false, errors.New("no container id")
	}
	e.ID, e.Args = rest[0], rest[1:]
	if e.Process == "" && len(e.Args) == 0 {
		return nil, false, errors.New("no command and no --process file")
	}
	return e, false, nil
}

// flagSet is a Go flag.FlagSet with urfave/cli v1's conventions: a flag
// may have several names ("bundle, b"), and naming two of them at once is
// an error.
type flagSet struct {
	fs      *flag.FlagSet
	aliases [][]string
	names   map[string]bool
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{fs: fs, names: map[string]bool{}}
}

func (f *flagSet) add(names []string, def func(n string)) {
	for _, n := range names {
		def(n)
		f.names[n] = true
	}
	if len(names) > 1 {
		f.aliases = append(f.aliases, names)
	}
}

func (f *flagSet) stringVar(p *string, names ...string) {
	f.add(names, func(n string) { f.fs.StringVar(p, n, *p, "") })
}

func (f *flagSet) boolVar(p *bool, names ...string) {
	f.add(names, func(n string) { f.fs.BoolVar(p, n, *p, "") })
}

func (f *flagSet) intVar(p *int, names ...string) {
	f.add(names, func(n string) { f.fs.IntVar(p, n, *p, "") })
}

func (f *flagSet) sliceVar(p *[]string, names ...string) {
	f.add(names, func(n string) { f.fs.Var((*stringSlice)(p), n, "") })
}

func (f *flagSet) int64SliceVar(p *[]int64, names ...string) {
	f.add(names, func(n string) { f.fs.Var((*int64Slice)(p), n, "") })
}

func (f *flagSet) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			set = true
		}
	})
	return set
}

// parse parses args and returns the arguments after the flags.
func (f *flagSet) parse(args []string) ([]string, error) {
	if err := f.fs.Parse(args); err != nil {
		return nil, err
	}
	for _, names := range f.aliases {
		var given []string
		for _, n := range names {
			if f.isSet(n) {
				given = append(given, n)
			}
		}
		if len(given) > 1 {
			return nil, fmt.Errorf("cannot use two forms of the same flag: %s", strings.Join(given, " "))
		}
	}
	return f.fs.Args(), nil
}

// without returns the flag section args (fully consumed by parse) with
// every occurrence of the named string flag, and its value, removed.
func (f *flagSet) without(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		n, hasValue := flagName(a)
		if a == "--" || n == "" {
			out = append(out, args[i:]...)
			break
		}
		fl := f.fs.Lookup(n)
		isBool := false
		if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			isBool = true
		}
		if n == name {
			if !hasValue {
				i++
			}
			continue
		}
		out = append(out, a)
		if !hasValue && !isBool && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// flagName is the name in "-name", "--name" or "--name=value", and whether
// the value is attached; "" when a is not a flag.
func flagName(a string) (string, bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	n := a[1:]
	if n[0] == '-' {
		n = n[1:]
	}
	if n == "" || n[0] == '-' || n[0] == '=' {
		return "", false
	}
	name, _, hasValue := strings.Cut(n, "=")
	return name, hasValue
}

// reorder moves the flags of a command line in front of its other
// arguments, exactly as urfave/cli v1 does for commands that allow flags
// after positional arguments (runc create and run): a flag, then possibly
// its value, is moved; "--" ends the reordering.
func (f *flagSet) reorder(args []string) []string {
	var flags, rest []string
	maybeValue := false
	for i, a := range args {
		switch {
		case maybeValue && !f.isFlag(a):
			maybeValue = false
			flags = append(flags, a)
		case a == "--":
			rest = append([]string{"--"}, rest...)
			rest = append(rest, args[i+1:]...)
			return append(flags, rest...)
		case f.isFlag(a):
			flags = append(flags, a)
			maybeValue = !strings.Contains(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}

// isFlag reports whether a names one of the set's flags, the way urfave/cli
// v1 tells flags from arguments while reordering.
func (f *flagSet) isFlag(a string) bool {
	if a == "-" || a == "--" || !strings.HasPrefix(a, "-") {
		return false
	}
	if strings.HasPrefix(a, "--") {
		a = strings.Replace(a, "-", "", 2)
	}
	if strings.HasPrefix(a, "-") {
		a = strings.Replace(a, "-", "", 1)
	}
	a, _, _ = strings.Cut(a, "=")
	return f.names[a]
}

type stringSlice []string

func (s *stringSlice) String() string { return strings.Join(*s, ",") }
func (s *stringSlice) Set(v string) error {
	*s = append(*s, v)
	return nil
}

type int64Slice []int64

func (s *int64Slice) String() string { return fmt.Sprint(*s) }
func (s *int64Slice) Set(v string) error {
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		return err
	}
	*s = append(*s, n)
	return nil
}

// Command secrun-init confines a container's process with Landlock and then
// executes the container's command in its place.
//
// secrun bind-mounts this static binary read-only at /.secrun/init and makes
// it the entrypoint:
//
//	/.secrun/init [--ro=PATH | --rw=PATH | --ro-optional=PATH | --rw-optional=PATH]... -- CMD [ARG...]
//
// --ro grants reading, listing and executing beneath PATH; --rw adds every
// write. The -optional forms are skipped when PATH does not exist; a missing
// required PATH is an error. Everything not granted is denied. The ruleset is
// built for the kernel's Landlock ABI (the newest this binary knows, at most),
// and the program fails closed: when the kernel has no Landlock, CMD never
// runs. Landlock domains survive execve, so CMD and all its children stay
// confined.
//
// Exit status when CMD does not start: 125 for a bad ruleset or Landlock
// failure, 126 when CMD cannot be executed, 127 when it is not found.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Exit codes, as Docker uses them for a command that does not start.
const (
	exitInitFailed    = 125
	exitCannotExecute = 126
	exitNotFound      = 127
)

// The flag prefixes; profiles.InitArgs produces the same (tested).
const (
	flagRO         = "--ro="
	flagRW         = "--rw="
	flagROOptional = "--ro-optional="
	flagRWOptional = "--rw-optional="
)

// rule grants access beneath path.
type rule struct {
	path     string
	write    bool
	optional bool
}

// config is a parsed command line.
type config struct {
	rules []rule
	argv  []string
}

// maxRules bounds the ruleset, as profiles.ParseLandlock does.
const maxRules = 256

// parseArgs parses secrun-init's arguments (without the program name).
func parseArgs(args []string) (config, error) {
	var c config
	for i, a := range args {
		if a == "--" {
			c.argv = args[i+1:]
			if len(c.argv) == 0 {
				return config{}, errors.New("no command after --")
			}
			if len(c.rules) == 0 {
				return config{}, errors.New("no landlock rule given: pass --ro=PATH or --rw=PATH before --")
			}
			return c, nil
		}
		var r rule
		var p string
		switch {
		case strings.HasPrefix(a, flagRO):
			p = a[len(flagRO):]
		case strings.HasPrefix(a, flagRW):
			p, r.write = a[len(flagRW):], true
		case strings.HasPrefix(a, flagROOptional):
			p, r.optional = a[len(flagROOptional):], true
		case strings.HasPrefix(a, flagRWOptional):
			p, r.write, r.optional = a[len(flagRWOptional):], true, true
		default:
			return config{}, fmt.Errorf("unknown argument %q: want --ro=PATH, --rw=PATH, --ro-optional=PATH, --rw-optional=PATH or --", a)
		}
		if !strings.HasPrefix(p, "/") {
			return config{}, fmt.Errorf("argument %q: the path must be absolute", a)
		}
		r.path = p
		c.rules = append(c.rules, r)
		if len(c.rules) > maxRules {
			return config{}, fmt.Errorf("more than %d landlock rules", maxRules)
		}
	}
	return config{}, errors.New("missing -- before the command")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run returns only when CMD could not be started.
func run(args []string) int {
	c, err := parseArgs(args)
	if err != nil {
		return fail(exitInitFailed, "%v\nusage: secrun-init [--ro=PATH|--rw=PATH|--ro-optional=PATH|--rw-optional=PATH]... -- CMD [ARG...]", err)
	}
	path, err := lookPath(c.argv[0])
	if err != nil {
		return fail(exitNotFound, "%s: %v", c.argv[0], err)
	}
	if err := confine(c.rules); err != nil {
		return fail(exitInitFailed, "%v; refusing to run %s without the requested Landlock confinement", err, c.argv[0])
	}
	err = execve(path, c.argv, os.Environ())
	if errors.Is(err, os.ErrPermission) {
		return fail(exitCannotExecute, "exec %s: %v (does the landlock ruleset grant ro on it and its libraries?)", path, err)
	}
	return fail(exitCannotExecute, "exec %s: %v", path, err)
}

func fail(code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "secrun-init: "+format+"\n", args...)
	return code
}

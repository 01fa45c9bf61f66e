// Command secrun-init confines a container's process with Landlock and a
// seccomp filter, and then executes the container's command in its place.
//
// secrun bind-mounts this static binary read-only at /.secrun/init and makes
// it the entrypoint:
//
//	/.secrun/init [--ro=PATH | --rw=PATH | --ro-optional=PATH | --rw-optional=PATH]...
//	              [--seccomp=FILE [--seccomp-flags=N]] -- CMD [ARG...]
//
// --seccomp loads FILE, a classic BPF program (struct sock_filter[], host
// byte order) that secrun compiled from the container's seccomp profile
// with libseccomp, exactly as runc would have, as this thread's seccomp
// filter right before the exec; --seccomp-flags are the seccomp(2) filter
// flags (SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW). secrun
// uses it so that runc does not compile the same profile on every start.
// The filter needs no_new_privs, which secrun-init sets (runc has already
// set it when the spec asks for it).
//
// --ro grants reading, listing and executing beneath PATH; --rw adds every
// write. The -optional forms are skipped when PATH does not exist; a missing
// required PATH is an error. Everything not granted is denied. The ruleset is
// built for the kernel's Landlock ABI (the newest this binary knows, at most),
// and the program fails closed: when the kernel has no Landlock, CMD never
// runs. Landlock domains survive execve, so CMD and all its children stay
// confined.
//
// Exit status when CMD does not start: 125 for a bad ruleset, filter,
// Landlock or seccomp failure, 126 when CMD cannot be executed, 127 when it
// is not found.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
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
	flagRO           = "--ro="
	flagRW           = "--rw="
	flagROOptional   = "--ro-optional="
	flagRWOptional   = "--rw-optional="
	flagSeccomp      = "--seccomp="
	flagSeccompFlags = "--seccomp-flags="
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
	// seccomp is the BPF program file, "" for none; seccompFlags the
	// seccomp(2) flags to load it with.
	seccomp      string
	seccompFlags uint
	argv         []string
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
			if len(c.rules) == 0 && c.seccomp == "" {
				return config{}, errors.New("no landlock rule and no seccomp filter given: pass --ro=PATH, --rw=PATH or --seccomp=FILE before --")
			}
			if c.seccompFlags != 0 && c.seccomp == "" {
				return config{}, errors.New("--seccomp-flags without --seccomp")
			}
			return c, nil
		}
		var r rule
		var p string
		switch {
		case strings.HasPrefix(a, flagSeccomp):
			if c.seccomp != "" {
				return config{}, errors.New("--seccomp given twice")
			}
			if c.seccomp = a[len(flagSeccomp):]; !strings.HasPrefix(c.seccomp, "/") {
				return config{}, fmt.Errorf("argument %q: the path must be absolute", a)
			}
			continue
		case strings.HasPrefix(a, flagSeccompFlags):
			f, err := strconv.ParseUint(a[len(flagSeccompFlags):], 10, 32)
			if err != nil || f&^allowedSeccompFlags != 0 {
				return config{}, fmt.Errorf("argument %q: want a sum of SECCOMP_FILTER_FLAG_LOG (2) and SECCOMP_FILTER_FLAG_SPEC_ALLOW (4)", a)
			}
			c.seccompFlags = uint(f)
			continue
		case strings.HasPrefix(a, flagRO):
			p = a[len(flagRO):]
		case strings.HasPrefix(a, flagRW):
			p, r.write = a[len(flagRW):], true
		case strings.HasPrefix(a, flagROOptional):
			p, r.optional = a[len(flagROOptional):], true
		case strings.HasPrefix(a, flagRWOptional):
			p, r.write, r.optional = a[len(flagRWOptional):], true, true
		default:
			return config{}, fmt.Errorf("unknown argument %q: want --ro=PATH, --rw=PATH, --ro-optional=PATH, --rw-optional=PATH, --seccomp=FILE, --seccomp-flags=N or --", a)
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
		return fail(exitInitFailed, "%v\nusage: secrun-init [--ro=PATH|--rw=PATH|--ro-optional=PATH|--rw-optional=PATH]... [--seccomp=FILE [--seccomp-flags=N]] -- CMD [ARG...]", err)
	}
	// The filter is read before anything is confined: Landlock may not
	// grant reading it.
	var filter []byte
	if c.seccomp != "" {
		if filter, err = readFilter(c.seccomp); err != nil {
			return fail(exitInitFailed, "%v; refusing to run %s without its seccomp filter", err, c.argv[0])
		}
	}
	path, err := lookPath(c.argv[0])
	if err != nil {
		return fail(exitNotFound, "%s: %v", c.argv[0], err)
	}
	if len(c.rules) > 0 {
		if err := confine(c.rules); err != nil {
			return fail(exitInitFailed, "%v; refusing to run %s without the requested Landlock confinement", err, c.argv[0])
		}
	}
	if filter != nil {
		// The exec must come from the thread that has the filter.
		runtime.LockOSThread()
		if err := loadFilter(filter, c.seccompFlags); err != nil {
			return fail(exitInitFailed, "%v; refusing to run %s without its seccomp filter", err, c.argv[0])
		}
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

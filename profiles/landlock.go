package profiles

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// LandlockInitPath is where the runner mounts secrun-init in the container.
//
// No mainstream OCI runtime applies Landlock, so secrun does it from inside
// the container: ApplyLSM bind-mounts the static secrun-init binary read-only
// here and makes it the process entrypoint with the arguments InitArgs
// returns. secrun-init restricts itself with the ruleset (Landlock domains
// survive execve) and then execs the real command. It fails closed: if the
// kernel has no Landlock, the command never runs.
const LandlockInitPath = "/.secrun/init"

// LandlockAccess is the access a rule grants beneath its path.
type LandlockAccess string

// The accesses a rule can grant.
const (
	// LandlockRO grants reading files, listing directories and executing.
	LandlockRO LandlockAccess = "ro"
	// LandlockRW grants LandlockRO plus every write, create, remove and
	// rename (within and between rw trees).
	LandlockRW LandlockAccess = "rw"
)

// LandlockRule grants Access to the file hierarchy beneath Path.
type LandlockRule struct {
	Path   string
	Access LandlockAccess
	// Optional rules are skipped when Path does not exist in the container;
	// a missing required path makes secrun-init refuse to start.
	Optional bool
}

// LandlockRules is a parsed Landlock ruleset: one rule per path, sorted by
// path.
type LandlockRules struct {
	Rules []LandlockRule
}

// Limits on a ruleset, so a request cannot build an unbounded argv.
const (
	maxLandlockRules   = 256
	maxLandlockPathLen = 4096
)

// landlockDefault is what landlock=default grants: read and execute
// everywhere, writes only where programs expect scratch space, and the
// character devices shell redirections and terminals open for writing.
var landlockDefault = []LandlockRule{
	{Path: "/", Access: LandlockRO},
	{Path: "/tmp", Access: LandlockRW, Optional: true},
	{Path: "/var/tmp", Access: LandlockRW, Optional: true},
	{Path: "/dev/shm", Access: LandlockRW, Optional: true},
	{Path: "/dev/null", Access: LandlockRW, Optional: true},
	{Path: "/dev/zero", Access: LandlockRW, Optional: true},
	{Path: "/dev/full", Access: LandlockRW, Optional: true},
	{Path: "/dev/tty", Access: LandlockRW, Optional: true},
	{Path: "/dev/ptmx", Access: LandlockRW, Optional: true},
	{Path: "/dev/pts", Access: LandlockRW, Optional: true},
}

const landlockHelp = "use landlock=default, landlock=ro=PATH[:PATH...] or landlock=rw=PATH[:PATH...]"

// ParseLandlock parses --security-opt landlock= values, given without the
// "landlock=" prefix. No values means no Landlock: (nil, nil).
//
//	landlock=ro=PATH[:PATH...]   read, list and execute beneath each PATH
//	landlock=rw=PATH[:PATH...]   all of ro, plus create, write, remove, rename
//	landlock=default             ro=/ plus rw on /tmp, /var/tmp, /dev/shm and
//	                             the standard character and terminal devices
//	                             (each only if it exists in the container)
//
// The option may be repeated; rules add up, and a path named both ro and rw is
// rw (rules only ever grant). Any access not beneath a rule is denied with
// EACCES, reading included; under landlock=default that leaves /proc and
// /sys read-only. Paths are container paths; they must be absolute and clean,
// and cannot contain ':' (the separator). Landlock here covers the file
// system; network access is governed by --network.
func ParseLandlock(opts []string) (*LandlockRules, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	byPath := map[string]LandlockRule{}
	add := func(r LandlockRule) {
		if old, ok := byPath[r.Path]; ok {
			if old.Access == LandlockRW {
				r.Access = LandlockRW
			}
			r.Optional = r.Optional && old.Optional
		}
		byPath[r.Path] = r
	}
	for _, opt := range opts {
		if opt == "default" {
			for _, r := range landlockDefault {
				add(r)
			}
			continue
		}
		kind, list, ok := strings.Cut(opt, "=")
		access := LandlockAccess(kind)
		if !ok || (access != LandlockRO && access != LandlockRW) {
			return nil, fmt.Errorf("bad landlock option %q: %s", opt, landlockHelp)
		}
		if list == "" {
			return nil, fmt.Errorf("bad landlock option %q: no path given; %s", opt, landlockHelp)
		}
		for _, p := range strings.Split(list, ":") {
			if err := validateLandlockPath(p); err != nil {
				return nil, fmt.Errorf("bad landlock option %q: %w", opt, err)
			}
			add(LandlockRule{Path: p, Access: access})
		}
	}
	if len(byPath) > maxLandlockRules {
		return nil, fmt.Errorf("landlock options name %d paths, more than the %d allowed: grant parent directories instead", len(byPath), maxLandlockRules)
	}
	rules := &LandlockRules{}
	for _, r := range byPath {
		rules.Rules = append(rules.Rules, r)
	}
	slices.SortFunc(rules.Rules, func(a, b LandlockRule) int { return strings.Compare(a.Path, b.Path) })
	return rules, nil
}

func validateLandlockPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path (two ':' in a row?)")
	case len(p) > maxLandlockPathLen:
		return fmt.Errorf("path of %d bytes is longer than %d", len(p), maxLandlockPathLen)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte", p)
	}
	return nil
}

// The secrun-init flags a rule becomes. cmd/secrun-init parses the same
// names; its tests round-trip InitArgs to keep the two in step.
const (
	InitFlagRO         = "--ro="
	InitFlagRW         = "--rw="
	InitFlagROOptional = "--ro-optional="
	InitFlagRWOptional = "--rw-optional="
)

// InitArgs returns the process.args prefix that runs secrun-init with this
// ruleset: LandlockInitPath, one flag per rule, and "--". The container's
// command follows it (see WrapArgs).
func (r *LandlockRules) InitArgs() []string {
	args := []string{LandlockInitPath}
	for _, rule := range r.Rules {
		var flag string
		switch {
		case rule.Access == LandlockRW && rule.Optional:
			flag = InitFlagRWOptional
		case rule.Access == LandlockRW:
			flag = InitFlagRW
		case rule.Optional:
			flag = InitFlagROOptional
		default:
			flag = InitFlagRO
		}
		args = append(args, flag+rule.Path)
	}
	return append(args, "--")
}

// WrapArgs returns args to run under secrun-init with this ruleset. ApplyLSM
// uses it for the container's process; `secrun exec` must use it for every
// process it adds, or that process runs without Landlock.
func (r *LandlockRules) WrapArgs(args []string) []string {
	return append(r.InitArgs(), args...)
}

// String renders the rules for logs and audit records, one "access=path" per
// rule, optional rules marked with a trailing '?'.
func (r *LandlockRules) String() string {
	var parts []string
	for _, rule := range r.Rules {
		s := string(rule.Access) + "=" + rule.Path
		if rule.Optional {
			s += "?"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

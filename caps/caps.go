// Package caps owns capability names and sets: parsing the names users type
// (Docker style, with or without the CAP_ prefix), the sets secrun grants, and
// what the host can actually grant.
package caps

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
)

// Set is a sorted, duplicate-free list of canonical names ("CAP_NET_BIND_SERVICE").
type Set []string

// DockerDefault is the set Docker grants a container by default. secrun grants
// none of it by default; it is kept as data because policies ("caps within
// Docker's default set") and --cap-add=... need the reference.
var DockerDefault = Set{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// Known lists every capability the library knows, canonical names, sorted.
func Known() Set {
	var s Set
	for _, c := range capability.ListKnown() {
		s = append(s, "CAP_"+strings.ToUpper(c.String()))
	}
	slices.Sort(s)
	return s
}

// Normalize turns a user-typed name ("net_admin", "CAP_NET_ADMIN", "NET_ADMIN")
// into its canonical form, or fails naming the unknown capability. "ALL" is
// returned as is: it is a request, not a capability.
func Normalize(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if _, ok := slices.BinarySearch(Known(), n); !ok {
		return "", fmt.Errorf("unknown capability %q: see capabilities(7) for the names", name)
	}
	return n, nil
}

// Resolve applies Docker's --cap-add/--cap-drop semantics to base: drops are
// applied first, then adds, and "ALL" stands for every known capability.
func Resolve(base Set, add, drop []string) (Set, error) {
	cur := map[string]bool{}
	for _, c := range base {
		cur[c] = true
	}
	for _, d := range drop {
		n, err := Normalize(d)
		if err != nil {
			return nil, fmt.Errorf("--cap-drop: %w", err)
		}
		if n == "ALL" {
			clear(cur)
			continue
		}
		delete(cur, n)
	}
	for _, a := range add {
		n, err := Normalize(a)
		if err != nil {
			return nil, fmt.Errorf("--cap-add: %w", err)
		}
		if n == "ALL" {
			for _, k := range Known() {
				cur[k] = true
			}
			continue
		}
		cur[n] = true
	}
	out := make(Set, 0, len(cur))
	for c := range cur {
		out = append(out, c)
	}
	slices.Sort(out)
	return out, nil
}

// HostBounding returns the capabilities in this process's bounding set: a
// container can never hold more, so asking for more is an error best reported
// before runc fails obscurely.
func HostBounding() (Set, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("reading host capabilities: %w", err)
	}
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("reading host capabilities: %w", err)
	}
	supported, err := capability.ListSupported()
	if err != nil {
		return nil, fmt.Errorf("reading host capabilities: %w", err)
	}
	var s Set
	for _, k := range supported {
		if c.Get(capability.BOUNDING, k) {
			s = append(s, "CAP_"+strings.ToUpper(k.String()))
		}
	}
	slices.Sort(s)
	return s, nil
}

// Outside reports the members of s that are not in limit.
func (s Set) Outside(limit Set) []string {
	var out []string
	for _, c := range s {
		if !slices.Contains(limit, c) {
			out = append(out, c)
		}
	}
	return out
}

package seccomp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Merge returns the union of profiles, typically several recordings of one
// workload: whatever any input allows, the result allows. The default
// action, errno, listener and archMap come from the first profile;
// architectures and flags are united. Unconditional allow rules with the
// same comment are joined into one rule and a name is kept only in the
// first of them, except that a syscall the workload used in any recording
// goes into the workload's rule (CommentWorkload) even if another
// recording saw only the runtime use it. Conditional
// rules are kept once each, and a name allowed outright by any input is
// taken out of every other rule: its conditions no longer matter, and a
// denial of it would undo the union.
func Merge(ps ...*Profile) *Profile {
	var in []*Profile
	for _, p := range ps {
		if p != nil {
			in = append(in, p)
		}
	}
	if len(in) == 0 {
		return nil
	}
	first := in[0]
	out := &Profile{
		DefaultAction:    first.DefaultAction,
		DefaultErrnoRet:  cloneUint(first.DefaultErrnoRet),
		ListenerPath:     first.ListenerPath,
		ListenerMetadata: first.ListenerMetadata,
		ArchMap:          first.Clone().ArchMap,
		Syscalls:         []Syscall{},
	}
	for _, p := range in {
		for _, a := range p.Architectures {
			if !slices.Contains(out.Architectures, a) {
				out.Architectures = append(out.Architectures, a)
			}
		}
		for _, f := range p.Flags {
			if !slices.Contains(out.Flags, f) {
				out.Flags = append(out.Flags, f)
			}
		}
	}

	// Names allowed outright, whatever the host: no conditions at all; and
	// the ones some recording saw the workload use.
	outright, workload := map[string]bool{}, map[string]bool{}
	for _, p := range in {
		for _, s := range p.Syscalls {
			if s.Action == specs.ActAllow && isPlain(&s) {
				for _, n := range s.names() {
					outright[n] = true
					if s.Comment == CommentWorkload {
						workload[n] = true
					}
				}
			}
		}
	}

	plainByComment := map[string]int{} // comment -> index in out.Syscalls
	placed := map[string]bool{}
	seen := map[string]bool{}
	for _, p := range in {
		for _, s := range p.Clone().Syscalls {
			names := s.names()
			s.Name, s.Names = "", nil
			if s.Action == specs.ActAllow && isPlain(&s) {
				var fresh []string
				for _, n := range names {
					if workload[n] && s.Comment != CommentWorkload {
						continue
					}
					if !placed[n] {
						placed[n] = true
						fresh = append(fresh, n)
					}
				}
				if len(fresh) == 0 {
					continue
				}
				if i, ok := plainByComment[s.Comment]; ok {
					out.Syscalls[i].Names = append(out.Syscalls[i].Names, fresh...)
					continue
				}
				s.Names = fresh
				plainByComment[s.Comment] = len(out.Syscalls)
				out.Syscalls = append(out.Syscalls, s)
				continue
			}
			s.Names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return outright[n] })
			if len(s.Names) == 0 {
				continue
			}
			key := ruleKey(&s)
			if seen[key] {
				continue
			}
			seen[key] = true
			out.Syscalls = append(out.Syscalls, s)
		}
	}
	for i := range out.Syscalls {
		if _, ok := plainByComment[out.Syscalls[i].Comment]; ok && isPlain(&out.Syscalls[i]) && out.Syscalls[i].Action == specs.ActAllow {
			slices.Sort(out.Syscalls[i].Names)
		}
	}
	return out
}

// isPlain reports whether a rule applies whatever the arguments and host.
func isPlain(s *Syscall) bool {
	return len(s.Args) == 0 && s.Includes == nil && s.Excludes == nil
}

func ruleKey(s *Syscall) string {
	b, err := json.Marshal(s)
	if err != nil {
		// A Syscall always marshals.
		panic(fmt.Sprintf("seccomp: encoding rule: %v", err))
	}
	return string(b)
}

// DiffResult is how two profiles differ in what they allow.
type DiffResult struct {
	// Added are syscalls b allows (outright or for some arguments or hosts)
	// and a does not; Removed the other way round. Both sorted.
	Added, Removed []string
	// DefaultChanged describes a change of default action, or is empty.
	DefaultChanged string
}

// Empty reports whether the profiles allow the same syscalls.
func (d DiffResult) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && d.DefaultChanged == ""
}

// String renders the diff as "+name" and "-name" lines.
func (d DiffResult) String() string {
	var b strings.Builder
	if d.DefaultChanged != "" {
		fmt.Fprintf(&b, "default action: %s\n", d.DefaultChanged)
	}
	for _, n := range d.Added {
		fmt.Fprintf(&b, "+%s\n", n)
	}
	for _, n := range d.Removed {
		fmt.Fprintf(&b, "-%s\n", n)
	}
	return b.String()
}

// Diff compares what profiles a and b allow. A syscall counts as allowed
// when any SCMP_ACT_ALLOW or SCMP_ACT_LOG rule names it, with or without
// conditions.
func Diff(a, b *Profile) DiffResult {
	as, bs := allowedNames(a), allowedNames(b)
	var d DiffResult
	for n := range bs {
		if !as[n] {
			d.Added = append(d.Added, n)
		}
	}
	for n := range as {
		if !bs[n] {
			d.Removed = append(d.Removed, n)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	if da, db := defaultString(a), defaultString(b); da != db {
		d.DefaultChanged = da + " -> " + db
	}
	return d
}

func allowedNames(p *Profile) map[string]bool {
	m := map[string]bool{}
	if p == nil {
		return m
	}
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow || s.Action == specs.ActLog {
			for _, n := range s.names() {
				m[n] = true
			}
		}
	}
	return m
}

func defaultString(p *Profile) string {
	if p == nil {
		return "none"
	}
	if p.DefaultErrnoRet != nil {
		return fmt.Sprintf("%s(%d)", p.DefaultAction, *p.DefaultErrnoRet)
	}
	return string(p.DefaultAction)
}

package seccomp

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Target is what a profile is resolved against: the capability set granted
// to the container (Docker uses the bounding set), the host architecture in
// includes/excludes spelling ("amd64") and the host kernel version.
type Target struct {
	Caps   []string
	Arch   string
	Kernel KernelVersion
}

// HostTarget is the Target for this host with the given capabilities.
func HostTarget(caps []string) (Target, error) {
	k, err := HostKernel()
	if err != nil {
		return Target{}, err
	}
	return Target{Caps: caps, Arch: HostArch(), Kernel: k}, nil
}

// HostKernel returns the running kernel's "<kernel>.<major>" version.
func HostKernel() (KernelVersion, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return KernelVersion{}, fmt.Errorf("reading kernel version: %w", err)
	}
	return parseRelease(unix.ByteSliceToString(u.Release[:]))
}

// parseRelease reads "6.18.44-foo" as 6.18; suffixes and the minor
// revision are ignored, as in Docker.
func parseRelease(rel string) (KernelVersion, error) {
	var k, m uint64
	if _, err := fmt.Sscanf(rel, "%d.%d", &k, &m); err != nil {
		return KernelVersion{}, fmt.Errorf("kernel release %q: %w", rel, err)
	}
	return KernelVersion{Kernel: k, Major: m}, nil
}

// ToOCI resolves the profile for a container on this host that is granted
// caps: rules are kept or dropped by their includes/excludes, archMap is
// expanded for the host architecture, and the result is the runtime-spec
// seccomp section runc takes. The profile is validated first.
func (p *Profile) ToOCI(caps []string) (*specs.LinuxSeccomp, error) {
	t, err := HostTarget(caps)
	if err != nil {
		return nil, err
	}
	return p.ToOCIFor(t)
}

// ToOCIFor is ToOCI for an explicit target (another architecture or
// kernel, or a test).
func (p *Profile) ToOCIFor(t Target) (*specs.LinuxSeccomp, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p.convert(t)
}

// ToOCIValidated is ToOCI for a profile whose validity is established
// elsewhere: secrun's embedded default, which its tests validate, so that
// a container start does not load libseccomp to check it again.
func (p *Profile) ToOCIValidated(caps []string) (*specs.LinuxSeccomp, error) {
	t, err := HostTarget(caps)
	if err != nil {
		return nil, err
	}
	return p.convert(t)
}

func (p *Profile) convert(t Target) (*specs.LinuxSeccomp, error) {
	granted := map[string]bool{}
	for _, c := range t.Caps {
		granted[NormalizeCap(c)] = true
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  cloneUint(p.DefaultErrnoRet),
		Architectures:    slices.Clone(p.Architectures),
		Flags:            slices.Clone(p.Flags),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	for _, m := range p.ArchMap {
		if specArches[m.Arch] == t.Arch || (goArchSpec(t.Arch) == m.Arch) {
			out.Architectures = append(out.Architectures, m.Arch)
			out.Architectures = append(out.Architectures, m.SubArches...)
			break
		}
	}
	var gated []string
	for i := range p.Syscalls {
		s := &p.Syscalls[i]
		if !s.applies(t, granted) {
			if s.capabilityGated(granted) {
				gated = append(gated, s.names()...)
			}
			continue
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(s.names()),
			Action:   s.Action,
			ErrnoRet: cloneUint(s.ErrnoRet),
			Args:     slices.Clone(s.Args),
		})
	}
	if rule := capabilityDenials(out, gated); rule != nil {
		out.Syscalls = append(out.Syscalls, *rule)
	}
	return out, nil
}

// capabilityGated reports whether a rule is left out only because of the
// capabilities granted (Docker's includes.caps / excludes.caps).
func (s *Syscall) capabilityGated(granted map[string]bool) bool {
	if in := s.Includes; in != nil {
		for _, c := range in.Caps {
			if !granted[c] {
				return true
			}
		}
	}
	if e := s.Excludes; e != nil {
		for _, c := range e.Caps {
			if granted[c] {
				return true
			}
		}
	}
	return false
}

// capabilityDenials answers EPERM, as the kernel would without the
// capability, for syscalls the profile knows but allows only with a
// capability the container lacks (sethostname without CAP_SYS_ADMIN).
// Without it they would get the default errno, which in secrun's profile is
// ENOSYS, meant for syscalls the profile does not know, so that a newer libc
// falls back instead of failing. Names with any rule of their own are left
// alone: their rule decides.
func capabilityDenials(out *specs.LinuxSeccomp, gated []string) *specs.LinuxSyscall {
	eperm := uint(1)
	if out.DefaultAction != specs.ActErrno || out.DefaultErrnoRet == nil || *out.DefaultErrnoRet == eperm {
		return nil
	}
	ruled := map[string]bool{}
	for _, r := range out.Syscalls {
		for _, n := range r.Names {
			ruled[n] = true
		}
	}
	var names []string
	for _, n := range gated {
		if !ruled[n] && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return &specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: &eperm}
}

func goArchSpec(filterArch string) specs.Arch {
	for _, a := range goArches {
		if a.filter == filterArch {
			return a.spec
		}
	}
	return ""
}

// applies evaluates includes/excludes the way Docker does.
func (s *Syscall) applies(t Target, granted map[string]bool) bool {
	if e := s.Excludes; e != nil {
		if len(e.Arches) > 0 && filterArchMatches(e.Arches, t.Arch) {
			return false
		}
		for _, c := range e.Caps {
			if granted[c] {
				return false
			}
		}
		if e.MinKernel != nil && e.MinKernel.String() != "" && !t.Kernel.Less(*e.MinKernel) {
			return false
		}
	}
	if in := s.Includes; in != nil {
		if len(in.Arches) > 0 && !filterArchMatches(in.Arches, t.Arch) {
			return false
		}
		for _, c := range in.Caps {
			if !granted[c] {
				return false
			}
		}
		if in.MinKernel != nil && in.MinKernel.String() != "" && t.Kernel.Less(*in.MinKernel) {
			return false
		}
	}
	return true
}

// FromOCI converts a runtime-spec seccomp section into a Profile with no
// conditional rules. A nil section gives nil.
func FromOCI(s *specs.LinuxSeccomp) *Profile {
	if s == nil {
		return nil
	}
	p := &Profile{
		DefaultAction:    s.DefaultAction,
		DefaultErrnoRet:  cloneUint(s.DefaultErrnoRet),
		Architectures:    slices.Clone(s.Architectures),
		Flags:            slices.Clone(s.Flags),
		ListenerPath:     s.ListenerPath,
		ListenerMetadata: s.ListenerMetadata,
		Syscalls:         []Syscall{},
	}
	for _, r := range s.Syscalls {
		p.Syscalls = append(p.Syscalls, Syscall{
			Names:    slices.Clone(r.Names),
			Action:   r.Action,
			ErrnoRet: cloneUint(r.ErrnoRet),
			Args:     slices.Clone(r.Args),
		})
	}
	return p
}

func cloneUint(p *uint) *uint {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Allowed lists, sorted, the syscall names that a resolved section allows
// unconditionally or for some arguments (SCMP_ACT_ALLOW or SCMP_ACT_LOG).
// With an allowing default action it lists the explicit rules only.
func Allowed(s *specs.LinuxSeccomp) []string {
	seen := map[string]bool{}
	for _, r := range s.Syscalls {
		if r.Action != specs.ActAllow && r.Action != specs.ActLog {
			continue
		}
		for _, n := range r.Names {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// String renders a one-line summary, for logs.
func (p *Profile) String() string {
	var n int
	for _, s := range p.Syscalls {
		n += len(s.names())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seccomp profile default=%s", p.DefaultAction)
	if p.DefaultErrnoRet != nil {
		fmt.Fprintf(&b, "(%d)", *p.DefaultErrnoRet)
	}
	fmt.Fprintf(&b, " rules=%d names=%d", len(p.Syscalls), n)
	return b.String()
}

package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// notNotified are the syscalls the recording filter allows outright instead
// of sending them to the recorder. runc hands the notify fd to its parent
// only after the filter is loaded, so until the recorder holds the fd any
// notified syscall blocks for good. runc itself refuses SCMP_ACT_NOTIFY for
// write, the call that hands the fd over; the rest is what the Go runtime in
// `runc init` may do on the way there: take a preemption signal
// (rt_sigreturn, rt_sigprocmask, sigaltstack, getpid, gettid, tgkill), wake
// or wait for another thread (futex, sched_yield, nanosleep), or grow or
// trim its heap (mmap, munmap, madvise). A process must also always be able
// to end (exit, exit_group). The recorder cannot see these, so every
// recorded profile allows them.
var notNotified = []string{
	"exit", "exit_group", "futex", "getpid", "gettid", "madvise", "mmap",
	"munmap", "nanosleep", "rt_sigprocmask", "rt_sigreturn", "sched_yield",
	"sigaltstack", "tgkill", "write",
}

// NotNotified lists, sorted, the syscalls the recording filter never sends
// to the recorder (see NotifyProfile).
func NotNotified() []string {
	out := slices.Clone(notNotified)
	slices.Sort(out)
	return out
}

// RecordedSyscall is what the recorder saw of one syscall on one
// architecture.
type RecordedSyscall struct {
	Name  string
	Arch  specs.Arch
	Count int
	// BeforeExec counts the calls made before the first execve of the
	// process that loaded the filter, that is by `runc init` itself.
	BeforeExec int
	// Runtime is true when every call came before the first execve of the
	// process that loaded the filter: `runc init` made it, not the
	// workload.
	Runtime bool
	// Personas are the distinct personality(2) arguments (for personality
	// only).
	Personas []uint64
	// Namespaces is set when clone was called with namespace flags.
	Namespaces bool
}

// maxPersonas bounds the personality arguments kept; beyond it the
// recorded profile allows personality with any argument.
const maxPersonas = 16

// Comments that mark the groups of a recorded profile. Merge keeps rules
// with the same comment together.
const (
	CommentWorkload     = "recorded: used by the workload"
	CommentRuntime      = "recorded: used only by the runtime (runc init) before the container's first execve"
	CommentRuntimeNeeds = "not recorded: runc needs these after it loads the filter (seccomp.RuntimeSyscalls), or the recording filter never sends them to the recorder (seccomp.NotNotified)"
	commentClone3       = "clone3 fails with ENOSYS, as while recording, so libc falls back to clone"
)

// RecordedProfile builds the minimal default-deny profile (SCMP_ACT_ERRNO
// with EPERM, denials logged) that allows what was recorded: the
// workload's syscalls, the runtime's (marked by comment), and what runc
// needs after loading the filter or the recorder cannot see
// (RuntimeSyscalls, NotNotified). personality is allowed only with the
// recorded arguments and clone only without namespace flags unless the
// workload used them. clone3 fails with ENOSYS as it did while recording.
func RecordedProfile(calls []RecordedSyscall) *Profile {
	eperm, enosys := uint(1), uint(38)
	p := &Profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
	}
	host := goArchSpec(HostArch())
	if host != "" {
		p.Architectures = []specs.Arch{host}
	}
	type agg struct {
		runtime    bool
		personas   []uint64
		anyPersona bool
		namespaces bool
	}
	byName := map[string]*agg{}
	var names []string
	for _, c := range calls {
		if !SyscallKnown(c.Name) {
			// Only libseccomp's names can be written into a profile.
			continue
		}
		if c.Arch != "" && !slices.Contains(p.Architectures, c.Arch) {
			p.Architectures = append(p.Architectures, c.Arch)
		}
		a := byName[c.Name]
		if a == nil {
			a = &agg{runtime: true}
			byName[c.Name] = a
			names = append(names, c.Name)
		}
		a.runtime = a.runtime && c.Runtime
		a.namespaces = a.namespaces || c.Namespaces
		if len(c.Personas) > maxPersonas {
			a.anyPersona = true
		}
		for _, v := range c.Personas {
			if !slices.Contains(a.personas, v) {
				a.personas = append(a.personas, v)
			}
		}
	}
	slices.Sort(names)
	var workload, runtime []string
	var conditional []Syscall
	for _, n := range names {
		a := byName[n]
		comment := CommentWorkload
		if a.runtime {
			comment = CommentRuntime
		}
		switch {
		case n == "clone3" || slices.Contains(notNotified, n):
			continue
		case n == "personality" && !a.anyPersona && len(a.personas) > 0 && len(a.personas) <= maxPersonas:
			slices.Sort(a.personas)
			for _, v := range a.personas {
				conditional = append(conditional, Syscall{
					Names: []string{n}, Action: specs.ActAllow, Comment: fmt.Sprintf("%s: personality(%#x)", comment, v),
					Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}},
				})
			}
			continue
		case n == "clone" && !a.namespaces:
			conditional = append(conditional, Syscall{
				Names: []string{n}, Action: specs.ActAllow, Comment: comment + ": clone, never with namespace flags",
				Args: []specs.LinuxSeccompArg{{Index: cloneFlagsArg(), Value: namespaceCloneFlags, Op: specs.OpMaskedEqual}},
			})
			continue
		}
		if a.runtime {
			runtime = append(runtime, n)
		} else {
			workload = append(workload, n)
		}
	}
	if len(workload) > 0 {
		p.Syscalls = append(p.Syscalls, Syscall{Names: workload, Action: specs.ActAllow, Comment: CommentWorkload})
	}
	if len(runtime) > 0 {
		p.Syscalls = append(p.Syscalls, Syscall{Names: runtime, Action: specs.ActAllow, Comment: CommentRuntime})
	}
	// What runc needs after loading the filter, whether or not this
	// recording happened to see it, so a recorded profile starts a
	// container on its own.
	var needs []string
	for _, n := range append(RuntimeSyscalls(true), notNotified...) {
		if byName[n] != nil && !slices.Contains(notNotified, n) || slices.Contains(needs, n) {
			continue
		}
		if n == "clone" {
			conditional = append(conditional, Syscall{
				Names: []string{n}, Action: specs.ActAllow, Comment: CommentRuntimeNeeds + ": clone, never with namespace flags",
				Args: []specs.LinuxSeccompArg{{Index: cloneFlagsArg(), Value: namespaceCloneFlags, Op: specs.OpMaskedEqual}},
			})
			continue
		}
		needs = append(needs, n)
	}
	slices.Sort(needs)
	p.Syscalls = append(p.Syscalls, Syscall{Names: needs, Action: specs.ActAllow, Comment: CommentRuntimeNeeds})
	p.Syscalls = append(p.Syscalls, conditional...)
	p.Syscalls = append(p.Syscalls, Syscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys, Comment: commentClone3})
	return p
}

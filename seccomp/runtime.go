package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtimeSyscallsNNP are the syscalls runc 1.5 makes after it has loaded the
// container's filter when NoNewPrivileges is set (secrun's default). runc
// then loads the filter as late as it can, just before execve, so only
// these follow. Recorded from runc v1.5.2 with the notify recorder
// (TestKernelRuntimeSyscallsRecorded keeps checking it) plus what the
// recorder cannot see (NotNotified) and what the Go runtime may do under
// load.
var runtimeSyscallsNNP = []string{
	// runc init: send the notify fd to the parent and read its answer on
	// the sync socket (write, recvfrom, read), close the sync and log
	// pipes, reopen the exec fifo through /proc/self/fd with
	// openat2/statx/fstatfs checks, write to it, close every fd it does not
	// pass on (reading /proc/self/fd), then execve. runc never uses
	// execveat.
	"close", "execve", "fcntl", "fstat", "fstatfs", "getdents64", "openat",
	"openat2", "read", "recvfrom", "statx", "write",
	// The Go runtime under runc init keeps scheduling: futex waits and
	// wakeups, new threads (clone, allowed without namespace flags only),
	// preemption signals, the netpoller, heap growth.
	"clone", "epoll_ctl", "epoll_pwait", "futex", "getpid", "gettid", "madvise",
	"mmap", "munmap", "nanosleep", "rt_sigprocmask", "rt_sigreturn",
	"sched_yield", "sigaltstack", "tgkill",
	// Every process must be able to end; a profile without these leaves a
	// failing `runc init` or container process unable to exit.
	"exit", "exit_group",
}

// runtimeSyscallsPriv are the additional syscalls runc makes after loading
// the filter when NoNewPrivileges is off: without no_new_privs runc must
// load the filter while it still has CAP_SYS_ADMIN, before it switches user,
// drops capabilities and looks up the command (finalizeNamespace,
// exec.LookPath). Recorded from runc v1.5.2.
var runtimeSyscallsPriv = []string{
	"capget", "capset", "chdir", "close_range", "faccessat2", "getcwd",
	"getppid", "newfstatat", "prctl", "setgid", "setgroups", "setuid",
}

// RuntimeSyscalls lists what runc needs to be allowed by a container's
// filter to get from loading it to the container's first execve.
func RuntimeSyscalls(noNewPrivileges bool) []string {
	out := slices.Clone(runtimeSyscallsNNP)
	if !noNewPrivileges {
		out = append(out, runtimeSyscallsPriv...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EnsureRuntimeSyscalls makes s allow what runc itself needs after the
// filter is loaded, for a container with NoNewPrivileges (secrun's default),
// and returns what it had to add, sorted, so the caller can report it. Use
// EnsureRuntimeSyscallsFor when no_new_privs is off.
func EnsureRuntimeSyscalls(s *specs.LinuxSeccomp) (added []string) {
	return EnsureRuntimeSyscallsFor(s, true)
}

// EnsureRuntimeSyscallsFor is EnsureRuntimeSyscalls for either setting of
// NoNewPrivileges.
//
// Each needed syscall is checked with the arguments runc actually passes,
// by running the compiled filter in a userspace BPF interpreter: a profile
// that allows clone only without namespace flags is enough for the Go
// runtime's thread creation. Allowing, logging and notifying (the agent
// answers) all count as permitted. A syscall that is not permitted gets an
// allow rule (for clone: only without namespace flags), and a rule that
// denies it outright loses that name, since the container could not start
// (or, for exit_group, could not end) with it. Every such name is returned.
func EnsureRuntimeSyscallsFor(s *specs.LinuxSeccomp, noNewPrivileges bool) (added []string) {
	if s == nil || permits(s.DefaultAction) {
		return nil
	}
	var need []runtimeCall
	prog, err := Compile(s)
	for _, c := range runtimeCalls(noNewPrivileges) {
		if _, ok := SyscallNumber(c.name); !ok {
			// Not a syscall of this architecture; runc cannot call it.
			continue
		}
		if err == nil {
			if v, cerr := prog.Check(c.name, c.args...); cerr == nil && (v.Allowed() || v.Action == specs.ActNotify) {
				continue
			}
		} else if unconditionallyPermitted(s, c.name) {
			continue
		}
		need = append(need, c)
	}
	if len(need) == 0 {
		return nil
	}
	var plain []string
	for _, c := range need {
		removeDenials(s, c.name, false)
		added = append(added, c.name)
		if c.rule != nil {
			s.Syscalls = append(s.Syscalls, *c.rule)
		} else {
			plain = append(plain, c.name)
		}
	}
	if len(plain) > 0 {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: plain, Action: specs.ActAllow})
	}
	// A conditional rule that denies exactly runc's arguments still wins
	// over the new allow rule; drop the name from it too.
	if prog, err := Compile(s); err == nil {
		for _, c := range need {
			if v, cerr := prog.Check(c.name, c.args...); cerr != nil || !(v.Allowed() || v.Action == specs.ActNotify) {
				removeDenials(s, c.name, true)
			}
		}
	}
	slices.Sort(added)
	return added
}

// runtimeCall is a syscall runc makes after loading the filter, with
// representative arguments, and the rule to add when it is missing (nil:
// allow it unconditionally).
type runtimeCall struct {
	name string
	args []uint64
	rule *specs.LinuxSyscall
}

const (
	// goThreadCloneFlags is what the Go runtime passes to clone to start a
	// thread: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_SYSVSEM|CLONE_THREAD.
	goThreadCloneFlags = 0x00050f00
	// namespaceCloneFlags are the clone flags that create namespaces:
	// CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|
	// CLONE_NEWPID|CLONE_NEWNET.
	namespaceCloneFlags = 0x7e020000
)

func runtimeCalls(noNewPrivileges bool) []runtimeCall {
	var out []runtimeCall
	for _, n := range RuntimeSyscalls(noNewPrivileges) {
		c := runtimeCall{name: n}
		if n == "clone" {
			c.args = []uint64{goThreadCloneFlags}
			c.rule = &specs.LinuxSyscall{
				Names:  []string{"clone"},
				Action: specs.ActAllow,
				Args:   []specs.LinuxSeccompArg{{Index: cloneFlagsArg(), Value: namespaceCloneFlags, Op: specs.OpMaskedEqual}},
			}
		}
		out = append(out, c)
	}
	return out
}

// cloneFlagsArg is the index of clone's flags argument: s390 swaps the
// first two.
func cloneFlagsArg() uint {
	if HostArch() == "s390x" || HostArch() == "s390" {
		return 1
	}
	return 0
}

func permits(a specs.LinuxSeccompAction) bool {
	return a == specs.ActAllow || a == specs.ActLog || a == specs.ActNotify
}

func unconditionallyPermitted(s *specs.LinuxSeccomp, name string) bool {
	for _, r := range s.Syscalls {
		if len(r.Args) == 0 && permits(r.Action) && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

// removeDenials drops name from every rule that does not permit it (only
// from unconditional ones unless conditional is set), and drops rules
// left without names.
func removeDenials(s *specs.LinuxSeccomp, name string, conditional bool) {
	kept := s.Syscalls[:0]
	for _, r := range s.Syscalls {
		if !permits(r.Action) && (conditional || len(r.Args) == 0) && slices.Contains(r.Names, name) {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return n == name })
			if len(r.Names) == 0 {
				continue
			}
		}
		kept = append(kept, r)
	}
	s.Syscalls = kept
}

package seccomp

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxErrno is the largest value the kernel accepts as an errno return.
const maxErrno = 4095

// Validate checks the profile the way runc and Docker would use it, and
// stricter: unknown syscall names, architectures, actions, operators, flags
// and capabilities are errors naming the entry. Every rule is also compiled
// with libseccomp for the host architecture, so what libseccomp refuses is
// caught here rather than inside `runc init`.
func (p *Profile) Validate() error {
	if p == nil {
		return &ProfileError{Err: errors.New("no profile")}
	}
	if err := p.validateStatic(); err != nil {
		return err
	}
	return p.validateCompile()
}

func fieldErr(field string, format string, a ...any) error {
	return &ProfileError{Field: field, Err: fmt.Errorf(format, a...)}
}

func (p *Profile) validateStatic() error {
	if p.DefaultAction == "" {
		return fieldErr("defaultAction", "missing; set it (for example SCMP_ACT_ERRNO), or use --security-opt seccomp=unconfined to run without seccomp")
	}
	if !actions[p.DefaultAction] {
		return fieldErr("defaultAction", "unknown action %q", p.DefaultAction)
	}
	if p.DefaultAction == specs.ActNotify {
		// runc refuses this: its own write() of the notify fd would be notified.
		return fieldErr("defaultAction", "SCMP_ACT_NOTIFY cannot be the default action (runc would deadlock); list the syscalls to notify instead")
	}
	if err := checkErrno(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return &ProfileError{Field: "defaultErrnoRet", Err: err}
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return fieldErr("archMap", "both architectures and archMap are set; use one of them")
	}
	for i, a := range p.Architectures {
		if err := checkArch(a); err != nil {
			return &ProfileError{Field: fmt.Sprintf("architectures[%d]", i), Err: err}
		}
	}
	for i, m := range p.ArchMap {
		if err := checkArch(m.Arch); err != nil {
			return &ProfileError{Field: fmt.Sprintf("archMap[%d].architecture", i), Err: err}
		}
		for j, a := range m.SubArches {
			if err := checkArch(a); err != nil {
				return &ProfileError{Field: fmt.Sprintf("archMap[%d].subArchitectures[%d]", i, j), Err: err}
			}
		}
	}
	for i, f := range p.Flags {
		if !flags[f] {
			return fieldErr(fmt.Sprintf("flags[%d]", i), "unknown flag %q (runc knows SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_FILTER_FLAG_TSYNC)", f)
		}
	}
	if p.ListenerPath != "" && !filepath.IsAbs(p.ListenerPath) {
		return fieldErr("listenerPath", "%q is not an absolute path", p.ListenerPath)
	}
	notify := false
	for i := range p.Syscalls {
		if err := p.Syscalls[i].validate(); err != nil {
			return &ProfileError{Field: fmt.Sprintf("syscalls[%d]", i), Err: err}
		}
		if p.Syscalls[i].Action == specs.ActNotify {
			notify = true
		}
	}
	if notify && p.ListenerPath == "" {
		return fieldErr("listenerPath", "rules use SCMP_ACT_NOTIFY but no listenerPath names the agent that answers them")
	}
	return nil
}

func (s *Syscall) validate() error {
	if s.Name != "" && len(s.Names) > 0 {
		return errors.New("both name and names are set; use names")
	}
	names := s.names()
	if len(names) == 0 {
		return errors.New("no syscall names")
	}
	for _, n := range names {
		if n == "" {
			return errors.New("empty syscall name")
		}
		if !SyscallKnown(n) {
			return fmt.Errorf("unknown syscall %q; check the spelling", n)
		}
	}
	if s.Action == "" {
		return errors.New("missing action")
	}
	if !actions[s.Action] {
		return fmt.Errorf("unknown action %q", s.Action)
	}
	if s.Action == specs.ActNotify {
		for _, n := range names {
			if n == "write" {
				return errors.New("SCMP_ACT_NOTIFY cannot be used for write (runc sends the notify fd with write and would deadlock)")
			}
		}
	}
	if err := checkErrno(s.Action, s.ErrnoRet); err != nil {
		return err
	}
	for j, a := range s.Args {
		if a.Index > 5 {
			return fmt.Errorf("args[%d]: index %d out of range 0-5", j, a.Index)
		}
		if !operators[a.Op] {
			return fmt.Errorf("args[%d]: unknown operator %q", j, a.Op)
		}
	}
	if err := s.Includes.validate(); err != nil {
		return fmt.Errorf("includes: %w", err)
	}
	if err := s.Excludes.validate(); err != nil {
		return fmt.Errorf("excludes: %w", err)
	}
	return nil
}

func (s *Syscall) names() []string {
	if s.Name != "" {
		return []string{s.Name}
	}
	return s.Names
}

var knownCaps = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = true
	}
	return m
}()

func (f *Filter) validate() error {
	if f == nil {
		return nil
	}
	for i, c := range f.Caps {
		if !knownCaps[c] {
			return fmt.Errorf("caps[%d]: unknown capability %q (write it as CAP_SYS_ADMIN)", i, c)
		}
	}
	for i, a := range f.Arches {
		if !filterArches[a] {
			return fmt.Errorf("arches[%d]: unknown architecture %q (write it as amd64, arm64, x86, ...)", i, a)
		}
	}
	return nil
}

func checkErrno(act specs.LinuxSeccompAction, errno *uint) error {
	if errno == nil {
		return nil
	}
	if act != specs.ActErrno && act != specs.ActTrace {
		return fmt.Errorf("errnoRet is set but action %s returns no errno; use SCMP_ACT_ERRNO", act)
	}
	if *errno > maxErrno {
		return fmt.Errorf("errnoRet %d out of range 0-%d", *errno, maxErrno)
	}
	return nil
}

func checkArch(a specs.Arch) error {
	if _, ok := specArches[a]; !ok {
		return fmt.Errorf("unknown architecture %q (write it as SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)", a)
	}
	if !archSupported(a) {
		return fmt.Errorf("architecture %q is not supported by this libseccomp", a)
	}
	return nil
}

// SyscallKnown reports whether name is a Linux syscall: one libseccomp can
// resolve on some architecture, or one added to Linux recently enough that
// an older libseccomp does not know it yet.
func SyscallKnown(name string) bool {
	return recentSyscalls[name] || libseccompKnows(name)
}

// validateCompile adds every rule to a scratch libseccomp filter for the
// host architecture, with no include/exclude filtering, so each entry is
// checked even if the host's capability set would drop it.
func (p *Profile) validateCompile() error {
	for i := range p.Syscalls {
		s := &p.Syscalls[i]
		if err := checkRule(p.DefaultAction, p.DefaultErrnoRet, specs.LinuxSyscall{
			Names: s.names(), Action: s.Action, ErrnoRet: s.ErrnoRet, Args: s.Args,
		}); err != nil {
			return &ProfileError{Field: fmt.Sprintf("syscalls[%d]", i), Err: err}
		}
	}
	return nil
}

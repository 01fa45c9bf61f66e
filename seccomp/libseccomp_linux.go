//go:build linux && cgo

package seccomp

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func libseccompKnows(name string) bool {
	_, err := libseccomp.GetSyscallFromName(name)
	return err == nil
}

func archSupported(a specs.Arch) bool {
	_, err := libseccomp.GetArchFromString(specArches[a])
	return err == nil
}

// LibseccompVersion reports the libseccomp library secrun is linked with.
func LibseccompVersion() string {
	maj, min, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, min, micro)
}

func scmpAction(act specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	ret := func(a libseccomp.ScmpAction) libseccomp.ScmpAction {
		if errno != nil {
			return a.SetReturnCode(int16(*errno))
		}
		// runc's default return code for ERRNO and TRACE.
		return a.SetReturnCode(int16(unix.EPERM))
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActErrno:
		return ret(libseccomp.ActErrno), nil
	case specs.ActTrace:
		return ret(libseccomp.ActTrace), nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", act)
}

func scmpOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
}

// addRule adds one rule the way runc 1.5 does (libcontainer/seccomp
// matchCall): a rule whose action equals the default is skipped, a name
// libseccomp cannot resolve is skipped (the default action applies), and
// conditions that repeat an argument index become separate rules (OR)
// instead of one rule (AND).
func addRule(f *libseccomp.ScmpFilter, defAct libseccomp.ScmpAction, r specs.LinuxSyscall) error {
	act, err := scmpAction(r.Action, r.ErrnoRet)
	if err != nil {
		return err
	}
	if act == defAct {
		return nil
	}
	var conds []libseccomp.ScmpCondition
	var perIndex [6]int
	repeated := false
	for _, a := range r.Args {
		op, err := scmpOp(a.Op)
		if err != nil {
			return err
		}
		if a.Index > 5 {
			return fmt.Errorf("argument index %d out of range 0-5", a.Index)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("argument condition %+v: %w", a, err)
		}
		perIndex[a.Index]++
		if perIndex[a.Index] > 1 {
			repeated = true
		}
		conds = append(conds, c)
	}
	for _, name := range r.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue
		}
		switch {
		case len(conds) == 0:
			err = f.AddRule(nr, act)
		case repeated:
			for _, c := range conds {
				if err = f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					break
				}
			}
		default:
			err = f.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return fmt.Errorf("libseccomp rejects the rule for %s: %w", name, err)
		}
	}
	return nil
}

// checkRule compiles one rule into a scratch filter.
func checkRule(defAction specs.LinuxSeccompAction, defErrno *uint, r specs.LinuxSyscall) error {
	def, err := scmpAction(defAction, defErrno)
	if err != nil {
		return err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return fmt.Errorf("creating libseccomp filter: %w", err)
	}
	defer f.Release()
	return addRule(f, def, r)
}

// optimizeThreshold mirrors runc 1.5: it turns on libseccomp's binary-tree
// optimisation (SCMP_FLTATR_CTL_OPTIMIZE=2) by itself when a profile has
// more than 32 syscall rules after expanding names. No OCI flag or
// annotation controls it.
const optimizeThreshold = 32

// compile builds the libseccomp filter runc would build for s on this host.
func compile(s *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	if s == nil {
		return nil, errors.New("no seccomp section")
	}
	def, err := scmpAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("creating libseccomp filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	for _, a := range s.Architectures {
		name, known := specArches[a]
		if !known {
			return nil, fmt.Errorf("unknown architecture %q", a)
		}
		arch, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return nil, fmt.Errorf("architecture %q: %w", a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("adding architecture %q: %w", a, err)
		}
	}
	n := 0
	for _, r := range s.Syscalls {
		n += len(r.Names)
	}
	if n > optimizeThreshold {
		if err := f.SetOptimize(2); err != nil {
			return nil, fmt.Errorf("enabling libseccomp binary-tree optimisation: %w", err)
		}
	}
	for i, r := range s.Syscalls {
		if err := addRule(f, def, r); err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
	}
	ok = true
	return f, nil
}

// ExportBPF returns the classic BPF program (struct sock_filter[], host
// byte order) that libseccomp generates for s on this host, as runc builds
// it before loading. runc adds a -ENOSYS stub for syscalls newer than the
// profile unless its default action already returns ENOSYS: see
// LoadableAsIs.
func ExportBPF(s *specs.LinuxSeccomp) ([]byte, error) { return exportBPF(s) }

// exportBPF returns the classic BPF program libseccomp generates for s.
func exportBPF(s *specs.LinuxSeccomp) ([]byte, error) {
	f, err := compile(s)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	if b, err := f.ExportBPFMem(); err == nil {
		return b, nil
	}
	// libseccomp < 2.6 has no in-memory export; go through a memfd.
	fd, err := unix.MemfdCreate("secrun-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for BPF export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "secrun-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("exporting BPF: %w", err)
	}
	if _, err := file.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("reading exported BPF: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading exported BPF: %w", err)
	}
	b := make([]byte, st.Size())
	if _, err := file.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading exported BPF: %w", err)
	}
	return b, nil
}

// BPFSize compiles s with libseccomp as runc would on this host (including
// the binary-tree optimisation runc enables for long profiles) and returns
// the number of BPF instructions. runc's own -ENOSYS stub for syscalls newer
// than the profile adds a few instructions at load time on top of this.
func BPFSize(s *specs.LinuxSeccomp) (instructions int, err error) {
	p, err := Compile(s)
	if err != nil {
		return 0, err
	}
	return p.Len(), nil
}

// SyscallNumber resolves a syscall name on the host architecture; ok is
// false for names the host does not have.
func SyscallNumber(name string) (nr int, ok bool) {
	s, err := libseccomp.GetSyscallFromName(name)
	if err != nil || int32(s) < 0 {
		return 0, false
	}
	return int(s), true
}

// SyscallName names a syscall number of the host architecture.
func SyscallName(nr int) (string, bool) {
	n, err := libseccomp.ScmpSyscall(nr).GetName()
	if err != nil {
		return "", false
	}
	return n, true
}

// hostAuditArch is the AUDIT_ARCH_* value of the host architecture, as the
// kernel puts it into seccomp_data.arch.
func hostAuditArch() (uint32, error) {
	a, err := libseccomp.GetNativeArch()
	if err != nil {
		return 0, err
	}
	switch a {
	case libseccomp.ArchAMD64:
		return unix.AUDIT_ARCH_X86_64, nil
	case libseccomp.ArchX86:
		return unix.AUDIT_ARCH_I386, nil
	case libseccomp.ArchARM64:
		return unix.AUDIT_ARCH_AARCH64, nil
	case libseccomp.ArchARM:
		return unix.AUDIT_ARCH_ARM, nil
	case libseccomp.ArchRISCV64:
		return unix.AUDIT_ARCH_RISCV64, nil
	case libseccomp.ArchS390X:
		return unix.AUDIT_ARCH_S390X, nil
	case libseccomp.ArchPPC64LE:
		return unix.AUDIT_ARCH_PPC64LE, nil
	}
	return 0, fmt.Errorf("no audit arch known for %s", a)
}

// Program is a profile compiled to BPF by libseccomp, for inspection and
// for checking decisions without loading it into the kernel.
type Program struct {
	bpf  []byte
	arch uint32
}

// Compile compiles s for the host as runc would (see BPFSize).
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	b, err := exportBPF(s)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp profile: %w", err)
	}
	arch, err := hostAuditArch()
	if err != nil {
		return nil, err
	}
	return &Program{bpf: b, arch: arch}, nil
}

// Len is the number of BPF instructions.
func (p *Program) Len() int { return len(p.bpf) / 8 }

// Check runs the program in a userspace BPF interpreter for the named
// syscall of the host architecture with the given arguments (missing ones
// are zero). runc's -ENOSYS stub for syscalls newer than the profile is not
// part of the program; the kernel result for those is ENOSYS.
func (p *Program) Check(name string, args ...uint64) (Verdict, error) {
	nr, ok := SyscallNumber(name)
	if !ok {
		return Verdict{}, fmt.Errorf("syscall %q does not exist on this architecture", name)
	}
	return p.CheckNumber(nr, args...)
}

// CheckNumber is Check for a syscall number.
func (p *Program) CheckNumber(nr int, args ...uint64) (Verdict, error) {
	v, _, err := p.traceNumber(nr, args)
	return v, err
}

// Trace is Check that also returns how many BPF instructions the decision
// took: the filter's share of the syscall's cost, deterministic where
// timings are not.
func (p *Program) Trace(name string, args ...uint64) (Verdict, int, error) {
	nr, ok := SyscallNumber(name)
	if !ok {
		return Verdict{}, 0, fmt.Errorf("syscall %q does not exist on this architecture", name)
	}
	return p.traceNumber(nr, args)
}

func (p *Program) traceNumber(nr int, args []uint64) (Verdict, int, error) {
	if len(args) > 6 {
		return Verdict{}, 0, fmt.Errorf("%d arguments; syscalls take at most 6", len(args))
	}
	d := seccompData{nr: int32(nr), arch: p.arch}
	copy(d.args[:], args)
	ret, steps, err := runBPF(p.bpf, d.bytes())
	if err != nil {
		return Verdict{}, steps, err
	}
	return verdictOf(ret), steps, nil
}

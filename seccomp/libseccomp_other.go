//go:build !linux || !cgo

package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrUnsupported is returned where libseccomp is needed but secrun was
// built without it (not Linux, or CGO_ENABLED=0).
var ErrUnsupported = errors.New("seccomp: libseccomp support not built in (needs Linux and cgo)")

func libseccompKnows(string) bool { return false }

func archSupported(specs.Arch) bool { return true }

// LibseccompVersion reports that no libseccomp is linked.
func LibseccompVersion() string { return "none" }

func checkRule(specs.LinuxSeccompAction, *uint, specs.LinuxSyscall) error { return ErrUnsupported }

// BPFSize needs libseccomp.
func BPFSize(*specs.LinuxSeccomp) (int, error) { return 0, ErrUnsupported }

// ExportBPF needs libseccomp.
func ExportBPF(*specs.LinuxSeccomp) ([]byte, error) { return nil, ErrUnsupported }

// SyscallNumber needs libseccomp.
func SyscallNumber(string) (int, bool) { return 0, false }

// SyscallName needs libseccomp.
func SyscallName(int) (string, bool) { return "", false }

// Program needs libseccomp.
type Program struct{}

// Compile needs libseccomp.
func Compile(*specs.LinuxSeccomp) (*Program, error) { return nil, ErrUnsupported }

// Len needs libseccomp.
func (p *Program) Len() int { return 0 }

// Check needs libseccomp.
func (p *Program) Check(string, ...uint64) (Verdict, error) { return Verdict{}, ErrUnsupported }

// CheckNumber needs libseccomp.
func (p *Program) CheckNumber(int, ...uint64) (Verdict, error) { return Verdict{}, ErrUnsupported }

// Trace needs libseccomp.
func (p *Program) Trace(string, ...uint64) (Verdict, int, error) { return Verdict{}, 0, ErrUnsupported }

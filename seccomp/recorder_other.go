//go:build !linux || !cgo

package seccomp

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Recorder needs Linux and libseccomp.
type Recorder struct{}

// NewRecorder needs Linux and libseccomp.
func NewRecorder(string) (*Recorder, error) { return nil, ErrUnsupported }

// HealthCheck needs Linux and libseccomp.
func HealthCheck(string) error { return ErrUnsupported }

// Path needs Linux and libseccomp.
func (r *Recorder) Path() string { return "" }

// WaitAttached needs Linux and libseccomp.
func (r *Recorder) WaitAttached(context.Context) error { return ErrUnsupported }

// Wait needs Linux and libseccomp.
func (r *Recorder) Wait(context.Context) error { return ErrUnsupported }

// Stop needs Linux and libseccomp.
func (r *Recorder) Stop() error { return ErrUnsupported }

// Containers needs Linux and libseccomp.
func (r *Recorder) Containers() []specs.ContainerProcessState { return nil }

// Syscalls needs Linux and libseccomp.
func (r *Recorder) Syscalls() []RecordedSyscall { return nil }

// Profile needs Linux and libseccomp.
func (r *Recorder) Profile() *Profile { return nil }

// NotifyProfile needs Linux and libseccomp; it returns nil.
func NotifyProfile(string) *specs.LinuxSeccomp { return nil }

package runner

import (
	"fmt"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/seccomp"
)

var defaultProfile = sync.OnceValues(profiles.DefaultSeccompUnchecked)

// DefaultSeccompSource resolves --security-opt seccomp= values: "default"
// is secrun's built-in profile, a path a Docker-format profile file. The
// syscalls runc needs after the filter is loaded are added, and reported for
// custom profiles.
func DefaultSeccompSource(value string, granted []string, noNewPrivileges bool) (*specs.LinuxSeccomp, []string, error) {
	custom := value != "default"
	if !custom {
		// The built-in profile is validated by its tests, not on every
		// start (that would load libseccomp, milliseconds per start).
		p, err := defaultProfile()
		if err != nil {
			return nil, nil, err
		}
		s, err := p.ToOCIValidated(granted)
		if err != nil {
			return nil, nil, fmt.Errorf("seccomp profile %s: %w", value, err)
		}
		// The built-in profile already allows what runc needs after the
		// filter loads, for every capability set and either setting of
		// no_new_privs: TestDefaultProfileNeedsNoRuntimeSyscalls pins it, so
		// the check (a filter compilation, tens of milliseconds) is not paid
		// on every start.
		return s, nil, nil
	}
	p, err := seccomp.LoadFile(value)
	if err != nil {
		return nil, nil, err
	}
	s, err := p.ToOCI(granted)
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp profile %s: %w", value, err)
	}
	// Without no_new_privs runc loads the filter earlier and needs more
	// syscalls after it.
	added := seccomp.EnsureRuntimeSyscallsFor(s, noNewPrivileges)
	var notes []string
	if len(added) > 0 {
		notes = append(notes, fmt.Sprintf("seccomp profile %s: allowed %s, which the runtime needs after the filter loads", value, strings.Join(added, ", ")))
	}
	return s, notes, nil
}

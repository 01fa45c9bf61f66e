package runner

import (
	"testing"

	"github.com/secrun/secrun/caps"
	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/seccomp"
)

// DefaultSeccompSource skips EnsureRuntimeSyscalls for the built-in profile;
// this is the promise that makes that safe.
func TestDefaultProfileNeedsNoRuntimeSyscalls(t *testing.T) {
	for _, set := range [][]string{nil, {"CAP_NET_BIND_SERVICE"}, caps.DockerDefault, caps.Known()} {
		for _, nnp := range []bool{true, false} {
			s, err := profiles.DefaultSeccomp().ToOCI(set)
			if err != nil {
				t.Fatal(err)
			}
			if added := seccomp.EnsureRuntimeSyscallsFor(s, nnp); len(added) > 0 {
				t.Errorf("caps %v, no_new_privs %v: the default profile lacks %v, which runc needs", set, nnp, added)
			}
		}
	}
}

//go:build !linux

package rootless

import "errors"

// DefaultSources has nothing to read outside Linux.
func DefaultSources() Sources { return Sources{Writable: func(string) bool { return false }} }

// DelegatedCgroup: there are no cgroups outside Linux.
func DelegatedCgroup() (Cgroup, error) {
	return Cgroup{}, errors.Join(ErrNoDelegation, errors.New("cgroups exist only on Linux"))
}

// CgroupLimits is false outside Linux.
func CgroupLimits() bool { return false }

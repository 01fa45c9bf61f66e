package rootless

import "golang.org/x/sys/unix"

// DefaultSources are this process's own cgroup files, with writability
// checked against its effective ids.
func DefaultSources() Sources {
	return Sources{
		ProcCgroup: "/proc/self/cgroup",
		MountInfo:  "/proc/self/mountinfo",
		Writable: func(path string) bool {
			return unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS) == nil
		},
	}
}

// DelegatedCgroup is DelegatedCgroupFrom(DefaultSources()).
func DelegatedCgroup() (Cgroup, error) { return DelegatedCgroupFrom(DefaultSources()) }

// CgroupLimits reports whether containers this process starts can get
// cgroup limits: always as root, rootless only with a delegated cgroup.
func CgroupLimits() bool {
	if !Enabled() {
		return true
	}
	_, err := DelegatedCgroup()
	return err == nil
}

package policy

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/internal/rootless"
)

// DetectHost reports what is true of this host for the policy input's host
// section: the confining LSMs the caller found active (profiles.DetectLSM),
// whether user namespaces can be created, the cgroup layout, and whether
// secrun runs rootless and can apply cgroup limits. secrun run,
// secrun-runc and secrun audit all build host the same way.
func DetectHost(lsm []string) HostInfo {
	if lsm == nil {
		lsm = []string{}
	}
	return HostInfo{LSM: lsm, Userns: UsernsAvailable(), Cgroup: CgroupMode(),
		Rootless: rootless.Enabled(), CgroupLimits: rootless.CgroupLimits()}
}

// CgroupMode reports how cgroups are mounted: "v2" (unified), "hybrid" (v1
// controllers plus a v2 hierarchy at /sys/fs/cgroup/unified) or "v1".
func CgroupMode() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "v1"
}

// UsernsAvailable reports whether this kernel lets secrun create user
// namespaces.
func UsernsAvailable() bool {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return err == nil && n > 0
}

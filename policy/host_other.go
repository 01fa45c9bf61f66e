//go:build !linux

package policy

// DetectHost reports an empty host outside Linux: no LSM, no user
// namespaces, no cgroups.
func DetectHost(lsm []string) HostInfo {
	if lsm == nil {
		lsm = []string{}
	}
	return HostInfo{LSM: lsm}
}

// CgroupMode is "" outside Linux.
func CgroupMode() string { return "" }

// UsernsAvailable is false outside Linux.
func UsernsAvailable() bool { return false }

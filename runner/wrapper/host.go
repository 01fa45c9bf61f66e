package wrapper

import (
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
)

// HostInfo is what the policy input says about this host, built exactly as
// for `secrun run` and `secrun audit`.
func HostInfo() policy.HostInfo {
	return policy.DetectHost(profiles.DetectLSM().Active())
}

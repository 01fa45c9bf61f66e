package audit

import (
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
)

// detectHost builds the host document the policies see, exactly as
// `secrun run` and secrun-runc do.
func detectHost() (policy.HostInfo, error) {
	return policy.DetectHost(profiles.DetectLSM().Active()), nil
}

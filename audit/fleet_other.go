//go:build !linux

package audit

import (
	"errors"

	"github.com/secrun/secrun/policy"
)

// errFleetUnsupported: the fleet audit reads /proc and cgroups.
var errFleetUnsupported = errors.New("secrun audit reads /proc and cgroups: it needs Linux")

// Effective needs Linux.
func Effective(int) (EffectiveState, error) { return EffectiveState{}, errFleetUnsupported }

func detectHost() (policy.HostInfo, error) { return policy.HostInfo{}, errFleetUnsupported }

type procReader struct {
	hostNS     map[string]uint64
	hostNSFrom string
}

func newProcReader(string) (*procReader, error) { return nil, errFleetUnsupported }

func (*procReader) container(int) (EffectiveState, error) {
	return EffectiveState{}, errFleetUnsupported
}

func hostNamespaces(string) (map[string]uint64, string, error) {
	return nil, "", errFleetUnsupported
}

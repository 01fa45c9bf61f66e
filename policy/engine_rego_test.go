package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/version"
)

// The decision cache keys on OPAVersion; a stale constant would let a
// decision made by one OPA answer for another.
func TestOPAVersionMatchesModule(t *testing.T) {
	if OPAVersion != version.Version {
		t.Fatalf("policy.OPAVersion is %q but the module builds with OPA %q: update policy/opaversion.go", OPAVersion, version.Version)
	}
}

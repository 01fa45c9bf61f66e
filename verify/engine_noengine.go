//go:build secrun_noengine

package verify

// A build without the engine (the light secrun front) links no sigstore
// verification: trust configs parse and key the verdict cache as usual, and
// a verdict the cache does not hold is policy.ErrNoEngine.
const haveCosign = false

func newCheckers(*rule) ([]sigChecker, error) { return nil, nil }

package profiles

import (
	_ "embed"
	"fmt"

	"github.com/secrun/secrun/seccomp"
)

// defaultSeccompJSON is secrun's built-in seccomp profile, in Docker's
// format so it can be handed to Docker or podman unchanged. Why it differs
// from Docker's default is in seccomp/README.md; the promises it keeps are
// pinned by seccomp_test.go.
//
//go:embed seccomp/default.json
var defaultSeccompJSON []byte

//go:generate go test -run TestDefaultSeccompLiteralMatchesJSON -update

// DefaultSeccomp returns a fresh copy of the built-in default seccomp
// profile. It panics only if the embedded data is invalid, which a test
// guards against.
func DefaultSeccomp() *seccomp.Profile {
	p, err := seccomp.Parse(defaultSeccompJSON)
	if err != nil {
		panic(fmt.Sprintf("profiles: embedded default seccomp profile is invalid: %v", err))
	}
	return p
}

// DefaultSeccompUnchecked is DefaultSeccomp without validation, for the
// container-start path: TestDefaultSeccompIsValid validates the same bytes,
// and seccomp.Profile.ToOCIValidated converts it. It is built from a Go
// literal generated from those bytes (seccomp_default.go, pinned by
// TestDefaultSeccompLiteralMatchesJSON): decoding the JSON cost about 2 ms
// per start.
func DefaultSeccompUnchecked() (*seccomp.Profile, error) {
	return defaultSeccompLiteral(), nil
}

// DefaultSeccompJSON returns the embedded default profile as written.
func DefaultSeccompJSON() []byte {
	return append([]byte(nil), defaultSeccompJSON...)
}

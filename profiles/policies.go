package profiles

import (
	"embed"
	"io/fs"
)

// policyFiles is the built-in Rego policy library: one directory per policy
// (restricted, baseline, cis-docker), each a `package secrun`, and lib/ with
// the findings they share (`package lib.secrun`). Files ending in _test.rego
// are the library's own tests; they are not part of any policy.
//
//go:embed policies
var policyFiles embed.FS

// DefaultPolicy is the built-in policy used when none is named.
const DefaultPolicy = "restricted"

// PolicyLibraryDir is the directory, inside PolicyLibrary, shared by every
// built-in policy.
const PolicyLibraryDir = "lib"

// PolicyNames lists the built-in policies, each a directory of PolicyLibrary.
func PolicyNames() []string {
	return []string{"baseline", "cis-docker", "restricted"}
}

// PolicyLibrary returns the built-in policy library rooted at its top
// directory: "restricted/restricted.rego", "lib/secrun.rego", ...
func PolicyLibrary() (fs.FS, error) {
	return fs.Sub(policyFiles, "policies")
}

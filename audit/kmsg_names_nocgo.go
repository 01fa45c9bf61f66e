//go:build !linux || !cgo

package audit

// syscallName needs libseccomp (cgo); without it records carry the number
// only.
func syscallName(string, int64) string { return "" }

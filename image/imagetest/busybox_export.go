package imagetest

import v1 "github.com/google/go-containerregistry/pkg/v1"

// Busybox builds the busybox test image outside a test (for scripts and the
// demo): Debian's static busybox with its applets linked in /bin.
func Busybox() (v1.Image, error) { return buildBusybox() }

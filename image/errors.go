package image

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched (errors.Is) by every "no such image" or "no such
// signature" error of this package, whether the store or a source lacks it.
var ErrNotFound = errors.New("image not found")

// ErrLimitExceeded is matched by unpack errors caused by an image exceeding
// the decompressed-size or entry-count limit.
var ErrLimitExceeded = errors.New("unpack limit exceeded")

// ErrUnsupported is returned on platforms where layers cannot be unpacked.
var ErrUnsupported = errors.New("image unpacking is only supported on Linux")

// notFoundError carries a complete, user-facing message and matches
// ErrNotFound.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func imageNotFound(ref string) error {
	return &notFoundError{msg: fmt.Sprintf("image %q not found: import it with 'secrun image import %s'", ref, ref)}
}

// UnpackError reports a layer entry that was refused. Entry is the entry's
// name exactly as written in the layer.
type UnpackError struct {
	Entry string
	Err   error
}

func (e *UnpackError) Error() string {
	return fmt.Sprintf("layer entry %q: %v", e.Entry, e.Err)
}

func (e *UnpackError) Unwrap() error { return e.Err }

// DigestError reports content whose digest does not match the digest it is
// stored or referenced under.
type DigestError struct {
	// What names the content: "blob sha256:...", "manifest ...", "layer ...".
	What string
	// Got is the digest the content actually hashes to; empty when the size
	// was already wrong.
	Got  string
	Size string // a size mismatch, when that is what failed
}

func (e *DigestError) Error() string {
	if e.Size != "" {
		return fmt.Sprintf("%s is corrupted: %s; remove the image with 'secrun image rm' and import it again", e.What, e.Size)
	}
	return fmt.Sprintf("%s is corrupted: content hashes to %s; remove the image with 'secrun image rm' and import it again", e.What, e.Got)
}

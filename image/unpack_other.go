//go:build !linux

package image

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Unpack is only available on Linux.
func Unpack(ctx context.Context, layer io.Reader, dest string, opts UnpackOptions) (UnpackReport, error) {
	return UnpackReport{}, ErrUnsupported
}

func unpackLayers(ctx context.Context, dest string, opts UnpackOptions, n int, open func(i int) (io.ReadCloser, v1.Hash, error)) (UnpackReport, error) {
	return UnpackReport{}, ErrUnsupported
}

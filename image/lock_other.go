//go:build !linux

package image

type fileLock struct{}

func lockFile(path string, exclusive bool) (*fileLock, error) { return nil, ErrUnsupported }

func (l *fileLock) Unlock() {}

func syncFS(dir string) error { return ErrUnsupported }

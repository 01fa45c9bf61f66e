package image

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileLock is a held flock(2) lock; Unlock releases it.
type fileLock struct{ f *os.File }

// lockFile takes an flock on path (created if missing), shared or exclusive.
// Locks taken through separate calls exclude each other even within one
// process, because each call opens its own file description.
func lockFile(path string, exclusive bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) Unlock() {
	if l != nil && l.f != nil {
		// Closing the descriptor releases the flock.
		l.f.Close()
		l.f = nil
	}
}

// syncFS flushes the filesystem holding dir, so a freshly unpacked rootfs is
// durable before it is renamed into the cache.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

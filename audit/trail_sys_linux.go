//go:build linux

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const oNoFollow = unix.O_NOFOLLOW

// fileID is the (device, inode) pair naming a file; rotation changes the
// inode behind the trail's path.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Dev, st.Ino
	}
	return 0, 0
}

// withFD runs fn on f's descriptor, retrying on EINTR.
func withFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = fn(int(fd))
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// lockFile takes an exclusive flock; it serializes appends across processes
// (flock locks belong to the open file description, so two Trails in one
// process exclude each other too).
func lockFile(f *os.File) error {
	return withFD(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_EX) })
}

func unlockFile(f *os.File) error {
	return withFD(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_UN) })
}

// fdatasync flushes the file's data and the metadata needed to read it back
// (its size), which is all an append needs.
func fdatasync(f *os.File) error {
	return withFD(f, unix.Fdatasync)
}

// renameNoReplace renames old to new, failing if new exists.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The file system cannot do it atomically; the trail lock keeps other
		// secrun writers out, so check and rename.
		if _, serr := os.Lstat(newpath); serr == nil {
			return fmt.Errorf("rename %s: %s already exists", oldpath, newpath)
		}
		return os.Rename(oldpath, newpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

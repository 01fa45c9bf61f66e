package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// ownedBySelf reports whether path is a directory owned by this process's
// effective uid and writable by no one else (as XDG_RUNTIME_DIR must be).
func ownedBySelf(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == os.Geteuid() && st.Mode&0o022 == 0
}

//go:build linux

package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// openKmsg opens the kernel log positioned after its newest record, so only
// records from now on are read. Reading it needs CAP_SYSLOG unless
// kernel.dmesg_restrict is 0.
func openKmsg() (*os.File, error) {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("kernel seccomp events: opening /dev/kmsg: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return nil, errors.Join(fmt.Errorf("kernel seccomp events: seeking to the end of /dev/kmsg: %w", err), f.Close())
	}
	return f, nil
}

// pidNamespace returns the inode of pid's PID namespace.
func pidNamespace(pid int) (uint64, error) {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return 0, err
	}
	_, ino := fileID(fi)
	return ino, nil
}

func selfPidNamespace() (uint64, error) {
	fi, err := os.Stat("/proc/self/ns/pid")
	if err != nil {
		return 0, err
	}
	_, ino := fileID(fi)
	return ino, nil
}

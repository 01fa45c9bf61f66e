package runner

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// pidWatch waits for the runtime to write a container's pid file, which
// runc does once the container exists and right before its process starts.
// It uses inotify, so nothing polls.
type pidWatch struct {
	path   string
	ino    int
	wd     int    // the watch on the pid file's directory
	cancel [2]int // a pipe: writing to it stops wait
}

func newPidWatch(path string) (*pidWatch, error) {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	wd, err := unix.InotifyAddWatch(ino, filepath.Dir(path), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
	if err != nil {
		unix.Close(ino)
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &pidWatch{path: path, ino: ino, wd: wd}
	if err := unix.Pipe2(w.cancel[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(ino)
		return nil, err
	}
	return w, nil
}

// wait returns the pid once the file is written, or 0 when stopped.
//
// Closing an inotify descriptor that still has a watch waits for the kernel
// to free the watch (an SRCU grace period, 5-15 ms on the development VM),
// so wait removes the watch as soon as it has the pid: the kernel frees it
// in the background while the container runs, and close does not wait.
func (w *pidWatch) wait() (int, error) {
	buf := make([]byte, 4096)
	for {
		if pid, err := readPid(w.path); err == nil && pid > 0 {
			_, _ = unix.InotifyRmWatch(w.ino, uint32(w.wd)) // on failure, close waits
			return pid, nil
		}
		fds := []unix.PollFd{{Fd: int32(w.ino), Events: unix.POLLIN}, {Fd: int32(w.cancel[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, err
		}
		if fds[1].Revents != 0 {
			return 0, nil
		}
		// Drain the events; the file is re-read at the top of the loop.
		if _, err := unix.Read(w.ino, buf); err != nil && !errors.Is(err, unix.EAGAIN) {
			return 0, err
		}
	}
}

// stop makes wait return.
func (w *pidWatch) stop() error {
	// EAGAIN means the pipe is full, which wakes wait just as well.
	if _, err := unix.Write(w.cancel[1], []byte{0}); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("stopping the pid file watch: %w", err)
	}
	return nil
}

func (w *pidWatch) close() {
	unix.Close(w.ino)
	unix.Close(w.cancel[0])
	unix.Close(w.cancel[1])
}

package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inotifyWatches counts the watches an inotify descriptor holds.
func inotifyWatches(t *testing.T, fd int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "inotify wd:")
}

// waitAsync runs w.wait in the background and delivers its pid.
func waitAsync(t *testing.T, w *pidWatch) <-chan int {
	got := make(chan int, 1)
	go func() {
		pid, err := w.wait()
		if err != nil {
			t.Error(err)
		}
		got <- pid
	}()
	return got
}

// wait returns the pid runc writes (to a temporary name, then renamed into
// place), and has let go of its watch by then, so that closing the watch
// does not wait for the kernel to free it.
func TestPidWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pid")
	w, err := newPidWatch(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if n := inotifyWatches(t, w.ino); n != 1 {
		t.Fatalf("%d watches before the pid file, want 1", n)
	}
	got := waitAsync(t, w)
	tmp := filepath.Join(dir, ".pid")
	if err := os.WriteFile(tmp, []byte("4242"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if pid := <-got; pid != 4242 {
		t.Fatalf("wait() = %d, want 4242", pid)
	}
	if n := inotifyWatches(t, w.ino); n != 0 {
		t.Errorf("%d watches left once the pid is known, want 0", n)
	}
}

// stop ends a wait for a pid file that never comes.
func TestPidWatchStop(t *testing.T) {
	w, err := newPidWatch(filepath.Join(t.TempDir(), "pid"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	got := waitAsync(t, w)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if pid := <-got; pid != 0 {
		t.Fatalf("wait() after stop = %d, want 0", pid)
	}
}

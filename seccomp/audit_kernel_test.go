package seccomp_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/seccomp"
)

// auditdRunning reports whether an audit daemon takes the kernel's audit
// records (they then go to its log instead of the kernel log).
func auditdRunning(t *testing.T) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "auditd" {
			return true
		}
	}
	return false
}

// SECCOMP_FILTER_FLAG_LOG in the default profile sends denials to the
// kernel audit stream, and the container still gets its errno.
func TestKernelDefaultProfileLogsDenials(t *testing.T) {
	requireRoot(t)
	if auditdRunning(t) {
		t.Skip("auditd takes the audit records; this test reads them from the kernel log")
	}
	// Raw fd reads: an *os.File would park on the netpoller instead of
	// returning EAGAIN at the end of the log.
	kmsg, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(kmsg)
	if _, err := unix.Seek(kmsg, 0, unix.SEEK_END); err != nil {
		t.Fatal(err)
	}
	s, err := defaultProfile(t).ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	res := runContainer(t, containerSpec{Args: []string{"/bin/probe", "io_uring_setup:0,0"}, Seccomp: s})
	if strings.TrimSpace(res.Stdout) != "io_uring_setup EPERM" {
		t.Fatalf("probe: %q %q", res.Stdout, res.Stderr)
	}
	nr, ok := seccomp.SyscallNumber("io_uring_setup")
	if !ok {
		t.Fatal("io_uring_setup unknown")
	}
	want := fmt.Sprintf("syscall=%d ", nr)
	buf := make([]byte, 8192)
	var seen []string
	for {
		n, err := unix.Read(kmsg, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.EPIPE) {
			continue // records overwritten while reading
		}
		if err != nil {
			t.Fatal(err)
		}
		rec := string(buf[:n])
		if strings.Contains(rec, "type=1326") && strings.Contains(rec, `comm="probe"`) {
			seen = append(seen, rec)
			if strings.Contains(rec, want) && strings.Contains(rec, "code=0x50000") {
				return
			}
		}
	}
	t.Errorf("no seccomp audit record (type=1326, %scode=0x50000 = SECCOMP_RET_ERRNO) for the probe in the kernel log; seen: %q", want, seen)
}

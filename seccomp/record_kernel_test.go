package seccomp_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/seccomp"
)

// busyboxWorkload forks (a subshell and external applets), writes and
// reads a file, and lists a directory.
var busyboxWorkload = []string{"/bin/sh", "-c",
	`echo hello > /tmp/f && cat /tmp/f && (ls / > /dev/null; echo child) && uname -s && id -u`}

const busyboxWant = "hello\nchild\nLinux\n0\n"

// record runs args in a container under the recording filter and returns
// the recorder after the container has exited.
func record(t *testing.T, args []string) (*seccomp.Recorder, containerResult) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rec.sock")
	rec, err := seccomp.NewRecorder(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Stop() })
	if err := seccomp.HealthCheck(sock); err != nil {
		t.Fatal(err)
	}
	res := runContainer(t, containerSpec{Args: args, Seccomp: seccomp.NotifyProfile(sock), Timeout: 90 * time.Second})
	waitRecorder(t, rec)
	return rec, res
}

// waitRecorder waits for the recorded container's processes to be gone,
// then stops the recorder.
func waitRecorder(t *testing.T, rec *seccomp.Recorder) { waitRecorderTB(t, rec) }

func waitRecorderTB(t testing.TB, rec *seccomp.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestKernelRecordBusyboxWorkload(t *testing.T) {
	requireRoot(t)
	rec, res := record(t, busyboxWorkload)
	if res.ExitCode != 0 || res.Stdout != busyboxWant {
		t.Fatalf("workload under the recording filter: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	calls := rec.Syscalls()
	var runtime, workload []string
	for _, c := range calls {
		if c.Arch != specs.ArchX86_64 && seccomp.HostArch() == "amd64" {
			t.Errorf("%s recorded on %s", c.Name, c.Arch)
		}
		if c.Runtime {
			runtime = append(runtime, c.Name)
		} else {
			workload = append(workload, c.Name)
		}
	}
	t.Logf("runtime (before the first execve): %v", runtime)
	t.Logf("workload: %v", workload)
	for _, n := range []string{"execve", "wait4", "openat"} {
		if !slices.Contains(workload, n) {
			t.Errorf("workload syscall %s not recorded", n)
		}
	}
	if len(runtime) == 0 {
		t.Error("no runtime syscalls marked")
	}
	if cs := rec.Containers(); len(cs) != 1 || cs[0].Pid == 0 || cs[0].State.ID == "" {
		t.Errorf("container state from runc: %+v", cs)
	}

	p := rec.Profile()
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err = seccomp.Parse(out)
	if err != nil {
		t.Fatalf("recorded profile invalid: %v\n%s", err, out)
	}
	t.Logf("recorded profile:\n%s", out)
	s, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if added := seccomp.EnsureRuntimeSyscalls(s); len(added) != 0 {
		t.Errorf("recorded profile lacks runtime syscalls %v", added)
	}
	// At most a quarter of what Docker's default allows (with Docker's
	// default capabilities), counting syscalls of the host architecture.
	ours, docker := hostAllowed(s), hostAllowed(resolve(t, dockerProfile(t), dockerCaps))
	t.Logf("recorded profile allows %d host syscalls, Docker's default %d", ours, docker)
	if ours*4 > docker {
		t.Errorf("recorded profile allows %d syscalls, more than a quarter of Docker's %d", ours, docker)
	}

	// The recorded profile runs the workload ...
	again := runContainer(t, containerSpec{Args: busyboxWorkload, Seccomp: s})
	if again.ExitCode != 0 || again.Stdout != busyboxWant {
		t.Errorf("workload under its recorded profile: exit %d, stdout %q, stderr %q", again.ExitCode, again.Stdout, again.Stderr)
	}
	// ... and a syscall it never used fails with EPERM.
	if slices.Contains(workload, "mkdir") || slices.Contains(workload, "mkdirat") {
		t.Fatal("workload used mkdir; pick another unused syscall")
	}
	denied := runContainer(t, containerSpec{Args: []string{"/bin/sh", "-c", "mkdir /tmp/d; echo rc=$?"}, Seccomp: s})
	if !strings.Contains(denied.Stdout, "rc=1") || !strings.Contains(denied.Stderr+denied.Stdout, "Operation not permitted") {
		t.Errorf("mkdir under the recorded profile: exit %d, stdout %q, stderr %q; want EPERM", denied.ExitCode, denied.Stdout, denied.Stderr)
	}
}

// A short-lived container that forks: every child's syscalls arrive on the
// one notify fd, WaitAttached sees runc attach while the container runs,
// and Wait returns once the last process is gone.
func TestKernelRecorderFollowsChildren(t *testing.T) {
	requireRoot(t)
	sock := filepath.Join(t.TempDir(), "rec.sock")
	rec, err := seccomp.NewRecorder(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Stop()
	done := make(chan containerResult, 1)
	go func() {
		res, err := tryRunContainer(t, containerSpec{
			Args:    []string{"/bin/sh", "-c", "sleep 1 & (mkdir /tmp/a && touch /tmp/a/b) & wait; echo done"},
			Seccomp: seccomp.NotifyProfile(sock),
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.WaitAttached(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.ExitCode != 0 || res.Stdout != "done\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	waitRecorder(t, rec)
	var names []string
	for _, c := range rec.Syscalls() {
		names = append(names, c.Name)
	}
	// Only forked children create a directory, touch a file and sleep
	// (nanosleep itself is never notified, see NotNotified).
	for _, alts := range [][]string{{"mkdir", "mkdirat"}, {"utimensat", "utimes", "utime"}, {"clock_nanosleep", "nanosleep"}, {"wait4", "waitid"}, {"clone", "fork", "vfork"}} {
		if !slices.ContainsFunc(alts, func(n string) bool { return slices.Contains(names, n) || slices.Contains(seccomp.NotNotified(), n) }) {
			t.Errorf("none of %v (made by a child process) recorded: %v", alts, names)
		}
	}
	if len(rec.Containers()) != 1 {
		t.Errorf("%d notify fds, want 1", len(rec.Containers()))
	}
}

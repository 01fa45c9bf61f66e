package seccomp_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/seccomp"
)

// What runc does between loading the filter and the container's first
// execve must stay within RuntimeSyscalls (or be invisible to the recorder,
// NotNotified). The recorder marks those calls; run a container that does
// nothing and compare, with and without no_new_privs.
func TestKernelRuntimeSyscallsRecorded(t *testing.T) {
	requireRoot(t)
	for _, nnp := range []bool{true, false} {
		name := "no_new_privs"
		if !nnp {
			name = "without no_new_privs"
		}
		t.Run(name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "rec.sock")
			rec, err := seccomp.NewRecorder(sock)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Stop()
			res := runContainer(t, containerSpec{Args: []string{"/bin/true"}, Seccomp: seccomp.NotifyProfile(sock),
				WithoutNoNewPrivs: !nnp, Caps: []string{"CAP_KILL"}})
			if res.ExitCode != 0 {
				t.Fatalf("exit %d: %s", res.ExitCode, res.Stderr)
			}
			waitRecorder(t, rec)
			allowed := append(seccomp.RuntimeSyscalls(nnp), seccomp.NotNotified()...)
			var pre []string
			for _, c := range rec.Syscalls() {
				if c.BeforeExec == 0 {
					continue
				}
				pre = append(pre, c.Name)
				if !slices.Contains(allowed, c.Name) {
					t.Errorf("runc used %s after loading the filter (%d times); add it to RuntimeSyscalls", c.Name, c.BeforeExec)
				}
			}
			t.Logf("runc after loading the filter: %v", pre)
			if !slices.Contains(pre, "execve") {
				t.Errorf("the container's execve was not seen: %v", pre)
			}
		})
	}
}

// A custom profile that forgets everything runc needs: with
// EnsureRuntimeSyscalls the container starts, runs and ends, and what was
// added is reported.
func TestKernelEnsureRuntimeSyscallsLetsContainerStartAndEnd(t *testing.T) {
	requireRoot(t)
	if seccomp.HostArch() != "amd64" {
		t.Skip("the fixture lists amd64 syscalls")
	}
	p, err := seccomp.LoadFile(filepath.Join("..", "testdata", "seccomp", "custom-no-exit.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	before := len(s.Syscalls)
	bare := &specs.LinuxSeccomp{DefaultAction: s.DefaultAction, Architectures: s.Architectures, Syscalls: slices.Clone(s.Syscalls)}

	added := seccomp.EnsureRuntimeSyscalls(s)
	for _, n := range []string{"exit_group", "exit", "read", "close", "futex"} {
		if !slices.Contains(added, n) {
			t.Errorf("%s not reported as added: %v", n, added)
		}
	}
	if slices.Contains(added, "execve") || slices.Contains(added, "write") {
		t.Errorf("reported names the profile already allowed: %v", added)
	}
	if len(s.Syscalls) <= before {
		t.Fatal("no rule added")
	}
	res := runContainer(t, containerSpec{Args: []string{"/bin/true"}, Seccomp: s})
	if res.ExitCode != 0 {
		t.Errorf("container exit %d: %s", res.ExitCode, res.Stderr)
	}

	// Without the additions runc cannot even start the process.
	res = runContainer(t, containerSpec{Args: []string{"/bin/true"}, Seccomp: bare})
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "runc run failed") {
		t.Errorf("container without runc's syscalls: exit %d, stderr %q; want runc to fail", res.ExitCode, res.Stderr)
	}
}

// A custom Docker-format profile loaded from a file is the filter in
// force: the kernel reports a filter (Seccomp: 2) and the profile's
// distinctive errno comes back.
func TestKernelCustomProfileInForce(t *testing.T) {
	requireRoot(t)
	p, err := seccomp.LoadFile(filepath.Join("..", "testdata", "seccomp", "custom.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if added := seccomp.EnsureRuntimeSyscalls(s); len(added) != 0 {
		t.Errorf("an allow-by-default profile needs nothing added, got %v", added)
	}
	res := runContainer(t, containerSpec{Args: []string{"/bin/probe", "-status"}, Seccomp: s})
	if strings.TrimSpace(res.Stdout) != "Seccomp: 2" {
		t.Errorf("status %q, want Seccomp: 2 (stderr %q)", res.Stdout, res.Stderr)
	}
	res = runContainer(t, containerSpec{Args: []string{"/bin/probe", "uname", "getpid"}, Seccomp: s})
	if got := probeResults(t, res.Stdout); got["uname"] != "ENOTSUP" || got["getpid"] != "OK" {
		t.Errorf("probe under the custom profile: %v", got)
	}
	res = runContainer(t, containerSpec{Args: []string{"/bin/sh", "-c", "mkdir /tmp/d; echo rc=$?"}, Seccomp: s})
	if !strings.Contains(res.Stdout, "rc=1") || !strings.Contains(res.Stderr, "Permission denied") {
		t.Errorf("mkdir under the custom profile: stdout %q stderr %q, want EACCES", res.Stdout, res.Stderr)
	}
	// Unconfined, for contrast: uname(NULL) reaches the kernel and fails with EFAULT. (Linux names EOPNOTSUPP ENOTSUP.)
	res = runContainer(t, containerSpec{Args: []string{"/bin/probe", "-status", "uname"}})
	if !strings.Contains(res.Stdout, "Seccomp: 0") || !strings.Contains(res.Stdout, "uname EFAULT") {
		t.Errorf("without a profile: %q", res.Stdout)
	}
}

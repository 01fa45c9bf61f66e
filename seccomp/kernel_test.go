package seccomp_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/seccomp"
)

// defaultProfile reads secrun's built-in default from its data file (the
// profiles package embeds the same file).
func defaultProfile(t testing.TB) *seccomp.Profile {
	t.Helper()
	p, err := seccomp.LoadFile(filepath.Join(moduleRoot(t), "profiles", "seccomp", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dockerProfile(t testing.TB) *seccomp.Profile {
	t.Helper()
	return mustParse(t, "docker-default.json")
}

// deniedProbes are the always-denied syscalls with arguments that make
// each call harmless if a filter ever let it through (the kernel then
// fails it with EFAULT, EINVAL or EBADF), and the errno the default
// profile must produce.
var deniedProbes = []struct{ call, want string }{
	{"io_uring_setup:0,0", "EPERM"},
	{"io_uring_enter:0xffffffff", "EPERM"},
	{"io_uring_register:0xffffffff", "EPERM"},
	{"userfaultfd:0xffffffff", "EPERM"},
	{"keyctl:0xffffffff", "EPERM"},
	{"add_key:0,0,0,0,0", "EPERM"},
	{"request_key:0,0,0,0", "EPERM"},
	{"bpf:0xffffffff", "EPERM"},
	{"perf_event_open:0,0,0,0,0", "EPERM"},
	{"kexec_load:0,0,0,0xffffffff", "EPERM"},
	{"kexec_file_load:0xffffffff,0xffffffff,0,0,0xffffffff", "EPERM"},
	{"init_module:0,0,0", "EPERM"},
	{"finit_module:0xffffffff,0,0", "EPERM"},
	{"delete_module:0,0", "EPERM"},
	{"mount:0,0,0,0,0", "EPERM"},
	{"umount2:0,0", "EPERM"},
	{"fsopen:0,0", "EPERM"},
	{"fsconfig:0xffffffff,0,0,0,0", "EPERM"},
	{"fsmount:0xffffffff,0,0", "EPERM"},
	{"fspick:0xffffffff,0,0", "EPERM"},
	{"move_mount:0xffffffff,0,0xffffffff,0,0", "EPERM"},
	{"open_tree:0xffffffff,0,0", "EPERM"},
	{"mount_setattr:0xffffffff,0,0,0,0", "EPERM"},
	{"pivot_root:0,0", "EPERM"},
	// CLONE_NEWUTS is valid on its own; an unfiltered call would only give
	// the probe a UTS namespace of its own.
	{"unshare:0x04000000", "EPERM"},
	{"setns:0xffffffff,0", "EPERM"},
	{"open_by_handle_at:0xffffffff,0,0", "EPERM"},
	{"ptrace:0xffffffff,0,0,0", "EPERM"},
	{"process_vm_readv:0xffffffff,0,0,0,0,0", "EPERM"},
	{"process_vm_writev:0xffffffff,0,0,0,0,0", "EPERM"},
	{"pidfd_getfd:0xffffffff,0xffffffff,0", "EPERM"},
	// CLONE_NEWUSER|CLONE_FS is invalid, so an unfiltered call fails
	// with EINVAL instead of forking the probe.
	{"clone:0x10000200", "EPERM"},
	// CLONE_NEWNET|CLONE_NEWNS with CLONE_FS: invalid for the same reason.
	{"clone:0x40020200", "EPERM"},
	{"clone3:0,0", "ENOSYS"},
	// ADDR_NO_RANDOMIZE is not one of the safe personalities.
	{"personality:0x0040000", "ENOSYS"},
}

func probeNames(probes []struct{ call, want string }) []string {
	out := make([]string, len(probes))
	for i, p := range probes {
		out[i] = p.call
	}
	return out
}

// Under the default profile, with every capability granted so that only
// seccomp can say no, each always-denied syscall fails with the promised
// errno inside a real container.
func TestKernelDefaultProfileDenies(t *testing.T) {
	requireRoot(t)
	caps := hostCaps(t)
	s, err := defaultProfile(t).ToOCI(caps)
	if err != nil {
		t.Fatal(err)
	}
	if added := seccomp.EnsureRuntimeSyscalls(s); len(added) != 0 {
		t.Errorf("the default profile lacks syscalls runc needs: %v", added)
	}
	args := append([]string{"/bin/probe", "getpid", "personality:0"}, probeNames(deniedProbes)...)
	res := runContainer(t, containerSpec{Args: args, Seccomp: s, Caps: caps})
	if res.ExitCode != 0 {
		t.Fatalf("probe exited %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	got := probeResults(t, res.Stdout)
	if got["getpid"] != "OK" || got["personality"] == "" {
		t.Errorf("allowed syscalls failed: %v", got)
	}
	// The probe prints one line per call; repeated names (clone) are
	// checked in order.
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")[2:]
	if len(lines) != len(deniedProbes) {
		t.Fatalf("probe printed %d results for %d calls:\n%s", len(lines), len(deniedProbes), res.Stdout)
	}
	for i, p := range deniedProbes {
		t.Run(p.call, func(t *testing.T) {
			f := strings.Fields(lines[i])
			if len(f) != 2 || f[1] != p.want {
				t.Errorf("%s: got %q, want %s", p.call, lines[i], p.want)
			}
		})
	}
}

// The same probe without a filter: the kernel itself answers, mostly with
// EFAULT, EINVAL or EBADF. This shows the probe's calls reach the kernel,
// so the errnos above come from the filter.
func TestKernelProbeControlWithoutFilter(t *testing.T) {
	requireRoot(t)
	args := append([]string{"/bin/probe"}, probeNames(deniedProbes)...)
	res := runContainer(t, containerSpec{Args: args, Caps: hostCaps(t)})
	if res.ExitCode != 0 {
		t.Fatalf("probe exited %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != len(deniedProbes) {
		t.Fatalf("probe printed %d results for %d calls:\n%s", len(lines), len(deniedProbes), res.Stdout)
	}
	differ := 0
	for i, p := range deniedProbes {
		f := strings.Fields(lines[i])
		if len(f) == 2 && f[1] != p.want {
			differ++
		}
	}
	t.Logf("unfiltered results:\n%s", res.Stdout)
	if differ < len(deniedProbes)*3/4 {
		t.Errorf("only %d of %d probe calls give a different errno without the filter; the probe does not exercise the kernel", differ, len(deniedProbes))
	}
}

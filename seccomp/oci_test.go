package seccomp_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/seccomp"
)

func mustParse(t testing.TB, name string) *seccomp.Profile {
	t.Helper()
	p, err := seccomp.Parse(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resolvedNames(s *specs.LinuxSeccomp) []string {
	var out []string
	for _, r := range s.Syscalls {
		out = append(out, r.Names...)
	}
	slices.Sort(out)
	return out
}

func TestToOCIForResolvesConditions(t *testing.T) {
	p := mustParse(t, "conditional.json")
	k := func(s string) seccomp.KernelVersion {
		v, err := seccomp.ParseKernelVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name      string
		target    seccomp.Target
		wantNames []string
		wantArch  []specs.Arch
	}{
		{"no caps amd64 new kernel",
			seccomp.Target{Arch: "amd64", Kernel: k("6.18")},
			[]string{"arch_prctl", "clone", "exit_group", "getpid", "getppid", "ptrace"},
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"chroot only",
			seccomp.Target{Caps: []string{"CAP_SYS_CHROOT"}, Arch: "amd64", Kernel: k("6.18")},
			[]string{"arch_prctl", "chroot", "clone", "exit_group", "getpid", "getppid", "ptrace"},
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"all caps of an include are needed; sys_admin drops the clone rule",
			seccomp.Target{Caps: []string{"sys_admin", "cap_sys_chroot"}, Arch: "amd64", Kernel: k("6.18")},
			[]string{"arch_prctl", "chroot", "exit_group", "getpid", "getppid", "mount", "ptrace", "umount2"},
			[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"arm64 old kernel",
			seccomp.Target{Arch: "arm64", Kernel: k("4.4")},
			[]string{"cacheflush", "clone", "exit_group", "getpid", "getppid", "uselib"},
			[]specs.Arch{specs.ArchAARCH64, specs.ArchARM}},
		{"s390x has no archMap entry",
			seccomp.Target{Arch: "s390x", Kernel: k("5.0")},
			[]string{"clone", "exit_group", "getpid", "ptrace"},
			nil},
		{"riscv64 with null sub-architectures",
			seccomp.Target{Arch: "riscv64", Kernel: k("5.0")},
			[]string{"clone", "exit_group", "getpid", "getppid", "ptrace"},
			[]specs.Arch{specs.ArchRISCV64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.ToOCIFor(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := resolvedNames(s); !reflect.DeepEqual(got, tc.wantNames) {
				t.Errorf("names = %v, want %v", got, tc.wantNames)
			}
			if !reflect.DeepEqual(s.Architectures, tc.wantArch) {
				t.Errorf("architectures = %v, want %v", s.Architectures, tc.wantArch)
			}
			if s.ListenerPath != "/run/agent.sock" || s.ListenerMetadata != "meta" || *s.DefaultErrnoRet != 1 {
				t.Errorf("top-level fields not carried over: %+v", s)
			}
		})
	}
}

// The capability set is an argument, so the same profile gives different
// results for different containers without any hidden state.
func TestToOCIDoesNotMutateProfile(t *testing.T) {
	p := mustParse(t, "conditional.json")
	before, _ := p.Marshal()
	s, err := p.ToOCI([]string{"CAP_SYS_ADMIN", "CAP_SYS_CHROOT"})
	if err != nil {
		t.Fatal(err)
	}
	s.Syscalls[0].Names[0] = "changed"
	after, _ := p.Marshal()
	if string(before) != string(after) {
		t.Error("ToOCI result aliases the profile")
	}
}

func TestToOCIRejectsInvalidProfile(t *testing.T) {
	p := &seccomp.Profile{DefaultAction: specs.ActErrno, Syscalls: []seccomp.Syscall{{Names: []string{"getpidd"}, Action: specs.ActAllow}}}
	if _, err := p.ToOCI(nil); err == nil {
		t.Error("ToOCI accepted an unknown syscall")
	}
}

func TestFromOCIRoundTrip(t *testing.T) {
	errno := uint(38)
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &errno,
		Architectures:   []specs.Arch{specs.ArchX86_64},
		Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: &errno,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpEqualTo}}},
		},
	}
	got, err := seccomp.FromOCI(s).ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("FromOCI/ToOCI changed the section:\n got %+v\nwant %+v", got, s)
	}
	if seccomp.FromOCI(nil) != nil {
		t.Error("FromOCI(nil) != nil")
	}
}

func TestDockerDefaultResolvesLikeDocker(t *testing.T) {
	p := mustParse(t, "docker-default.json")
	// Docker's default caps (moby oci/caps/defaults.go).
	dockerCaps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	s, err := p.ToOCIFor(seccomp.Target{Caps: dockerCaps, Arch: "amd64", Kernel: seccomp.KernelVersion{Kernel: 6, Major: 18}})
	if err != nil {
		t.Fatal(err)
	}
	allowed := seccomp.Allowed(s)
	for _, n := range []string{"chroot", "arch_prctl", "ptrace", "read", "personality", "clone"} {
		if !slices.Contains(allowed, n) {
			t.Errorf("Docker's default with Docker's caps should allow %s", n)
		}
	}
	for _, n := range []string{"mount", "bpf", "setns", "reboot", "cacheflush", "clone3"} {
		if slices.Contains(allowed, n) {
			t.Errorf("Docker's default with Docker's caps should not allow %s", n)
		}
	}
}

// A syscall the profile allows only with a capability gets EPERM without
// it, as the kernel would answer; ENOSYS stays for syscalls the profile
// does not know.
func TestCapabilityGatedSyscallsGetEPERM(t *testing.T) {
	enosys := uint(38)
	p := &seccomp.Profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &enosys,
		Syscalls: []seccomp.Syscall{
			{Names: []string{"read"}, Action: specs.ActAllow},
			{Names: []string{"sethostname"}, Action: specs.ActAllow, Includes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		},
	}
	action := func(s *specs.LinuxSeccomp, name string) string {
		for _, r := range s.Syscalls {
			if slices.Contains(r.Names, name) {
				if r.ErrnoRet != nil {
					return fmt.Sprintf("%s/%d", r.Action, *r.ErrnoRet)
				}
				return string(r.Action)
			}
		}
		return "default"
	}
	without, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := action(without, "sethostname"); got != "SCMP_ACT_ERRNO/1" {
		t.Errorf("sethostname without CAP_SYS_ADMIN: %s, want EPERM", got)
	}
	with, err := p.ToOCI([]string{"CAP_SYS_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if got := action(with, "sethostname"); got != string(specs.ActAllow) {
		t.Errorf("sethostname with CAP_SYS_ADMIN: %s, want allow", got)
	}
}

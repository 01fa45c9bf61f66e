package seccomp_test

import (
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/seccomp"
)

func TestEnsureRuntimeSyscalls(t *testing.T) {
	errno := uint(1)
	tests := []struct {
		name       string
		in         *specs.LinuxSeccomp
		wantAdded  []string
		wantDenied []string // names that must no longer be in a denying rule
	}{
		{"nil", nil, nil, nil},
		{"allow default needs nothing", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, nil, nil},
		{"log default needs nothing", &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, nil, nil},
		{"empty allowlist gets everything", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			seccomp.RuntimeSyscalls(true), nil},
		{"explicit exit_group denial is lifted", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"exit_group", "reboot"}, Action: specs.ActErrno, ErrnoRet: &errno},
				{Names: []string{"futex"}, Action: specs.ActAllow},
				{Names: []string{"write"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
			}},
			without(seccomp.RuntimeSyscalls(true), "futex"), []string{"exit_group"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			added := seccomp.EnsureRuntimeSyscalls(tc.in)
			if !reflect.DeepEqual(added, tc.wantAdded) {
				t.Errorf("added = %v\nwant    %v", added, tc.wantAdded)
			}
			if tc.in == nil {
				return
			}
			for _, r := range tc.in.Syscalls {
				if r.Action == specs.ActAllow {
					continue
				}
				for _, n := range tc.wantDenied {
					if slices.Contains(r.Names, n) {
						t.Errorf("%s still denied by %+v", n, r)
					}
				}
				if slices.Contains(tc.wantDenied, "exit_group") && !slices.Contains(r.Names, "reboot") {
					t.Errorf("other names of the denying rule lost: %+v", r)
				}
			}
			if again := seccomp.EnsureRuntimeSyscalls(tc.in); again != nil {
				t.Errorf("second call added %v", again)
			}
			if tc.in.DefaultAction != specs.ActAllow && tc.in.DefaultAction != specs.ActLog {
				p, err := seccomp.Compile(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range seccomp.RuntimeSyscalls(true) {
					v, err := p.Check(n)
					if err != nil {
						t.Fatal(err)
					}
					if !v.Allowed() {
						t.Errorf("%s: %v after EnsureRuntimeSyscalls", n, v)
					}
				}
			}
		})
	}
}

func without(list []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
}

func TestRuntimeSyscallsWithoutNoNewPrivsIsSuperset(t *testing.T) {
	nnp, priv := seccomp.RuntimeSyscalls(true), seccomp.RuntimeSyscalls(false)
	for _, n := range nnp {
		if !slices.Contains(priv, n) {
			t.Errorf("%s missing without no_new_privs", n)
		}
	}
	for _, n := range []string{"exit", "exit_group", "execve", "futex", "setuid", "capset", "prctl"} {
		if !slices.Contains(priv, n) {
			t.Errorf("%s missing", n)
		}
	}
	if !slices.IsSorted(nnp) || !slices.IsSorted(priv) {
		t.Error("not sorted")
	}
}

func TestBPFSize(t *testing.T) {
	small := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}
	n, err := seccomp.BPFSize(small)
	if err != nil {
		t.Fatal(err)
	}
	docker, err := mustParse(t, "docker-default.json").ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := seccomp.BPFSize(docker)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || m <= n {
		t.Errorf("BPF sizes: small %d, docker default %d", n, m)
	}
	t.Logf("BPF instructions: two-syscall profile %d, Docker default %d", n, m)
	if _, err := seccomp.BPFSize(nil); err == nil {
		t.Error("BPFSize(nil) succeeded")
	}
}

func TestProgramCheck(t *testing.T) {
	errno := uint(13)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: &errno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpEqualTo}}},
		{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpNotEqual}}},
		{Names: []string{"getppid"}, Action: specs.ActLog},
		{Names: []string{"getpid"}, Action: specs.ActKillProcess},
	}}
	p, err := seccomp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		call string
		args []uint64
		want seccomp.Verdict
	}{
		{"read", nil, seccomp.Verdict{Action: specs.ActAllow}},
		{"write", nil, seccomp.Verdict{Action: specs.ActErrno, Errno: 1}},
		{"kill", []uint64{1, 9}, seccomp.Verdict{Action: specs.ActErrno, Errno: 13}},
		{"kill", []uint64{1, 15}, seccomp.Verdict{Action: specs.ActAllow}},
		{"getppid", nil, seccomp.Verdict{Action: specs.ActLog}},
		{"getpid", nil, seccomp.Verdict{Action: specs.ActKillProcess}},
	}
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			got, err := p.Check(tc.call, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.call, tc.args, got, tc.want)
			}
		})
	}
}

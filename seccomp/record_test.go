package seccomp_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/seccomp"
)

func hostSpecArch(t *testing.T) specs.Arch {
	t.Helper()
	switch seccomp.HostArch() {
	case "amd64":
		return specs.ArchX86_64
	case "arm64":
		return specs.ArchAARCH64
	}
	t.Skipf("no test data for %s", seccomp.HostArch())
	return ""
}

func TestNotifyProfile(t *testing.T) {
	s := seccomp.NotifyProfile("/run/secrun/rec.sock")
	if s.ListenerPath != "/run/secrun/rec.sock" || s.DefaultAction == specs.ActNotify {
		t.Fatalf("bad notify profile header: %+v", s)
	}
	if err := seccomp.FromOCI(s).Validate(); err != nil {
		t.Fatalf("runc would reject the recording filter: %v", err)
	}
	p, err := seccomp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		call string
		want specs.LinuxSeccompAction
	}{
		{"openat", specs.ActNotify}, {"execve", specs.ActNotify}, {"read", specs.ActNotify},
		{"mount", specs.ActNotify}, {"personality", specs.ActNotify},
		{"write", specs.ActAllow}, {"futex", specs.ActAllow}, {"exit_group", specs.ActAllow},
		{"clone3", specs.ActErrno},
	}
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			v, err := p.Check(tc.call)
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != tc.want {
				t.Errorf("%s: %v, want %s", tc.call, v, tc.want)
			}
		})
	}
	if v, _ := p.Check("clone3"); v.Errno != 38 {
		t.Errorf("clone3: %v, want ENOSYS", v)
	}
	n, err := seccomp.BPFSize(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recording filter: %d BPF instructions", n)
}

func recordedFixture(t *testing.T) []seccomp.RecordedSyscall {
	arch := hostSpecArch(t)
	return []seccomp.RecordedSyscall{
		{Name: "openat", Arch: arch, Count: 5, BeforeExec: 2},
		{Name: "openat2", Arch: arch, Count: 3, BeforeExec: 3, Runtime: true},
		{Name: "execve", Arch: arch, Count: 2, BeforeExec: 1},
		{Name: "personality", Arch: arch, Count: 2, Personas: []uint64{0xffffffff, 0}},
		{Name: "clone", Arch: arch, Count: 4},
		{Name: "uname", Arch: specs.ArchX86, Count: 1},
		{Name: "futex", Arch: arch, Count: 1},
		{Name: "syscall-999", Arch: arch, Count: 1},
	}
}

func TestRecordedProfile(t *testing.T) {
	p := seccomp.RecordedProfile(recordedFixture(t))
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seccomp.Parse(out); err != nil {
		t.Fatalf("recorded profile invalid: %v\n%s", err, out)
	}
	if p.DefaultAction != specs.ActErrno || *p.DefaultErrnoRet != 1 || !slices.Contains(p.Flags, specs.LinuxSeccompFlagLog) {
		t.Errorf("not default-deny with EPERM and logging: %s", out)
	}
	if !slices.Contains(p.Architectures, specs.ArchX86) || p.Architectures[0] != hostSpecArch(t) {
		t.Errorf("architectures %v: want the host's first, then the recorded compat arch", p.Architectures)
	}
	groups := map[string][]string{}
	for _, r := range p.Syscalls {
		if len(r.Args) == 0 && r.Action == specs.ActAllow {
			groups[r.Comment] = r.Names
		}
	}
	if got := groups[seccomp.CommentWorkload]; !reflect.DeepEqual(got, []string{"execve", "openat", "uname"}) {
		t.Errorf("workload group %v", got)
	}
	if got := groups[seccomp.CommentRuntime]; !reflect.DeepEqual(got, []string{"openat2"}) {
		t.Errorf("runtime group %v", got)
	}
	for _, n := range []string{"exit_group", "write", "futex", "recvfrom"} {
		if !slices.Contains(groups[seccomp.CommentRuntimeNeeds], n) {
			t.Errorf("%s missing from %v", n, groups[seccomp.CommentRuntimeNeeds])
		}
	}
	if strings.Contains(string(out), "syscall-999") {
		t.Error("an unnamed syscall number leaked into the profile")
	}

	s, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if added := seccomp.EnsureRuntimeSyscalls(s); len(added) != 0 {
		t.Errorf("recorded profile lacks %v", added)
	}
	prog, err := seccomp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		call  string
		args  []uint64
		allow bool
		errno uint
	}{
		{"openat", nil, true, 0},
		{"personality", []uint64{0}, true, 0},
		{"personality", []uint64{0xffffffff}, true, 0},
		{"personality", []uint64{8}, false, 1},
		{"clone", []uint64{17}, true, 0},
		{"clone", []uint64{0x10000000 | 17}, false, 1},
		{"clone3", nil, false, 38},
		{"mkdir", nil, false, 1},
	}
	for _, c := range checks {
		v, err := prog.Check(c.call, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		if v.Allowed() != c.allow || (!c.allow && v.Errno != c.errno) {
			t.Errorf("%s%v: %v", c.call, c.args, v)
		}
	}
}

func TestRecordedProfileCloneWithNamespaces(t *testing.T) {
	calls := []seccomp.RecordedSyscall{{Name: "clone", Arch: hostSpecArch(t), Count: 1, Namespaces: true}}
	p := seccomp.RecordedProfile(calls)
	s, err := p.ToOCI(nil)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := seccomp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := prog.Check("clone", 0x10000000|17); !v.Allowed() {
		t.Errorf("a workload that made namespaces gets them: %v", v)
	}
}

func TestMergeIsUnion(t *testing.T) {
	arch := hostSpecArch(t)
	a := seccomp.RecordedProfile([]seccomp.RecordedSyscall{
		{Name: "openat", Arch: arch, Count: 1},
		{Name: "statx", Arch: arch, Count: 1, BeforeExec: 1, Runtime: true},
		{Name: "personality", Arch: arch, Count: 1, Personas: []uint64{0}},
	})
	b := seccomp.RecordedProfile([]seccomp.RecordedSyscall{
		{Name: "statx", Arch: arch, Count: 1},
		{Name: "uname", Arch: arch, Count: 1},
		{Name: "personality", Arch: arch, Count: 1, Personas: []uint64{8}},
		{Name: "clone3", Arch: arch, Count: 1},
	})
	// A hand-made profile that allows clone3 outright.
	c := &seccomp.Profile{DefaultAction: specs.ActErrno, Syscalls: []seccomp.Syscall{{Names: []string{"clone3"}, Action: specs.ActAllow}}}

	m := seccomp.Merge(a, b, c)
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seccomp.Parse(out); err != nil {
		t.Fatalf("merged profile invalid: %v\n%s", err, out)
	}
	groups := map[string][]string{}
	personas := 0
	for _, r := range m.Syscalls {
		if len(r.Args) == 0 && r.Action == specs.ActAllow {
			groups[r.Comment] = r.Names
		}
		if slices.Contains(r.Names, "personality") {
			personas++
		}
		if r.Action != specs.ActAllow && slices.Contains(r.Names, "clone3") {
			t.Errorf("clone3 still denied after merging a profile that allows it: %+v", r)
		}
	}
	if got := groups[seccomp.CommentWorkload]; !reflect.DeepEqual(got, []string{"openat", "statx", "uname"}) {
		t.Errorf("workload group %v (statx was the workload's in one recording)", got)
	}
	if got, ok := groups[seccomp.CommentRuntime]; ok {
		t.Errorf("runtime group %v should be empty", got)
	}
	if personas != 2 {
		t.Errorf("%d personality rules, want one per recorded value", personas)
	}
	if d := seccomp.Diff(a, m); !reflect.DeepEqual(d.Added, []string{"clone3", "uname"}) || len(d.Removed) != 0 {
		t.Errorf("Diff(a, merged) = %+v", d)
	}

	// Merging is idempotent.
	again, err := seccomp.Merge(m, m).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Errorf("Merge(m, m) != m:\n%s\n%s", again, out)
	}
	if seccomp.Merge() != nil || seccomp.Merge(nil) != nil {
		t.Error("Merge of nothing is not nil")
	}
}

func TestDiff(t *testing.T) {
	eperm := uint(1)
	a := &seccomp.Profile{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm, Syscalls: []seccomp.Syscall{
		{Names: []string{"read", "write"}, Action: specs.ActAllow},
		{Names: []string{"mount"}, Action: specs.ActErrno},
	}}
	b := &seccomp.Profile{DefaultAction: specs.ActErrno, Syscalls: []seccomp.Syscall{
		{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"mount"}, Action: specs.ActLog},
		{Name: "personality", Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
	}}
	d := seccomp.Diff(a, b)
	want := seccomp.DiffResult{Added: []string{"mount", "personality"}, Removed: []string{"write"}, DefaultChanged: "SCMP_ACT_ERRNO(1) -> SCMP_ACT_ERRNO"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Diff = %+v, want %+v", d, want)
	}
	if got := d.String(); got != "default action: SCMP_ACT_ERRNO(1) -> SCMP_ACT_ERRNO\n+mount\n+personality\n-write\n" {
		t.Errorf("String() = %q", got)
	}
	if !seccomp.Diff(a, a).Empty() {
		t.Error("a profile differs from itself")
	}
}

package audit_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
)

func fleetPtr[T any](v T) *T { return &v }

// declared is a hardened spec: one capability, no_new_privs, a filter,
// read-only root, its own namespaces and user namespace, limits.
func driftDeclared() *specs.Spec {
	caps := []string{"CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{NoNewPrivileges: true, Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "mount"}, {Type: "user"}, {Type: "ipc", Path: "/proc/77/ns/ipc"}},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: fleetPtr(int64(64 << 20))}, Pids: &specs.LinuxPids{Limit: fleetPtr(int64(64))}},
		},
	}
}

// enforced is a process that holds to driftDeclared().
func driftEnforced(pid int) audit.ProcessState {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	return audit.ProcessState{Pid: pid, Name: "app", CapEff: 1 << 10, CapPrm: 1 << 10, CapBnd: 1 << 10, NoNewPrivs: true,
		Seccomp: 2, SeccompFilters: 1, UIDMap: m, GIDMap: m, HostNamespaces: []string{"cgroup", "time"},
		RootReadOnly: true, RootPropagation: "slave"}
}

func TestDrift(t *testing.T) {
	hostMap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: math.MaxUint32}}
	for _, tc := range []struct {
		name   string
		spec   func(*specs.Spec)
		proc   func(*audit.ProcessState)
		limits func(*audit.EffectiveState)
		want   []string
	}{
		{name: "holds"},
		{name: "effective capability beyond the declared set", proc: func(p *audit.ProcessState) { p.CapEff |= 1 << 21 }, want: []string{"drift-capabilities"}},
		{name: "bounding set beyond the declared one", proc: func(p *audit.ProcessState) { p.CapBnd = math.MaxUint32 }, want: []string{"drift-capabilities"}},
		{name: "fewer capabilities than declared is not drift", proc: func(p *audit.ProcessState) { p.CapEff, p.CapBnd = 0, 0 }},
		{name: "no capabilities object declares none", spec: func(s *specs.Spec) { s.Process.Capabilities = nil }, want: []string{"drift-capabilities"}},
		{name: "no_new_privs cleared", proc: func(p *audit.ProcessState) { p.NoNewPrivs = false }, want: []string{"drift-no-new-privileges"}},
		{name: "no_new_privs not declared", spec: func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, proc: func(p *audit.ProcessState) { p.NoNewPrivs = false }},
		{name: "seccomp off", proc: func(p *audit.ProcessState) { p.Seccomp, p.SeccompFilters = 0, 0 }, want: []string{"drift-seccomp"}},
		{name: "seccomp strict mode is not the declared filter", proc: func(p *audit.ProcessState) { p.Seccomp = 1 }, want: []string{"drift-seccomp"}},
		{name: "seccomp not declared", spec: func(s *specs.Spec) { s.Linux.Seccomp = nil }, proc: func(p *audit.ProcessState) { p.Seccomp = 0 }},
		{name: "root writable", proc: func(p *audit.ProcessState) { p.RootReadOnly = false }, want: []string{"drift-readonly-rootfs"}},
		{name: "root writable as declared", spec: func(s *specs.Spec) { s.Root.Readonly = false }, proc: func(p *audit.ProcessState) { p.RootReadOnly = false }},
		{name: "root shared", proc: func(p *audit.ProcessState) { p.RootPropagation = "shared" }, want: []string{"drift-mount-propagation"}},
		{name: "root shared as declared", spec: func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }, proc: func(p *audit.ProcessState) { p.RootPropagation = "shared" }},
		{name: "host pid namespace", proc: func(p *audit.ProcessState) { p.HostNamespaces = append(p.HostNamespaces, "pid") }, want: []string{"drift-namespaces"}},
		// ipc joins a path: the spec does not promise a private one.
		{name: "joined namespace is not compared", proc: func(p *audit.ProcessState) { p.HostNamespaces = append(p.HostNamespaces, "ipc") }},
		{name: "uid map differs", proc: func(p *audit.ProcessState) { p.UIDMap = hostMap }, want: []string{"drift-user-namespace"}},
		{name: "gid map differs", proc: func(p *audit.ProcessState) {
			p.GIDMap = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 100001, Size: 65535}}
		}, want: []string{"drift-user-namespace"}},
		{name: "map order does not matter", spec: func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 5, Size: 1}, {ContainerID: 0, HostID: 100000, Size: 1}}
		}, proc: func(p *audit.ProcessState) {
			p.UIDMap = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}, {ContainerID: 1, HostID: 5, Size: 1}}
		}},
		{name: "memory limit removed", limits: func(e *audit.EffectiveState) { e.MemoryLimit = fleetPtr(audit.Unlimited) }, want: []string{"drift-memory-limit"}},
		{name: "memory limit raised", limits: func(e *audit.EffectiveState) { e.MemoryLimit = fleetPtr(int64(1 << 30)) }, want: []string{"drift-memory-limit"}},
		{name: "memory limit tighter", limits: func(e *audit.EffectiveState) { e.MemoryLimit = fleetPtr(int64(1 << 20)) }},
		{name: "memory limit unreadable", limits: func(e *audit.EffectiveState) { e.MemoryLimit = nil }},
		{name: "pids limit removed", limits: func(e *audit.EffectiveState) { e.PidsLimit = fleetPtr(audit.Unlimited) }, want: []string{"drift-pids-limit"}},
		{name: "everything at once", proc: func(p *audit.ProcessState) {
			*p = audit.ProcessState{Pid: p.Pid, Name: "sh", CapEff: math.MaxUint32, CapBnd: math.MaxUint32, UIDMap: hostMap, GIDMap: hostMap,
				HostNamespaces: []string{"mount", "network", "pid", "user"}, RootPropagation: "shared"}
		}, want: []string{"drift-capabilities", "drift-namespaces", "drift-no-new-privileges", "drift-seccomp", "drift-user-namespace",
			"drift-mount-propagation", "drift-readonly-rootfs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := driftDeclared()
			if tc.spec != nil {
				tc.spec(s)
			}
			// The change applies to the second process; the first holds
			// unless the change is one both must share (id maps).
			first, second := driftEnforced(11), driftEnforced(12)
			if tc.proc != nil {
				tc.proc(&second)
				if strings.HasPrefix(tc.name, "map order") {
					tc.proc(&first)
				}
			}
			e := audit.EffectiveState{InitPid: 11, Processes: []audit.ProcessState{first, second},
				MemoryLimit: fleetPtr(int64(64 << 20)), PidsLimit: fleetPtr(int64(64))}
			if tc.limits != nil {
				tc.limits(&e)
			}
			fs := audit.Drift(s, e)
			var got []string
			for _, f := range fs {
				got = append(got, f.Control)
				if f.Source != audit.SourceDrift || f.Severity == "" || f.Message == "" || f.Fix == "" {
					t.Errorf("incomplete finding %+v", f)
				}
				if strings.Contains(f.Control, "limit") || strings.Contains(f.Message, "12 (") {
					continue
				}
				t.Errorf("%s does not name the drifting process 12: %s", f.Control, f.Message)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("drift = %q, want %q", got, want)
			}
		})
	}
	if fs := audit.Drift(nil, audit.EffectiveState{}); fs != nil {
		t.Errorf("nil spec: %v", fs)
	}
}

func TestDriftControlsAreKnown(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range append(slices.Clone(audit.DriftControls), audit.AuditControls...) {
		if seen[c.ID] || c.Description == "" || audit.SeverityRank(c.Severity) < 0 {
			t.Errorf("control %+v: duplicate, undescribed or without a severity", c)
		}
		seen[c.ID] = true
	}
}

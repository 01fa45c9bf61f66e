package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testSeccomp(value string, _ []string, _ bool) (*specs.LinuxSeccomp, []string, error) {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil, nil
}

func plan(t *testing.T, o RunOptions) *Plan {
	t.Helper()
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "bin", "sh"), []byte("#!"), 0o755)
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\napp:x:1000:\n"), 0o644)
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}}
	p, err := MakePlan(PlanInput{Options: o, ID: strings.Repeat("ab", 32), Config: cfg, Rootfs: rootfs,
		IDs: IDRange{HostID: usernsBase, Size: usernsBlockSize}, Seccomp: testSeccomp, Cgroups: "/secrun/x"})
	if err != nil {
		t.Fatalf("MakePlan: %v", err)
	}
	return p
}

// The hardened preset: what a request with no flags gets.
func TestHardenedDefaults(t *testing.T) {
	s := plan(t, RunOptions{ReadOnly: true}).Spec
	c := s.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
		if len(set) != 0 {
			t.Errorf("capabilities.%s = %v, want empty", name, set)
		}
	}
	if !s.Process.NoNewPrivileges {
		t.Error("noNewPrivileges is off")
	}
	if !s.Root.Readonly {
		t.Error("rootfs is writable")
	}
	if s.Process.User.UID != NonRootUID {
		t.Errorf("uid = %d, want %d for an image without USER", s.Process.User.UID, NonRootUID)
	}
	for _, ns := range []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "network", "cgroup", "user"} {
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == ns && n.Path == "" }) {
			t.Errorf("no new %s namespace", ns)
		}
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID == 0 {
		t.Errorf("uid mappings = %+v", s.Linux.UIDMappings)
	}
	if s.Linux.Resources.Pids == nil || *s.Linux.Resources.Pids.Limit != DefaultPidsLimit {
		t.Error("no default pids limit")
	}
	if s.Linux.Resources.Memory == nil || *s.Linux.Resources.Memory.Limit != DefaultMemory {
		t.Error("no default memory limit")
	}
	if s.Hooks != nil {
		t.Error("hooks present")
	}
	if s.Linux.Seccomp == nil {
		t.Error("no seccomp filter")
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sysrq-trigger") {
		t.Error("Docker's masked/readonly paths missing")
	}
	if len(s.Linux.Devices) != 0 || len(s.Linux.Resources.Devices) != 1 || s.Linux.Resources.Devices[0].Allow {
		t.Errorf("devices not default-deny: %+v", s.Linux.Resources.Devices)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/tmp" && m.Type == "tmpfs" }) {
		t.Error("no tmpfs /tmp")
	}
}

// Each relaxation is an explicit flag.
func TestRelaxations(t *testing.T) {
	host := plan(t, RunOptions{Network: "host", Userns: "host", ReadOnly: false})
	for _, n := range host.Spec.Linux.Namespaces {
		if n.Type == "network" || n.Type == "user" {
			t.Errorf("%s namespace present with --network host --userns host", n.Type)
		}
	}
	if host.Spec.Root.Readonly {
		t.Error("--read-only=false ignored")
	}
	p := plan(t, RunOptions{ReadOnly: true, CapAdd: []string{"net_bind_service"}, SecurityOpt: []string{"no-new-privileges=false", "seccomp=unconfined"}, User: "app"})
	if !slices.Equal(p.Spec.Process.Capabilities.Effective, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("caps = %v", p.Spec.Process.Capabilities.Effective)
	}
	if p.Spec.Process.NoNewPrivileges || p.Spec.Linux.Seccomp != nil {
		t.Error("security-opt relaxations ignored")
	}
	if p.Spec.Process.User.UID != 1000 || p.Request.User != "app" {
		t.Errorf("user app -> uid %d", p.Spec.Process.User.UID)
	}
	if p.Request.Seccomp != "unconfined" || p.Request.NoNewPrivileges {
		t.Errorf("request = %+v", p.Request)
	}
	priv := plan(t, RunOptions{Privileged: true})
	if !priv.Request.Privileged || priv.Spec.Linux.Seccomp != nil || len(priv.Spec.Linux.MaskedPaths) != 0 {
		t.Error("--privileged not reflected")
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	os.Symlink(dir, link)
	rootfs := t.TempDir()
	for _, tc := range []struct {
		name string
		o    RunOptions
		want string
	}{
		{"missing volume", RunOptions{Volumes: []string{"/does/not/exist:/x"}}, "does not exist"},
		{"symlink volume", RunOptions{Volumes: []string{link + ":/x"}}, "resolves through a symlink"},
		{"relative volume", RunOptions{Volumes: []string{"rel:/x"}}, "absolute host path"},
		{"bad volume option", RunOptions{Volumes: []string{dir + ":/x:rx"}}, `unknown option "rx"`},
		{"bad network", RunOptions{Network: "bridge"}, "invalid --network"},
		{"bad memory", RunOptions{Memory: "lots"}, "invalid --memory"},
		{"bad cap", RunOptions{CapAdd: []string{"CAP_TELEPORT"}}, "unknown capability"},
		{"bad security-opt", RunOptions{SecurityOpt: []string{"selinux=x"}}, "unknown --security-opt"},
		{"bad nnp", RunOptions{SecurityOpt: []string{"no-new-privileges=maybe"}}, "want true or false"},
		{"bad mount", RunOptions{Mounts: []string{"type=volume,target=/x"}}, "type must be bind or tmpfs"},
		{"missing command", RunOptions{Args: []string{"nosuchcmd"}}, `command "nosuchcmd" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"/bin/sh"}}}
			_, err := MakePlan(PlanInput{Options: tc.o, ID: strings.Repeat("a", 64), Config: cfg, Rootfs: rootfs,
				IDs: IDRange{HostID: usernsBase, Size: usernsBlockSize}, Seccomp: testSeccomp})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if ExitCode(&Error{Code: ExitNotFound}) != 127 {
		t.Error("not-found does not map to 127")
	}
}

func TestValidateRefusesHostRoot(t *testing.T) {
	s := NewSpec()
	if err := Compose(WithProcess([]string{"/bin/sh"}, nil, "/"))(s); err != nil {
		t.Fatal(err)
	}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
	if err := Validate(s); err == nil || !strings.Contains(err.Error(), "host id 0") {
		t.Fatalf("Validate = %v", err)
	}
	if err := WithUserNamespace(IDRange{HostID: 0, Size: 10})(NewSpec()); err == nil {
		t.Fatal("WithUserNamespace accepted host uid 0")
	}
}

func TestUsernsAllocatorUnique(t *testing.T) {
	a := usernsAllocator{dir: t.TempDir()}
	seen := map[uint32]bool{}
	var got []IDRange
	for i := 0; i < 20; i++ {
		r, err := a.allocate("c")
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.HostID] || r.HostID == 0 {
			t.Fatalf("range %d allocated twice or is host root", r.HostID)
		}
		seen[r.HostID] = true
		got = append(got, r)
	}
	if err := a.release(got[3]); err != nil {
		t.Fatal(err)
	}
	r, err := a.allocate("d")
	if err != nil || r != got[3] {
		t.Fatalf("released block not reused: %v %v", r, err)
	}
}

package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

func TestRequestFromSpec(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	pids := int64(100)
	privileged := &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}, Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN", "CAP_CHOWN"}}},
		Root:    &specs.Root{Path: "rootfs"},
		Mounts:  []specs.Mount{{Destination: "/var/run/docker.sock", Source: link, Type: "bind", Options: []string{"rbind", "ro"}}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}},
			Resources:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}},
		},
	}
	r := policy.RequestFromSpec(privileged, "runtime")
	if !r.Privileged || r.Seccomp != "unconfined" || r.PID != "host" || r.Userns != "host" || r.Network != "path:/proc/1/ns/net" {
		t.Errorf("privileged spec read as %+v", r)
	}
	if !slices.Equal(r.CapAdd, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}) || r.PidsLimit != 100 || r.ReadOnly {
		t.Errorf("caps/limits/readonly: %+v", r)
	}
	if len(r.Volumes) != 1 || r.Volumes[0].Resolved != sock || !r.Volumes[0].ReadOnly {
		t.Errorf("volume through a symlink not resolved: %+v", r.Volumes)
	}
	hardened := &specs.Spec{
		Process: &specs.Process{NoNewPrivileges: true, Capabilities: &specs.LinuxCapabilities{}},
		Root:    &specs.Root{Readonly: true},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}, {Type: "user"}},
			Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			MaskedPaths: []string{"/proc/kcore"},
		},
	}
	r = policy.RequestFromSpec(hardened, "audit")
	if r.Privileged || r.Seccomp != "spec" || r.PID != "private" || r.Userns != "private" || !r.NoNewPrivileges || !r.ReadOnly || len(r.CapAdd) != 0 {
		t.Errorf("hardened spec read as %+v", r)
	}
}

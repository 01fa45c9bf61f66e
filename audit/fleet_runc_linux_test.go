package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/policy"
)

// runcEnv runs plain runc containers from hand-made bundles over one shared
// busybox rootfs, with a private runc root and cgroup parent.
type runcEnv struct {
	t      testing.TB
	runc   string
	dir    string
	root   string // runc --root
	rootfs string
	cgroup string // cgroup parent of every container, "/secrun-fleettest-N"
	mu     sync.Mutex
	ids    []string
}

func newRuncEnv(t testing.TB) *runcEnv {
	t.Helper()
	testenv.RequireRoot(t)
	dir := testenv.StateDir(t)
	e := &runcEnv{t: t, runc: testenv.Runc(t), dir: dir, root: filepath.Join(dir, "runc"),
		rootfs: filepath.Join(dir, "rootfs"), cgroup: fmt.Sprintf("/secrun-fleettest-%d-%d", os.Getpid(), time.Now().UnixNano())}
	fleetRootfs(t, e.rootfs)
	t.Cleanup(e.cleanup)
	return e
}

// makeRootfs is /bin/busybox with the applets the tests run.
func fleetRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "var/run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed for runc containers: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	// Mount points the tests bind onto: a container in a user namespace
	// cannot create them in a rootfs owned by host root.
	if err := os.WriteFile(filepath.Join(dir, "var", "run", "docker.sock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "mount", "cat", "sshd"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

// hardenedSpec is a container that should pass cis-docker: its own user
// namespace (host root unmapped), every namespace private, a read-only
// root, no_new_privs, one capability, a seccomp filter that refuses
// something, masked kernel interfaces, and memory, pids and CPU limits.
func (e *runcEnv) hardenedSpec(id string) *specs.Spec {
	mem, pids := int64(64<<20), int64(64)
	quota, period := int64(50000), uint64(100000)
	caps := []string{"CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: e.rootfs, Readonly: true},
		Process: &specs.Process{
			Args: []string{"/bin/sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Hostname: "fleet",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"}, {Type: "user"}},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem},
				Pids:    &specs.LinuxPids{Limit: &pids},
				CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
			},
			CgroupsPath:   e.cgroup + "/" + id,
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
			Seccomp: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"kexec_load", "open_by_handle_at", "init_module"}, Action: specs.ActErrno}},
			},
		},
	}
}

// start runs a detached container and returns its init pid.
func (e *runcEnv) start(id string, s *specs.Spec) int {
	e.t.Helper()
	pid, err := e.startIn(e.root, filepath.Join(e.dir, "bundles", id), id, s)
	if err != nil {
		e.t.Fatal(err)
	}
	return pid
}

// startIn writes the bundle and runs the container; safe to call from
// several goroutines.
func (e *runcEnv) startIn(root, bundle, id string, s *specs.Spec) (int, error) {
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		return 0, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return 0, err
	}
	pidFile := filepath.Join(bundle, "pid")
	e.mu.Lock()
	e.ids = append(e.ids, root+"\x00"+id)
	e.mu.Unlock()
	if out, err := e.runcTry(root, "run", "-d", "--pid-file", pidFile, "--bundle", bundle, id); err != nil {
		return 0, fmt.Errorf("runc run %s: %w\n%s", id, err, out)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(raw)))
}

func (e *runcEnv) runcCmd(root string, args ...string) string {
	e.t.Helper()
	out, err := e.runcTry(root, args...)
	if err != nil {
		e.t.Fatalf("runc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *runcEnv) runcTry(root string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.runc, append([]string{"--root", root}, args...)...)
	// A file, not a pipe: a detached container inherits runc's stdio, and
	// a pipe would keep Wait waiting for the container to exit.
	out, err := os.CreateTemp("", "runc-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, rerr := os.ReadFile(out.Name())
	if rerr != nil {
		return "", rerr
	}
	return string(b), err
}

func (e *runcEnv) cleanup() {
	e.mu.Lock()
	ids := slices.Clone(e.ids)
	e.mu.Unlock()
	fleetParallelDo(len(ids), func(i int) {
		root, id, _ := strings.Cut(ids[i], "\x00")
		if out, err := e.runcTry(root, "delete", "--force", id); err != nil && !strings.Contains(out, "does not exist") {
			e.t.Logf("cleanup: runc delete %s: %v: %s", id, err, out)
		}
	})
	for _, h := range []string{"unified", "memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd", ""} {
		p := filepath.Join("/sys/fs/cgroup", h, e.cgroup)
		if ents, err := os.ReadDir(p); err == nil {
			for _, d := range ents {
				if d.IsDir() {
					os.Remove(filepath.Join(p, d.Name()))
				}
			}
			os.Remove(p)
		}
	}
}

func fleetParallelDo(n int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// noLSMHost pins the host document so expectations do not depend on
// whether the CI machine runs AppArmor.
var noLSMHost = &policy.HostInfo{LSM: []string{}, Userns: true, Cgroup: "hybrid"}

func fleetLoadCIS(t testing.TB) *policy.Engine {
	t.Helper()
	cis, err := policy.Load(context.Background(), "cis-docker")
	if err != nil {
		t.Fatal(err)
	}
	return cis
}

// controlSet is the sorted "source/control" ids of a container's findings,
// with the cis-docker source written "cis".
func fleetControlSet(c audit.ContainerReport) []string {
	var out []string
	for _, f := range c.Findings {
		src := f.Source
		if src == "cis-docker" {
			src = "cis"
		}
		out = append(out, src+"/"+f.Control)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func fleetFind(rep audit.FleetReport, id string) (audit.ContainerReport, bool) {
	for _, c := range rep.Containers {
		if c.ID == id {
			return c, true
		}
	}
	return audit.ContainerReport{}, false
}

// cgroupProcs lists the processes of every container of the report, read
// from the cgroup filesystem, to show the audit added none.
func cgroupProcsOf(t testing.TB, rep audit.FleetReport) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range rep.Containers {
		if c.Effective == nil {
			continue
		}
		var all []string
		for _, h := range []string{"", "unified", "pids", "memory"} {
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", h, c.Effective.Cgroup, "cgroup.procs"))
			if err == nil {
				all = append(all, h+":"+strings.Join(strings.Fields(string(b)), ","))
			}
		}
		out[c.ID] = strings.Join(all, " ")
	}
	return out
}

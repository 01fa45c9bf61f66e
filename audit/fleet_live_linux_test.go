package audit_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
)

// TestFleetRuncContainers runs plain runc containers, hardened and not, and
// checks that the audit reports exactly the expected controls for each.
func TestFleetRuncContainers(t *testing.T) {
	e := newRuncEnv(t)
	sock := filepath.Join(e.dir, "docker.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "innocent")
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	allCaps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"}
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		want   []string
	}{
		{"hardened", func(*specs.Spec) {}, nil},
		{"no-limits", func(s *specs.Spec) {
			s.Linux.Resources.Memory, s.Linux.Resources.Pids, s.Linux.Resources.CPU = nil, nil, nil
		},
			[]string{"cis/cpu-limit", "cis/memory-limit", "cis/pids-limit"}},
		{"etc-mounted", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc", Type: "bind", Source: "/etc", Options: []string{"rbind", "ro"}})
		}, []string{"cis/sensitive-host-path"}},
		{"privileged", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps, Effective: allCaps, Permitted: allCaps}
			s.Process.NoNewPrivileges = false
			s.Linux.Seccomp = nil
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
			s.Root.Readonly = false
		}, []string{"cis/capabilities", "cis/no-new-privileges", "cis/privileged", "cis/readonly-rootfs", "cis/seccomp"}},
		{"docker-sock", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/run/docker.sock", Type: "bind", Source: link, Options: []string{"rbind", "ro"}})
		}, []string{"cis/runtime-socket"}},
		{"host-pid", func(s *specs.Spec) {
			// proc of the host's pid namespace cannot be mounted from a
			// user namespace, so this one runs without.
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == "pid" || n.Type == "user" })
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
		}, []string{"cis/host-pid", "cis/host-userns"}},
		{"cap-sys-admin", func(s *specs.Spec) {
			c := append(slices.Clone(s.Process.Capabilities.Bounding), "CAP_SYS_ADMIN")
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
		}, []string{"cis/capabilities"}},
		{"seccomp-unconfined", func(s *specs.Spec) { s.Linux.Seccomp = nil }, []string{"cis/seccomp"}},
		// sshd started by a shell: the spec's command does not say so, the
		// running process's name does.
		{"sshd-running", func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", "exec -a sleep /bin/sshd 1000"} }, []string{"cis/sshd"}},
		{"no-new-privileges-false", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, []string{"cis/no-new-privileges"}},
	}
	ids := map[string]string{}
	for _, c := range cases {
		id := "fleet-" + c.name
		s := e.hardenedSpec(id)
		c.mutate(s)
		pid := e.start(id, s)
		ids[c.name] = id
		if c.name == "sshd-running" {
			waitComm(t, pid, "sshd")
		}
	}
	// secrun's own container: runc state under ROOT/runc, bundle and
	// record under ROOT/containers/ID, as the runner lays them out.
	secrunRoot := filepath.Join(e.dir, "secrun")
	sid := "5ec7c0de00000000000000000000000000000000000000000000000000000001"
	sBundle := filepath.Join(secrunRoot, "containers", sid)
	if err := os.MkdirAll(sBundle, 0o711); err != nil {
		t.Fatal(err)
	}
	rec := `{"id":"` + sid + `","name":"own","image":"registry.local/app:1","image_digest":"sha256:0123","status":"running"}`
	if err := os.WriteFile(filepath.Join(sBundle, "container.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.startIn(filepath.Join(secrunRoot, "runc"), sBundle, sid, e.hardenedSpec(sid)); err != nil {
		t.Fatal(err)
	}

	opts := audit.FleetOptions{Discover: audit.DiscoverOptions{RuncRoots: []string{e.root}, SecrunRoots: []string{secrunRoot}}, Host: noLSMHost}
	rep, err := audit.AuditFleet(context.Background(), nil, fleetLoadCIS(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Containers) != len(cases)+1 {
		t.Errorf("found %d containers, want %d", len(rep.Containers), len(cases)+1)
	}
	own, ok := fleetFind(rep, sid)
	if !ok || own.Engine != audit.EngineSecrun || own.Name != "own" || own.Image.Ref != "registry.local/app:1" ||
		own.Image.Digest != "sha256:0123" || len(own.Findings) != 0 || own.Input == nil || own.Input.Request.Source != "audit" {
		t.Errorf("secrun container: %+v findings %v", own.FleetContainer, own.Findings)
	}
	// The audit reads /proc only: a second audit adds no process to any
	// container's cgroup.
	before := cgroupProcsOf(t, rep)
	if _, err := audit.AuditFleet(context.Background(), nil, fleetLoadCIS(t), opts); err != nil {
		t.Fatal(err)
	}
	if after := cgroupProcsOf(t, rep); !maps.Equal(before, after) {
		t.Errorf("container cgroups changed during the audit:\nbefore %v\nafter  %v", before, after)
	}
	for _, c := range rep.Containers {
		if c.ID == sid {
			continue
		}
		if c.Engine != audit.EngineRunc || c.Effective == nil || c.Effective.ProcessSource != "cgroup" || len(c.Effective.Processes) != 1 {
			t.Errorf("%s: engine %s, effective %+v; want runc, one process found through its cgroup", c.ID, c.Engine, c.Effective)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr, ok := fleetFind(rep, ids[c.name])
			if !ok {
				t.Fatalf("container %s not found; report has %d containers", ids[c.name], len(rep.Containers))
			}
			got := fleetControlSet(cr)
			t.Logf("%s: %s", c.name, strings.Join(got, " "))
			for _, f := range cr.Findings {
				t.Logf("  %s", f)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("controls = %q, want %q", got, c.want)
			}
		})
	}
}

// TestFleetDrift changes what the kernel enforces on running containers
// without touching their declared config, and checks that the audit
// reports the difference.
func TestFleetDrift(t *testing.T) {
	e := newRuncEnv(t)

	// A host process moved into the container's cgroup, and the cgroup's
	// limits loosened from outside.
	hostProc := e.hardenedSpec("drift-host-proc")
	pid := e.start("drift-host-proc", hostProc)
	eff, err := audit.Effective(pid)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("/bin/busybox", "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sleeper.Process.Kill(); err == nil {
			sleeper.Wait()
		}
	})
	writeCgroup(t, eff.Cgroup, []string{"unified", ""}, "cgroup.procs", strconv.Itoa(sleeper.Process.Pid))
	writeCgroup(t, eff.Cgroup, []string{"memory"}, "memory.limit_in_bytes", "-1")
	writeCgroup(t, eff.Cgroup, []string{"pids"}, "pids.max", "max")

	// A process added with runc exec: a capability beyond the declared set
	// and no no_new_privs; then / remounted read-write from inside.
	execd := e.hardenedSpec("drift-exec")
	c := append(slices.Clone(execd.Process.Capabilities.Bounding), "CAP_SYS_ADMIN")
	execd.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	e.start("drift-exec", execd)
	extra := append(slices.Clone(c), "CAP_SYS_PTRACE")
	proc := specs.Process{Args: []string{"/bin/sleep", "1001"}, Cwd: "/", Env: []string{"PATH=/bin"},
		Capabilities: &specs.LinuxCapabilities{Bounding: extra, Effective: extra, Permitted: extra}}
	pj, err := json.Marshal(proc)
	if err != nil {
		t.Fatal(err)
	}
	procFile := filepath.Join(e.dir, "exec-process.json")
	if err := os.WriteFile(procFile, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	e.runcCmd(e.root, "exec", "-d", "--process", procFile, "drift-exec")
	e.runcCmd(e.root, "exec", "drift-exec", "/bin/mount", "-o", "remount,bind,rw", "/")

	rep, err := audit.AuditFleet(context.Background(), nil, fleetLoadCIS(t), audit.FleetOptions{
		Discover: audit.DiscoverOptions{RuncRoots: []string{e.root}}, Host: noLSMHost})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{"drift-host-proc", []string{"drift/drift-capabilities", "drift/drift-memory-limit", "drift/drift-namespaces",
			"drift/drift-no-new-privileges", "drift/drift-pids-limit", "drift/drift-readonly-rootfs", "drift/drift-seccomp", "drift/drift-user-namespace"}},
		{"drift-exec", []string{"cis/capabilities", "drift/drift-capabilities", "drift/drift-no-new-privileges", "drift/drift-readonly-rootfs"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			cr, ok := fleetFind(rep, tc.id)
			if !ok {
				t.Fatalf("container %s not found", tc.id)
			}
			for _, f := range cr.Findings {
				t.Logf("  %s", f)
			}
			if got := fleetControlSet(cr); !slices.Equal(got, tc.want) {
				t.Errorf("controls = %q, want %q", got, tc.want)
			}
		})
	}
	cr, _ := fleetFind(rep, "drift-host-proc")
	if cr.Effective == nil || len(cr.Effective.Processes) != 2 {
		t.Fatalf("want the init and the moved host process, got %+v", cr.Effective)
	}
}

// writeCgroup writes file in the first of the hierarchies (under
// /sys/fs/cgroup) that has the container's cgroup.
func writeCgroup(t *testing.T, cgroup string, hierarchies []string, file, value string) {
	t.Helper()
	for _, h := range hierarchies {
		p := filepath.Join("/sys/fs/cgroup", h, cgroup, file)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
		return
	}
	t.Fatalf("no %s for cgroup %s in %v", file, cgroup, hierarchies)
}

// TestFleetEngines runs containers under private Docker, podman and
// containerd daemons, hardened and not, and checks each one's engine,
// name, image and exact set of controls.
func TestFleetEngines(t *testing.T) {
	e := newEngineEnv(t)
	e.startContainerd()
	e.startDocker()
	e.startPodman()

	hardDocker := []string{"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "64m", "--pids-limit", "64", "--cpus", "0.5"}
	hardPodman := append(slices.Clone(hardDocker), "--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536")
	type want struct {
		engine, name, image string
		controls            []string
	}
	wants := map[string]want{}
	add := func(id string, w want) { wants[id] = w }

	add(e.dockerRun("d-hardened", hardDocker...), want{"docker", "d-hardened", "busybox:fleet", []string{"cis/host-userns"}})
	add(e.dockerRun("d-docker-sock", append(slices.Clone(hardDocker), "-v", e.dockerSock+":/var/run/docker.sock")...),
		want{"docker", "d-docker-sock", "busybox:fleet", []string{"cis/host-userns", "cis/runtime-socket"}})
	add(e.dockerRun("d-host-pid", append(slices.Clone(hardDocker), "--pid", "host")...),
		want{"docker", "d-host-pid", "busybox:fleet", []string{"cis/host-pid", "cis/host-userns"}})
	add(e.dockerRun("d-sys-admin", append(slices.Clone(hardDocker), "--cap-add", "SYS_ADMIN")...),
		want{"docker", "d-sys-admin", "busybox:fleet", []string{"cis/capabilities", "cis/host-userns"}})
	add(e.dockerRun("d-seccomp-unconfined", append(slices.Clone(hardDocker), "--security-opt", "seccomp=unconfined")...),
		want{"docker", "d-seccomp-unconfined", "busybox:fleet", []string{"cis/host-userns", "cis/seccomp"}})
	add(e.dockerRun("d-nnp-false", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges=false", "--memory", "64m", "--pids-limit", "64", "--cpus", "0.5"),
		want{"docker", "d-nnp-false", "busybox:fleet", []string{"cis/host-userns", "cis/no-new-privileges"}})

	add(e.podmanRun("p-hardened", hardPodman...), want{"podman", "p-hardened", "localhost/busybox:fleet", nil})
	add(e.podmanRun("p-privileged", "--privileged"), want{"podman", "p-privileged", "localhost/busybox:fleet",
		[]string{"cis/capabilities", "cis/cpu-limit", "cis/host-devices", "cis/host-userns", "cis/memory-limit", "cis/no-new-privileges",
			"cis/privileged", "cis/readonly-rootfs", "cis/seccomp"}})

	e.ctrRun("c-default")
	add("c-default", want{"containerd", "", "", []string{"cis/cpu-limit", "cis/host-userns", "cis/memory-limit", "cis/pids-limit", "cis/readonly-rootfs", "cis/seccomp"}})
	e.ctrRun("c-privileged", "--privileged")
	add("c-privileged", want{"containerd", "", "", []string{"cis/capabilities", "cis/cpu-limit", "cis/host-devices", "cis/host-userns",
		"cis/memory-limit", "cis/pids-limit", "cis/privileged", "cis/readonly-rootfs", "cis/seccomp"}})

	opts := audit.FleetOptions{Host: noLSMHost, Discover: audit.DiscoverOptions{
		DockerSocket:        e.dockerSock,
		ContainerdStateDirs: []string{e.ctdState},
		RuncRoots:           []string{e.ctdRuncRoot, filepath.Join(e.dockerExec, "runtime-runc"), e.podmanRunc},
		Podman:              []audit.PodmanStorage{{Root: e.podmanRoot, RunRoot: e.podmanRunRoot}},
	}}
	rep, err := audit.AuditFleet(context.Background(), nil, fleetLoadCIS(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("errors: %q", rep.Errors)
	}
	if len(rep.Containers) != len(wants) {
		t.Errorf("found %d containers, want %d", len(rep.Containers), len(wants))
	}
	for id, w := range wants {
		t.Run(w.engine+"/"+fleetOr(w.name, id), func(t *testing.T) {
			cr, ok := fleetFind(rep, id)
			if !ok {
				t.Fatalf("container %s not found", id)
			}
			for _, f := range cr.Findings {
				t.Logf("  %s", f)
			}
			if cr.Engine != w.engine || cr.Name != w.name || cr.Image.Ref != w.image {
				t.Errorf("engine/name/image = %s/%s/%s, want %s/%s/%s", cr.Engine, cr.Name, cr.Image.Ref, w.engine, w.name, w.image)
			}
			if got := fleetControlSet(cr); !slices.Equal(got, w.controls) {
				t.Errorf("controls = %q, want %q", got, w.controls)
			}
		})
	}
	before := cgroupProcsOf(t, rep)
	if _, err := audit.AuditFleet(context.Background(), nil, fleetLoadCIS(t), opts); err != nil {
		t.Fatal(err)
	}
	if after := cgroupProcsOf(t, rep); !maps.Equal(before, after) {
		t.Errorf("container cgroups changed during the audit:\nbefore %v\nafter  %v", before, after)
	}
}

// waitComm waits for process pid to exec a program named comm.
func waitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not become %s: %q %v", pid, comm, b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fleetOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

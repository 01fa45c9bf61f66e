package audit_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
)

// These tests lay out engines' state files by hand around a live process
// (this test process stands in for a container's init), so discovery is
// checked without root and without engines.

func fleetSelfStart(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fleetWriteJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fleetWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runcStateFile writes ROOT/[NS/]ID/state.json naming bundle.
func fleetRuncState(t *testing.T, dir, id, bundle string, pid int, start uint64) {
	t.Helper()
	fleetWriteJSON(t, filepath.Join(dir, "state.json"), map[string]any{
		"id": id, "init_process_pid": pid, "init_process_start": start,
		"config": map[string]any{"labels": []string{"bundle=" + bundle}},
	})
}

func fleetBundle(t *testing.T, dir string, args ...string) {
	t.Helper()
	fleetWriteJSON(t, filepath.Join(dir, "config.json"), specs.Spec{Version: specs.Version, Process: &specs.Process{Args: args}, Root: &specs.Root{Path: "rootfs"}})
}

func TestDiscoverLayouts(t *testing.T) {
	pid, start := os.Getpid(), fleetSelfStart(t)
	dir := t.TempDir()
	runcRoot := filepath.Join(dir, "runc")
	secrunRoot := filepath.Join(dir, "secrun")
	podman := audit.PodmanStorage{Root: filepath.Join(dir, "storage"), RunRoot: filepath.Join(dir, "storage-run")}

	// A plain runc container.
	fleetBundle(t, filepath.Join(dir, "bundles", "plain"), "/bin/plain")
	fleetRuncState(t, filepath.Join(runcRoot, "plain"), "plain", filepath.Join(dir, "bundles", "plain"), pid, start)
	// A runc state whose pid now belongs to another process (start differs).
	fleetBundle(t, filepath.Join(dir, "bundles", "stale"), "/bin/stale")
	fleetRuncState(t, filepath.Join(runcRoot, "stale"), "stale", filepath.Join(dir, "bundles", "stale"), pid, start+1)
	// Created but not started: runc's exec fifo is still there.
	fleetBundle(t, filepath.Join(dir, "bundles", "created"), "/bin/created")
	fleetRuncState(t, filepath.Join(runcRoot, "created"), "created", filepath.Join(dir, "bundles", "created"), os.Getppid(), 0)
	fleetWriteFile(t, filepath.Join(runcRoot, "created", "exec.fifo"), "")
	// secrun's own: runc state under ROOT/runc, record and bundle under
	// ROOT/containers/ID.
	sid := "5ec0000000000000000000000000000000000000000000000000000000000001"
	fleetBundle(t, filepath.Join(secrunRoot, "containers", sid), "/bin/secrun-app")
	fleetWriteJSON(t, filepath.Join(secrunRoot, "containers", sid, "container.json"),
		map[string]any{"id": sid, "name": "app", "image": "registry.local/app:1", "image_digest": "sha256:aa", "pid": pid})
	fleetRuncState(t, filepath.Join(secrunRoot, "runc", sid), sid, filepath.Join(secrunRoot, "containers", sid), pid+0, start)
	// A podman pid file that points at a host process: no start time to
	// check, and the process shares the host's mount namespace, so it is
	// not taken for the container.
	pmID := "d0efd68066bd480bbc66a9a46959aa42b8315316280dce2a2bd28f196f5912e5"
	b, err := os.ReadFile(filepath.Join(fleetTestdata, "engines", "storage-containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	fleetWriteFile(t, filepath.Join(podman.Root, "overlay-containers", "containers.json"), string(b))
	fleetBundle(t, filepath.Join(podman.Root, "overlay-containers", pmID, "userdata"), "/bin/podman-app")
	fleetWriteFile(t, filepath.Join(podman.RunRoot, "overlay-containers", pmID, "userdata", "pidfile"), strconv.Itoa(os.Getppid()))

	cs, err := audit.Discover(context.Background(), audit.DiscoverOptions{
		RuncRoots: []string{runcRoot, filepath.Join(dir, "missing")}, SecrunRoots: []string{secrunRoot}, Podman: []audit.PodmanStorage{podman}})
	if err != nil {
		t.Fatal(err)
	}
	// plain and the secrun container share this process as init; one pid
	// is one container, and the most specific engine names it.
	if len(cs) != 1 {
		t.Fatalf("found %d containers, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if c.Engine != audit.EngineSecrun || c.Name != "app" || c.Image.Ref != "registry.local/app:1" || c.Image.Digest != "sha256:aa" ||
		!c.Image.Identity || c.Signature.Verified || c.Signature.Error != audit.SignatureNotChecked || c.Spec == nil {
		t.Errorf("secrun container %+v", c)
	}
	if len(c.Sources) != 3 {
		t.Errorf("sources %q: want both runc states and the record", c.Sources)
	}

	// Without the secrun root, the same process is the plain runc one.
	cs, err = audit.Discover(context.Background(), audit.DiscoverOptions{RuncRoots: []string{runcRoot}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("%+v %v", cs, err)
	}
	if c := cs[0]; c.Engine != audit.EngineRunc || c.ID != "plain" || c.Image.Identity || c.Signature.Error != "no image identity" ||
		c.Spec == nil || c.Spec.Process.Args[0] != "/bin/plain" {
		t.Errorf("runc container %+v", c)
	}
}

func TestDiscoverReportsUnreadableState(t *testing.T) {
	dir := t.TempDir()
	fleetWriteFile(t, filepath.Join(dir, "runc", "broken", "state.json"), "{not json")
	cs, err := audit.Discover(context.Background(), audit.DiscoverOptions{RuncRoots: []string{filepath.Join(dir, "runc")}})
	if err == nil || !strings.Contains(err.Error(), "broken") || len(cs) != 0 {
		t.Errorf("containers %v, error %v; want an error naming the broken state", cs, err)
	}
	pid, start := os.Getpid(), fleetSelfStart(t)
	fleetRuncState(t, filepath.Join(dir, "runc2", "nobundle"), "nobundle", filepath.Join(dir, "gone"), pid, start)
	cs, err = audit.Discover(context.Background(), audit.DiscoverOptions{RuncRoots: []string{filepath.Join(dir, "runc2")}})
	if err != nil || len(cs) != 1 || cs[0].Spec != nil || len(cs[0].Problems) == 0 {
		t.Errorf("containers %+v, %v; want one without a spec and a problem saying so", cs, err)
	}
}

// fakeDocker serves the Docker Engine API endpoints the audit uses from
// fixtures, over a unix socket.
func fleetFakeDocker(t *testing.T, sock string, extra []map[string]any, pids map[string]int) {
	t.Helper()
	containers, err := os.ReadFile(filepath.Join(fleetTestdata, "engines", "docker-containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	images, err := os.ReadFile(filepath.Join(fleetTestdata, "engines", "docker-images.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(containers, &list); err != nil {
		t.Fatal(err)
	}
	list = append(list, extra...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, _ *http.Request) {
		if err := json.NewEncoder(w).Encode(list); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("GET /images/json", func(w http.ResponseWriter, _ *http.Request) { w.Write(images) })
	mux.HandleFunc("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		pid, ok := pids[r.PathValue("id")]
		if !ok {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"State": map[string]any{"Pid": pid, "Running": true}})
	})
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func TestDiscoverDocker(t *testing.T) {
	pid, start := os.Getpid(), fleetSelfStart(t)
	dir, err := os.MkdirTemp("", "fleet-docker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	webID := "09f2f82b36875c620f83f2e98f76a213c59f8d2df0fc8e9362bdc07812d53efb"
	state := filepath.Join(dir, "ctd-state")
	task := filepath.Join(state, "io.containerd.runtime.v2.task", "moby", webID)
	fleetBundle(t, task, "/bin/web")
	fleetWriteFile(t, filepath.Join(task, "init.pid"), strconv.Itoa(pid))
	fleetWriteJSON(t, filepath.Join(task, "options.json"), map[string]string{"root": filepath.Join(dir, "runtime-runc")})
	fleetRuncState(t, filepath.Join(dir, "runtime-runc", "moby", webID), webID, task, pid, start)
	sock := filepath.Join(dir, "docker.sock")
	lostID := strings.Repeat("f", 64)
	fleetFakeDocker(t, sock, []map[string]any{{"Id": lostID, "Names": []string{"/lost"}, "Image": "busybox:fleet", "ImageID": "sha256:712c", "State": "running"}},
		map[string]int{lostID: os.Getppid()})

	cis := fleetLoadCIS(t)
	rep, err := audit.AuditFleet(context.Background(), nil, cis, audit.FleetOptions{Host: noLSMHost, Discover: audit.DiscoverOptions{
		DockerSocket: sock, ContainerdStateDirs: []string{state}, RuncRoots: []string{filepath.Join(dir, "runtime-runc")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors %q", rep.Errors)
	}
	web, ok := fleetFind(rep, webID)
	if !ok {
		t.Fatalf("web not found in %+v", rep.Containers)
	}
	if web.Engine != audit.EngineDocker || web.Name != "web" || web.Namespace != "moby" || web.Image.Ref != "busybox:fleet" ||
		web.Image.Digest != "sha256:e437ce18f0d0d2c611826047d52858054df02160b46b3fe6dd369c34fb2e7d2b" || !slices.Equal(web.Ports, []int{80}) {
		t.Errorf("web %+v", web.FleetContainer)
	}
	if !slices.Contains(fleetControlSet(web), "cis/privileged-ports") {
		t.Errorf("port 80 published but no privileged-ports finding: %q", fleetControlSet(web))
	}
	// Docker knows a running container whose bundle is nowhere in the
	// state directories: it is audited as incomplete, not forgotten.
	lost, ok := fleetFind(rep, lostID)
	if !ok {
		t.Fatalf("lost not found in %+v", rep.Containers)
	}
	if lost.Name != "lost" || !slices.Contains(fleetControlSet(lost), "audit/audit-incomplete") {
		t.Errorf("lost: %+v %q", lost.FleetContainer, fleetControlSet(lost))
	}

	// A socket nobody answers: an error for that place, the rest found.
	dead := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	fleetWriteFile(t, dead, "")
	cs, err := audit.Discover(context.Background(), audit.DiscoverOptions{DockerSocket: dead, ContainerdStateDirs: []string{state}})
	if err == nil || !strings.Contains(err.Error(), "docker") || len(cs) != 1 || cs[0].Engine != audit.EngineDocker {
		t.Errorf("containers %+v, error %v", cs, err)
	}
	// No socket at all is not an error: Docker is not installed.
	if _, err := audit.Discover(context.Background(), audit.DiscoverOptions{DockerSocket: filepath.Join(dir, "none.sock")}); err != nil {
		t.Errorf("missing socket: %v", err)
	}
}

func TestDiscoverConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(fleetTestdata, "discover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.ParseDiscoverConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Apply(audit.DefaultDiscoverOptions())
	if o.DockerSocket != "/run/user/1000/docker.sock" || !slices.Contains(o.RuncRoots, "/run/my-orchestrator/runc") ||
		!slices.Contains(o.RuncRoots, "/run/runc") || !slices.Contains(o.ContainerdStateDirs, "/run/k3s/containerd") ||
		len(o.Podman) != 2 || !slices.Contains(o.SecrunRoots, "/srv/secrun") {
		t.Errorf("options %+v", o)
	}
	for name, in := range map[string]string{
		"unknown key":     "runc_root: [/x]",
		"relative":        "runc_roots: [run/runc]",
		"podman no root":  "podman: [{runroot: /run/x}]",
		"not a list":      "runc_roots: /x",
		"relative socket": "docker_socket: docker.sock",
	} {
		if _, err := audit.ParseDiscoverConfig([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	empty := ""
	if o := (audit.DiscoverConfig{DockerSocket: &empty}).Apply(audit.DefaultDiscoverOptions()); o.DockerSocket != "" {
		t.Error("docker_socket \"\" must stop asking Docker")
	}
}

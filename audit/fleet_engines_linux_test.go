package audit_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
)

// engineEnv runs private container engines: a containerd with its own
// root, state and socket; a dockerd on it with its own data root, exec root
// and socket; podman with its own root, run root, tmpdir and runc root.
// Every daemon is stopped by its pid.
type engineEnv struct {
	t       testing.TB
	dir     string
	runc    string
	archive string // busybox as a docker-archive, tagged busybox:fleet

	ctdSock, ctdState, ctdRoot string
	ctdNS                      string
	ctdRuncRoot                string

	dockerSock, dockerExec, dockerData string
	docker                             string

	podmanRoot, podmanRunRoot, podmanTmp, podmanRunc string
}

func fleetRequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s (the fleet audit is tested against real engines)", name, pkg)
	}
	return p
}

func newEngineEnv(t testing.TB) *engineEnv {
	t.Helper()
	testenv.RequireRoot(t)
	// Short paths: containerd and dockerd put unix sockets below them.
	dir, err := os.MkdirTemp("", "fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	e := &engineEnv{t: t, dir: dir, runc: testenv.Runc(t),
		ctdSock: filepath.Join(dir, "ctd.sock"), ctdState: filepath.Join(dir, "ctd-state"), ctdRoot: filepath.Join(dir, "ctd-root"),
		ctdNS: "fleettest", ctdRuncRoot: filepath.Join(dir, "ctd-runc"),
		dockerSock: filepath.Join(dir, "docker.sock"), dockerExec: filepath.Join(dir, "d-exec"), dockerData: filepath.Join(dir, "d-data"),
		podmanRoot: filepath.Join(dir, "p-root"), podmanRunRoot: filepath.Join(dir, "p-run"), podmanTmp: filepath.Join(dir, "p-tmp"), podmanRunc: filepath.Join(dir, "p-runc"),
	}
	e.archive = filepath.Join(dir, "busybox.tar")
	imagetest.WriteDockerArchive(t, e.archive, imagetest.BusyboxImage(t), "busybox:fleet")
	return e
}

// daemon starts a long-running process whose output goes to a log file,
// and stops it by pid at cleanup (SIGTERM, then SIGKILL).
func (e *engineEnv) daemon(name string, args ...string) {
	e.t.Helper()
	log, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	e.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

func (e *engineEnv) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// run runs a client command and returns its trimmed stdout.
func (e *engineEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *engineEnv) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// Files, not pipes: detached containers may inherit the client's stdio.
	out, err := os.CreateTemp(e.dir, "out-")
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
	return strings.TrimSpace(string(b)), err
}

func (e *engineEnv) waitFor(what string, ok func() bool, log string) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not come up in 90s:\n%s", what, e.logTail(log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startContainerd starts a private containerd (CRI disabled).
func (e *engineEnv) startContainerd() {
	e.t.Helper()
	bin := fleetRequireTool(e.t, "containerd", "containerd")
	ctr := fleetRequireTool(e.t, "ctr", "containerd")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, e.ctdRoot, e.ctdState, e.ctdSock, e.ctdSock+".ttrpc", filepath.Join(e.dir, "ctd-opt"))
	cfgPath := filepath.Join(e.dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.daemon("containerd", bin, "--config", cfgPath, "--log-level", "warn")
	e.waitFor("containerd", func() bool {
		_, err := e.try(ctr, "--address", e.ctdSock, "version")
		return err == nil
	}, "containerd")
	e.ctr("images", "import", e.archive)
}

// ctr runs ctr against the private containerd in the test namespace.
func (e *engineEnv) ctr(args ...string) string {
	e.t.Helper()
	return e.run(append([]string{"ctr", "--address", e.ctdSock, "--namespace", e.ctdNS}, args...)...)
}

// ctrRun starts a detached containerd task with the pinned runc and a
// private runc root; stopped at cleanup.
func (e *engineEnv) ctrRun(id string, flags ...string) {
	e.t.Helper()
	args := append([]string{"run", "-d", "--runc-binary", e.runc, "--runc-root", e.ctdRuncRoot}, flags...)
	e.ctr(append(args, "docker.io/library/busybox:fleet", id, "sleep", "1000")...)
	e.t.Cleanup(func() {
		base := []string{"ctr", "--address", e.ctdSock, "--namespace", e.ctdNS}
		if out, err := e.try(append(base, "task", "kill", "-s", "SIGKILL", id)...); err != nil {
			e.t.Logf("cleanup: ctr task kill %s: %v %s", id, err, out)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := e.try(append(base, "task", "delete", id)...); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, err := e.try(append(base, "container", "delete", id)...); err != nil {
			e.t.Logf("cleanup: ctr container delete %s: %v %s", id, err, out)
		}
	})
}

// startDocker starts a private dockerd on the private containerd.
func (e *engineEnv) startDocker() {
	e.t.Helper()
	bin := fleetRequireTool(e.t, "dockerd", "docker.io")
	e.docker = fleetRequireTool(e.t, "docker", "docker.io")
	cfg := filepath.Join(e.dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.daemon("dockerd", bin, "--config-file", cfg, "--data-root", e.dockerData, "--exec-root", e.dockerExec,
		"-H", "unix://"+e.dockerSock, "--pidfile", filepath.Join(e.dir, "dockerd.pid"), "--containerd", e.ctdSock,
		"--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false", "--log-level", "warn")
	e.waitFor("dockerd", func() bool {
		_, err := e.try(e.docker, "-H", "unix://"+e.dockerSock, "version")
		return err == nil
	}, "dockerd")
	e.t.Cleanup(func() {
		ids, err := e.try(e.docker, "-H", "unix://"+e.dockerSock, "ps", "-aq")
		if err == nil && ids != "" {
			if out, err := e.try(append([]string{e.docker, "-H", "unix://" + e.dockerSock, "rm", "-f"}, strings.Fields(ids)...)...); err != nil {
				e.t.Logf("cleanup: docker rm: %v %s", err, out)
			}
		}
	})
	e.dockerCmd("load", "-i", e.archive)
}

func (e *engineEnv) dockerCmd(args ...string) string {
	e.t.Helper()
	return e.run(append([]string{e.docker, "-H", "unix://" + e.dockerSock}, args...)...)
}

// dockerRun starts a detached Docker container and returns its id.
func (e *engineEnv) dockerRun(name string, flags ...string) string {
	e.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "--network", "none"}, flags...)
	return e.dockerCmd(append(args, "busybox:fleet", "sleep", "1000")...)
}

func (e *engineEnv) podmanArgs() []string {
	return []string{"podman", "--root", e.podmanRoot, "--runroot", e.podmanRunRoot, "--tmpdir", e.podmanTmp,
		"--storage-driver", "overlay", "--runtime", e.runc, "--runtime-flag", "root=" + e.podmanRunc,
		"--cgroup-manager", "cgroupfs", "--events-backend", "file"}
}

func (e *engineEnv) podman(args ...string) string {
	e.t.Helper()
	return e.run(append(e.podmanArgs(), args...)...)
}

// startPodman loads the image into a private podman store.
func (e *engineEnv) startPodman() {
	e.t.Helper()
	fleetRequireTool(e.t, "podman", "podman")
	e.podman("load", "-i", e.archive)
	e.t.Cleanup(func() {
		if out, err := e.try(append(e.podmanArgs(), "rm", "-f", "-a", "-t", "0")...); err != nil {
			e.t.Logf("cleanup: podman rm: %v %s", err, out)
		}
		if out, err := e.try(append(e.podmanArgs(), "system", "reset", "-f")...); err != nil {
			e.t.Logf("cleanup: podman system reset: %v %s", err, out)
		}
	})
}

// podmanRun starts a detached podman container and returns its id.
func (e *engineEnv) podmanRun(name string, flags ...string) string {
	e.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}, flags...)
	return e.podman(append(args, "localhost/busybox:fleet", "sleep", "1000")...)
}

func fleetPidOf(t testing.TB, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

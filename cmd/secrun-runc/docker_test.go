package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
)

const testImage = "secrun.test/busybox:latest"

// TestDocker runs Docker (Debian's docker.io, started by hand with its own
// data root, exec root and socket) with secrun-runc added as a runtime:
//
//	dockerd --add-runtime secrun=PATH/secrun-runc ...
//	docker run --runtime secrun ...
//
// A hardened container runs; --privileged and a mounted docker.sock are
// refused with secrun's message in the docker CLI's output; docker exec is
// decided and audited; docker stop and rm work.
func TestDocker(t *testing.T) {
	testenv.RequireRoot(t)
	dockerd := requireTool(t, "dockerd")
	docker := requireTool(t, "docker")
	bin, _ := binaries(t)
	dir := shortTempDir(t, "srdk-")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	sock := filepath.Join(dir, "docker.sock")
	d := startDaemon(t, filepath.Join(dir, "dockerd.log"), []string{"SECRUN_RUNTIME_CONFIG=" + s.config},
		dockerd, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--iptables=false", "--bridge=none", "--add-runtime", "secrun="+bin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + filepath.Join(dir, "cli")}
	dk := func(args ...string) (string, error) { return command(ctx, env, docker, args...) }
	d.waitFor(t, 90*time.Second, func() error { _, err := dk("version"); return err })
	t.Cleanup(func() {
		if out, err := dk("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
			if out, err := dk(append([]string{"rm", "-f"}, strings.Fields(out)...)...); err != nil {
				t.Logf("docker rm -f: %v\n%s", err, out)
			}
		}
	})

	archive := filepath.Join(dir, "busybox.tar")
	imagetest.WriteDockerArchive(t, archive, imagetest.BusyboxImage(t), testImage)
	if out, err := dk("load", "-i", archive); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}

	t.Run("hardened container runs", func(t *testing.T) {
		out, err := dk("run", "--rm", "--runtime", "secrun", "--network", "none", "--read-only", "--cap-drop", "ALL",
			"--security-opt", "no-new-privileges", "--pids-limit", "64", "--memory", "64m", testImage,
			"sh", "-c", "echo hardened-ok; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
		if err != nil {
			t.Fatalf("docker run: %v\n%s", err, out)
		}
		for _, want := range []string{"hardened-ok", "Seccomp:\t2", "NoNewPrivs:\t1"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	denied := []struct {
		name string
		args []string
		want []string
	}{
		{"--privileged is refused", []string{"--privileged"},
			[]string{"OCI runtime create failed", "secrun: denied by policy baseline", "privileged: privileged containers are not allowed"}},
		{"the Docker socket is refused", []string{"-v", fakeSocket(t, dir) + ":/var/run/docker.sock"},
			[]string{"OCI runtime create failed", "secrun: denied by policy baseline", "runtime-socket: host path", "is a container runtime socket"}},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm", "--runtime", "secrun"}, tc.args...), testImage, "true")
			out, err := dk(args...)
			if err == nil {
				t.Fatalf("docker run %s succeeded:\n%s", strings.Join(tc.args, " "), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("docker's output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("exec is decided and audited, stop and rm work", func(t *testing.T) {
		if out, err := dk("run", "-d", "--name", "web", "--runtime", "secrun", "--network", "none", testImage, "sleep", "300"); err != nil {
			t.Fatalf("docker run -d: %v\n%s", err, out)
		}
		out, err := dk("exec", "web", "sh", "-c", "echo exec-ok")
		if err != nil || !strings.Contains(out, "exec-ok") {
			t.Fatalf("docker exec: %v\n%s", err, out)
		}
		out, err = dk("exec", "--privileged", "web", "true")
		if err == nil || !strings.Contains(out, "secrun: denied by policy baseline") {
			t.Fatalf("docker exec --privileged: %v\n%s", err, out)
		}
		if out, err := dk("stop", "-t", "2", "web"); err != nil {
			t.Fatalf("docker stop: %v\n%s", err, out)
		}
		if out, err := dk("rm", "web"); err != nil {
			t.Fatalf("docker rm: %v\n%s", err, out)
		}
		if out, err := dk("ps", "-aq", "--filter", "name=web"); err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("web is still listed: %v %q", err, out)
		}
	})

	recs := s.records(t)
	checkEngineTrail(t, recs, "docker")
	// Containers with a network namespace of their own (--network none)
	// carry dockerd's libnetwork-setkey prestart hook: the built-in
	// policy's allowed_hooks let it through, and the trail says so.
	if got := find(recs, audit.KindRuntimeInvoked, audit.OutcomeSuccess, "libnetwork-setkey"); len(got) < 2 {
		t.Errorf("want at least 2 runtime.invoked records listing dockerd's setkey hook, got %d", len(got))
	}
	for _, r := range find(recs, audit.KindRuntimeInvoked, audit.OutcomeSuccess, "libnetwork-setkey") {
		hooks, _ := r.Fields["spec.hooks"].([]any)
		if len(hooks) != 1 || !strings.HasPrefix(fmt.Sprint(hooks[0]), "prestart[0] /proc/"+strconv.Itoa(d.cmd.Process.Pid)+"/exe libnetwork-setkey -exec-root="+filepath.Join(dir, "exec")+" ") {
			t.Errorf("runtime.invoked spec.hooks %v, want only dockerd's (pid %d) setkey hook", r.Fields["spec.hooks"], d.cmd.Process.Pid)
		}
	}
}

// checkEngineTrail checks what every engine test leaves in the trail: the
// hardened start allowed and invoked, both refusals with their violations,
// the exec allowed with its arguments and the privileged exec denied.
func checkEngineTrail(t *testing.T, recs []audit.Record, engine string) {
	t.Helper()
	for _, c := range []struct {
		kind, outcome, text string
		atLeast             int
	}{
		{audit.KindPolicyDecision, audit.OutcomeAllowed, "", 3},
		{audit.KindRuntimeInvoked, audit.OutcomeSuccess, "create", 2},
		{audit.KindContainerDenied, audit.OutcomeDenied, "privileged containers are not allowed", 1},
		{audit.KindContainerDenied, audit.OutcomeDenied, "is a container runtime socket", 1},
		{audit.KindContainerExec, audit.OutcomeSuccess, "exec-ok", 1},
		{audit.KindContainerDenied, audit.OutcomeDenied, "exec", 1},
	} {
		if got := find(recs, c.kind, c.outcome, c.text); len(got) < c.atLeast {
			t.Errorf("%s: want at least %d %s/%s records mentioning %q, got %d", engine, c.atLeast, c.kind, c.outcome, c.text, len(got))
		}
	}
	for _, r := range find(recs, audit.KindPolicyDecision, "", "") {
		if r.Policy == nil || r.Policy.Name != "baseline" || r.Policy.Hash == "" || r.Container.ID == "" {
			t.Errorf("%s: decision without policy or container identity: %+v", engine, r)
		}
	}
	if t.Failed() {
		for _, r := range recs {
			t.Logf("%s %s %s %v", r.Kind, r.Outcome, r.Reason, r.Fields)
		}
	}
}

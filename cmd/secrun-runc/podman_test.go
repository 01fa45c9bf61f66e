package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
)

// TestPodman runs podman (Debian's, private --root and --runroot) with
// secrun-runc as its OCI runtime:
//
//	podman --runtime PATH/secrun-runc --runtime-flag secrun-config=FILE ...
//
// podman runs the runtime with a scrubbed environment, so the config is
// named with --runtime-flag (secrun-runc's --secrun-config). The cases are
// Docker's.
func TestPodman(t *testing.T) {
	testenv.RequireRoot(t)
	podman := requireTool(t, "podman")
	bin, _ := binaries(t)
	dir := shortTempDir(t, "srpm-")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	global := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp"),
		"--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime", bin, "--runtime-flag", "secrun-config=" + s.config}
	pm := func(args ...string) (string, error) {
		return command(ctx, nil, podman, append(append([]string{}, global...), args...)...)
	}
	// This host's bounding set lacks CAP_SYS_RESOURCE, so podman must not
	// raise the rlimits above the current ones.
	limits := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"}
	t.Cleanup(func() {
		if out, err := command(context.Background(), nil, podman, append(append([]string{}, global...), "rm", "-af", "-t", "0")...); err != nil {
			t.Logf("podman rm -af: %v\n%s", err, out)
		}
	})

	archive := filepath.Join(dir, "busybox.tar")
	imagetest.WriteDockerArchive(t, archive, imagetest.BusyboxImage(t), testImage)
	if out, err := pm("load", "-i", archive); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}

	t.Run("hardened container runs", func(t *testing.T) {
		args := append(append([]string{"run", "--rm"}, limits...), "--read-only", "--cap-drop", "ALL",
			"--security-opt", "no-new-privileges", "--pids-limit", "64", testImage,
			"sh", "-c", "echo hardened-ok; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
		out, err := pm(args...)
		if err != nil {
			t.Fatalf("podman run: %v\n%s", err, out)
		}
		for _, want := range []string{"hardened-ok", "Seccomp:\t2", "NoNewPrivs:\t1"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"--privileged is refused", []string{"--privileged"},
			[]string{"secrun: denied by policy baseline", "privileged: privileged containers are not allowed"}},
		{"the Docker socket is refused", []string{"-v", fakeSocket(t, dir) + ":/var/run/docker.sock"},
			[]string{"secrun: denied by policy baseline", "is a container runtime socket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(append([]string{"run", "--rm"}, limits...), tc.args...), testImage, "true")
			out, err := pm(args...)
			if err == nil {
				t.Fatalf("podman run %s succeeded:\n%s", strings.Join(tc.args, " "), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("podman's output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	// podman adds every hook its hooks directories hold: the built-in
	// policy refuses it before runc runs it.
	t.Run("a hook from a hooks directory is refused", func(t *testing.T) {
		hooksDir := filepath.Join(dir, "hooks.d")
		marker := filepath.Join(dir, "hook-ran")
		if err := os.MkdirAll(hooksDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeText(t, filepath.Join(hooksDir, "marker.json"), `{"version": "1.0.0", "hook": {"path": "/bin/sh", "args": ["sh", "-c", "touch `+marker+`"]}, "when": {"always": true}, "stages": ["prestart"]}`)
		args := append(append(append(append([]string{}, global...), "--hooks-dir", hooksDir, "run", "--rm"), limits...), testImage, "true")
		out, err := command(ctx, nil, podman, args...)
		if err == nil {
			t.Fatalf("podman run with a hook succeeded:\n%s", out)
		}
		for _, w := range []string{"secrun: denied by policy baseline", "hooks: OCI prestart hook 0 runs /bin/sh sh -c touch " + marker} {
			if !strings.Contains(out, w) {
				t.Errorf("podman's output lacks %q:\n%s", w, out)
			}
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Errorf("the refused hook ran: %v", err)
		}
	})

	t.Run("exec is decided and audited, stop and rm work", func(t *testing.T) {
		args := append(append([]string{"run", "-d", "--name", "web"}, limits...), testImage, "sleep", "300")
		if out, err := pm(args...); err != nil {
			t.Fatalf("podman run -d: %v\n%s", err, out)
		}
		out, err := pm("exec", "web", "sh", "-c", "echo exec-ok")
		if err != nil || !strings.Contains(out, "exec-ok") {
			t.Fatalf("podman exec: %v\n%s", err, out)
		}
		out, err = pm("exec", "--privileged", "web", "true")
		if err == nil || !strings.Contains(out, "secrun: denied by policy baseline") {
			t.Fatalf("podman exec --privileged: %v\n%s", err, out)
		}
		if out, err := pm("stop", "-t", "2", "web"); err != nil {
			t.Fatalf("podman stop: %v\n%s", err, out)
		}
		if out, err := pm("rm", "web"); err != nil {
			t.Fatalf("podman rm: %v\n%s", err, out)
		}
		if out, err := pm("ps", "-aq", "--filter", "name=web"); err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("web is still listed: %v %q", err, out)
		}
	})

	checkEngineTrail(t, s.records(t), "podman")

	// podman's cleanup process (its exit command) drops --runtime-flag:
	// secrun-runc then runs the runc beside it, and the runtime state of
	// every container is gone after rm.
	entries, err := os.ReadDir("/run/runc")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		out, err := command(ctx, nil, testenv.Runc(t), "state", e.Name())
		if err == nil && strings.Contains(out, dir) {
			t.Errorf("runc state of %s is left behind:\n%s", e.Name(), out)
		}
	}
}

package seccomp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file builds minimal OCI bundles by hand and runs them with runc, so
// the kernel tests of this package do not depend on secrun's runner.

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers with runc")
	}
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// runcPath finds runc: $SECRUN_RUNC, else bin/runc in the module root (what
// `make deps` installs), else runc on PATH.
func runcPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SECRUN_RUNC"); p != "" {
		return p
	}
	if p := filepath.Join(moduleRoot(t), "bin", "runc"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal("runc not found: set SECRUN_RUNC, run `make deps`, or put runc on PATH")
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var (
	probeOnce sync.Once
	probeBin  string
	probeErr  error
	probeDir  string
)

// probeBinary compiles testdata/seccomp/probe once per test binary, static.
func probeBinary(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		probeDir, probeErr = os.MkdirTemp("", "secrun-seccomp-probe-")
		if probeErr != nil {
			return
		}
		probeBin = filepath.Join(probeDir, "probe")
		cmd := exec.Command("go", "build", "-o", probeBin, "./testdata/seccomp/probe")
		cmd.Dir = moduleRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building probe: %w\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if probeDir != "" {
		os.RemoveAll(probeDir)
	}
	os.Exit(code)
}

func busyboxPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if fileExists(p) {
			return p
		}
	}
	t.Fatal("busybox not found: install busybox-static")
	return ""
}

var busyboxApplets = []string{"sh", "cat", "echo", "ls", "mkdir", "rm", "sleep", "true", "wc", "uname", "id", "grep", "seq", "touch", "head"}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// containerSpec describes one test container.
type containerSpec struct {
	Args    []string
	Seccomp *specs.LinuxSeccomp
	// Caps is the capability set of the process (all five sets); nil means
	// none at all.
	Caps []string
	// WithoutNoNewPrivs turns no_new_privs off (it is on by default), which
	// makes runc load the filter earlier.
	WithoutNoNewPrivs bool
	Timeout           time.Duration
}

type containerResult struct {
	Stdout, Stderr string
	ExitCode       int
}

var containerSeq atomic.Int64

// hostCaps is every capability in the test process's bounding set: all a
// container started by it can be granted.
func hostCaps(t testing.TB) []string {
	t.Helper()
	c, err := capability.NewPid2(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range capability.ListKnown() {
		if c.Get(capability.BOUNDING, k) {
			out = append(out, "CAP_"+strings.ToUpper(k.String()))
		}
	}
	return out
}

// writeBundle creates a bundle: rootfs with busybox, its applets and the
// probe in /bin, a writable /tmp, and config.json.
func writeBundle(t testing.TB, c containerSpec) string {
	t.Helper()
	bundle := t.TempDir()
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, busyboxPath(t), filepath.Join(root, "bin", "busybox"), 0o755)
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, probeBinary(t), filepath.Join(root, "bin", "probe"), 0o755)

	caps := &specs.LinuxCapabilities{}
	if c.Caps != nil {
		caps = &specs.LinuxCapabilities{Bounding: c.Caps, Effective: c.Caps, Permitted: c.Caps}
	}
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args:            c.Args,
			Env:             []string{"PATH=/bin"},
			Cwd:             "/",
			Capabilities:    caps,
			NoNewPrivileges: !c.WithoutNoNewPrivs,
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "seccomp-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
			Seccomp:       c.Seccomp,
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// runContainer runs c with `runc run` in the foreground and returns its
// output. A watchdog kills runc and everything it started (including a
// `runc init` stuck waiting for a seccomp agent) when c.Timeout passes.
func runContainer(t testing.TB, c containerSpec) containerResult {
	t.Helper()
	res, err := tryRunContainer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tryRunContainer(t testing.TB, c containerSpec) (containerResult, error) {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	bundle := writeBundle(t, c)
	runc := runcPath(t)
	state := t.TempDir()
	id := fmt.Sprintf("secrun-sc-%d-%d", os.Getpid(), containerSeq.Add(1))

	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return containerResult{}, fmt.Errorf("starting runc: %w", err)
	}
	done := make(chan struct{})
	var timedOut atomic.Bool
	go func() {
		select {
		case <-ctx.Done():
			timedOut.Store(true)
			// runc and its `runc init` share runc's process group.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	// Clean up whatever is left: a container killed by the watchdog, or
	// one whose init outlived runc.
	del := exec.Command(runc, "--root", state, "delete", "--force", id)
	if out, derr := del.CombinedOutput(); derr != nil && !strings.Contains(string(out), "does not exist") && !strings.Contains(string(out), "not exist") {
		t.Logf("runc delete %s: %v: %s", id, derr, out)
	}
	res := containerResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if timedOut.Load() {
		return res, fmt.Errorf("container %v timed out after %s (watchdog killed runc)\nstdout: %s\nstderr: %s", c.Args, c.Timeout, res.Stdout, res.Stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		return res, fmt.Errorf("runc: %w", err)
	}
	return res, nil
}

// probeResults parses the probe's "NAME ERRNO" lines.
func probeResults(t testing.TB, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("unexpected probe output line %q in\n%s", line, out)
		}
		m[f[0]] = f[1]
	}
	return m
}

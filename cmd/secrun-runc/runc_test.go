package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/internal/testenv"
)

// bundle makes a runc bundle (`runc spec`, busybox-static as the rootfs)
// running args, edited by edit.
func bundle(t testing.TB, dir string, args []string, edit func(*specs.Spec)) string {
	t.Helper()
	b := filepath.Join(dir, "bundle")
	bin := filepath.Join(b, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed for the rootfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sh", "echo", "cat", "sleep", "true", "grep"} {
		if err := os.Symlink("busybox", filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(testenv.Runc(t), "spec", "--bundle", b).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(b, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	// A cgroup of its own: runc's default is named after the container id.
	s.Linux.CgroupsPath = "/secrun-runc-test/" + filepath.Base(dir)
	t.Cleanup(func() { removeCgroups(t, s.Linux.CgroupsPath) })
	if edit != nil {
		edit(&s)
	}
	if data, err = json.MarshalIndent(&s, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// removeCgroups removes the test's cgroup directories (runc removes the
// container's own on delete) and their parent once it is empty.
func removeCgroups(t testing.TB, path string) {
	mounts, err := filepath.Glob("/sys/fs/cgroup/*")
	if err != nil {
		t.Logf("cgroup mounts: %v", err)
		return
	}
	for _, m := range append(mounts, "/sys/fs/cgroup") {
		for _, p := range []string{m + path, filepath.Dir(m + path)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EBUSY) &&
				!errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.ENOTDIR) {
				t.Logf("removing cgroup %s: %v", p, err)
			}
		}
	}
}

// wrapperCmd is secrun-runc with the site's config and a private runc root.
func wrapperCmd(ctx context.Context, s *site, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, wrapperBin, append([]string{"--root", filepath.Join(s.dir, "runc")}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SECRUN_RUNTIME_CONFIG=" + s.config, "SECRUN_ADMIT_SOCKET=" + s.socket}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func exitCode(t testing.TB, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestRuncLifecycle drives the OCI lifecycle through secrun-runc exactly as
// an engine does: create, state, start, kill, delete.
func TestRuncLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	binaries(t)
	dir := shortTempDir(t, "srrl-")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	b := bundle(t, dir, []string{"sleep", "300"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Output goes to a file, not a pipe: the container's init inherits it
	// and keeps it open.
	outFile := filepath.Join(dir, "out")
	step := func(args ...string) string {
		t.Helper()
		f, err := os.Create(outFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := wrapperCmd(ctx, s, args...)
		cmd.Stdout, cmd.Stderr = f, f
		err = cmd.Run()
		out, rerr := os.ReadFile(outFile)
		if err != nil || rerr != nil {
			t.Fatalf("secrun-runc %s: %v %v\n%s", strings.Join(args, " "), err, rerr, out)
		}
		return string(out)
	}
	pidFile := filepath.Join(dir, "init.pid")
	t.Cleanup(func() { wrapperCmd(context.Background(), s, "delete", "--force", "c1").Run() })
	step("create", "--bundle", b, "--pid-file", pidFile, "c1")
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal([]byte(step("state", "c1")), &st); err != nil || st.Status != "created" || st.Bundle != b {
		t.Fatalf("state after create: %+v, %v", st, err)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d (%v)", pid, st.Pid, err)
	}
	step("start", "c1")
	if err := json.Unmarshal([]byte(step("state", "c1")), &st); err != nil || st.Status != "running" {
		t.Fatalf("state after start: %+v, %v", st, err)
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.Pid), "status"))
	if err != nil || !strings.Contains(string(status), "Seccomp:\t2") {
		t.Fatalf("the container runs without the default seccomp filter: %v\n%s", err, status)
	}
	step("kill", "c1", "KILL")
	for i := 0; ; i++ {
		if err := json.Unmarshal([]byte(step("state", "c1")), &st); err == nil && st.Status == "stopped" {
			break
		}
		if i == 100 {
			t.Fatalf("still %s after kill", st.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	step("delete", "c1")
	out, err := wrapperCmd(ctx, s, "state", "c1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "does not exist") {
		t.Fatalf("state after delete: %v\n%s", err, out)
	}
	// Only the create was decided; the rest went straight to runc.
	recs := s.records(t)
	if n := len(find(recs, audit.KindPolicyDecision, "", "")); n != 1 {
		t.Errorf("%d decisions, want 1 (for create)", n)
	}
}

// TestRuncPassesThrough: after the decision secrun-runc is runc (the same
// process), so stdio, extra file descriptors, signals and the exit status
// are runc's.
func TestRuncPassesThrough(t *testing.T) {
	testenv.RequireRoot(t)
	binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("stdio and exit status", func(t *testing.T) {
		dir := shortTempDir(t, "srrp-")
		s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
		b := bundle(t, dir, []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"}, nil)
		cmd := wrapperCmd(ctx, s, "run", "--bundle", b, "r1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if code := exitCode(t, cmd.Run()); code != 7 {
			t.Fatalf("exit %d, want the container's 7; stderr %s", code, stderr.String())
		}
		if stdout.String() != "to-stdout\n" || stderr.String() != "to-stderr\n" {
			t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
	})

	t.Run("--preserve-fds", func(t *testing.T) {
		dir := shortTempDir(t, "srrp-")
		s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
		b := bundle(t, dir, []string{"sh", "-c", "cat <&3"}, nil)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := wrapperCmd(ctx, s, "run", "--preserve-fds", "1", "--bundle", b, "r2")
		cmd.ExtraFiles = []*os.File{r}
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if _, err := w.Write([]byte("through-fd-3\n")); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		if stdout.String() != "through-fd-3\n" {
			t.Errorf("the container read %q from fd 3", stdout.String())
		}
	})

	t.Run("signals reach runc, which is this process", func(t *testing.T) {
		dir := shortTempDir(t, "srrp-")
		s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
		b := bundle(t, dir, []string{"sh", "-c", `trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done`}, nil)
		cmd := wrapperCmd(ctx, s, "run", "--bundle", b, "r3")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := out.Read(buf)
		if err != nil || string(buf[:n]) != "ready\n" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe"))
		if err != nil || exe != testenv.Runc(t) {
			t.Errorf("process %d is %q, want runc itself: %v", cmd.Process.Pid, exe, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		n, _ = out.Read(buf)
		if code := exitCode(t, cmd.Wait()); code != 3 || string(buf[:n]) != "got-term\n" {
			t.Fatalf("exit %d after %q, want 3 after got-term", code, buf[:n])
		}
	})

	t.Run("a denial starts nothing", func(t *testing.T) {
		dir := shortTempDir(t, "srrp-")
		s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
		b := bundle(t, dir, []string{"true"}, func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		})
		logFile := filepath.Join(dir, "log.json")
		cmd := wrapperCmd(ctx, s, "--log", logFile, "--log-format", "json", "run", "--bundle", b, "r4")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd.Run()); code != 126 {
			t.Fatalf("exit %d, want 126: %s", code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "capability CAP_SYS_ADMIN is not allowed") {
			t.Errorf("stderr %q", stderr.String())
		}
		data, err := os.ReadFile(logFile)
		if err != nil || !strings.Contains(string(data), `"level":"error"`) || !strings.Contains(string(data), "CAP_SYS_ADMIN") {
			t.Errorf("runc log %s: %v", data, err)
		}
		if out, err := wrapperCmd(ctx, s, "state", "r4").CombinedOutput(); err == nil {
			t.Errorf("a denied container exists:\n%s", out)
		}
	})

	t.Run("a bundle with a hook is refused and the hook never runs", func(t *testing.T) {
		dir := shortTempDir(t, "srrp-")
		s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
		marker := filepath.Join(dir, "hook-ran")
		b := bundle(t, dir, []string{"true"}, func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + marker}}}}
		})
		cmd := wrapperCmd(ctx, s, "run", "--bundle", b, "r5")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if code := exitCode(t, cmd.Run()); code != 126 {
			t.Fatalf("exit %d, want 126: %s", code, stderr.String())
		}
		want := "secrun: denied by policy baseline: hooks: OCI createRuntime hook 0 runs /bin/sh sh -c touch " + marker + " on the host"
		if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "(spec.hooks.createRuntime[0].path=/bin/sh)") {
			t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
		}
		if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused hook ran: %v", err)
		}
		if got := find(s.records(t), audit.KindContainerDenied, audit.OutcomeDenied, "hooks: OCI createRuntime hook 0"); len(got) != 1 {
			t.Errorf("%d container.denied records naming the hook, want 1", len(got))
		}
	})
}

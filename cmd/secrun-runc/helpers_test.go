package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/internal/testenv"
)

var (
	buildOnce             sync.Once
	wrapperBin, verifyBin string
	buildErr              error
	buildDir              string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binaries builds secrun-runc and its signature helper once per test binary.
func binaries(t testing.TB) (string, string) {
	t.Helper()
	root := testenv.ModuleRoot(t)
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "secrun-runc-bin-"); buildErr != nil {
			return
		}
		wrapperBin = filepath.Join(buildDir, "secrun-runc")
		verifyBin = filepath.Join(buildDir, "secrun-runc-verify")
		admitBin := filepath.Join(buildDir, "secrun-runc-admit")
		for bin, pkg := range map[string]string{wrapperBin: "./cmd/secrun-runc", admitBin: "./cmd/secrun-runc/admit", verifyBin: "./cmd/secrun-runc/verify"} {
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = root
			// As make build builds them: the front links no C.
			cgo := "CGO_ENABLED=1"
			if bin == wrapperBin {
				cgo = "CGO_ENABLED=0"
			}
			cmd.Env = append(os.Environ(), cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %w\n%s", pkg, err, out)
				return
			}
		}
		// The pinned runc beside secrun-runc, as in bin/ after make deps
		// build: what secrun-runc runs when a call carries no config
		// (podman's cleanup process drops --runtime-flag).
		if buildErr = os.Symlink(testenv.Runc(t), filepath.Join(buildDir, "runc")); buildErr != nil {
			return
		}
		// Traversable by containers' mapped ids, like a real install.
		buildErr = os.Chmod(buildDir, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return wrapperBin, verifyBin
}

// site is one secrun-runc configuration: runtime.yaml, audit trail, state.
type site struct {
	dir, config, audit string
	// socket is the resident admission server's: none listens there
	// unless the test starts one (startResident).
	socket string
}

// newSite writes a config using the pinned runc. extra is appended YAML.
func newSite(t testing.TB, dir, extra string) *site {
	t.Helper()
	s := &site{dir: dir, config: filepath.Join(dir, "runtime.yaml"), audit: filepath.Join(dir, "audit", "audit.log"), socket: filepath.Join(dir, "no-resident.sock")}
	text := fmt.Sprintf("runtime: %s\nauditLog: %s\nstateDir: %s\n%s", testenv.Runc(t), s.audit, filepath.Join(dir, "state"), extra)
	if err := os.WriteFile(s.config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// records reads the audit trail after checking its hash chain.
func (s *site) records(t testing.TB) []audit.Record {
	t.Helper()
	files, err := audit.Files(s.audit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(files, nil); err != nil {
		t.Fatalf("audit trail does not verify: %v", err)
	}
	var out []audit.Record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, audit.MaxRecordSize)
		for sc.Scan() {
			r, err := audit.ParseRecord(sc.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// find returns the records of kind with outcome whose fields or reason
// mention text.
func find(rs []audit.Record, kind, outcome, text string) []audit.Record {
	var out []audit.Record
	for _, r := range rs {
		if r.Kind != kind || (outcome != "" && r.Outcome != outcome) {
			continue
		}
		if text == "" || strings.Contains(r.Reason, text) || strings.Contains(fmt.Sprint(r.Fields), text) || strings.Contains(fmt.Sprint(r.Policy), text) {
			out = append(out, r)
		}
	}
	return out
}

// requireTool finds an engine binary. CI installs the engines (make deps),
// so a missing one fails the test instead of skipping it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install docker.io, podman and containerd (make deps does)", name)
	}
	return p
}

// command runs name with args and env (added to a minimal environment) and
// returns combined output.
func command(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// daemon is an engine started by a test, stopped by its pid.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// startDaemon starts an engine daemon in its own session, logging to a file,
// and stops it when the test ends: SIGTERM, then SIGKILL after 30 s.
func startDaemon(t testing.TB, logFile string, env []string, name string, args ...string) *daemon {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logFile}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Logf("stopping %s: %v", name, err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Logf("%s did not stop in 30s: killing it", name)
			if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Logf("killing %s: %v", name, err)
			}
			<-done
		}
	})
	return d
}

// waitFor polls ready until it succeeds or the daemon has exited.
func (d *daemon) waitFor(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = ready(); err == nil {
			return
		}
		if d.cmd.ProcessState != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	logText, _ := os.ReadFile(d.log)
	t.Fatalf("%s not ready: %v\n--- log ---\n%s", d.name, err, tail(string(logText), 40))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unmountUnder lazily unmounts every mount below dir (deepest first), so
// that the test's temp dir can be removed after an engine left mounts.
func unmountUnder(t testing.TB, dir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Logf("reading mountinfo: %v", err)
		return
	}
	var targets []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			targets = append(targets, f[4])
		}
	}
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	for _, m := range targets {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			t.Logf("unmounting %s: %v", m, err)
		}
	}
}

// fakeSocket creates a listening unix socket named docker.sock under dir:
// the source of a "-v .../docker.sock:/var/run/docker.sock" test.
func fakeSocket(t testing.TB, dir string) string {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		return "/var/run/docker.sock"
	}
	if err := os.MkdirAll(filepath.Join(dir, "host"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "host", "docker.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return p
}

// shortTempDir is a temp dir with a short path: unix socket paths are
// limited to 108 bytes and engines put sockets deep below their roots.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(t, d)
		if err := os.RemoveAll(d); err != nil {
			t.Logf("removing %s: %v", d, err)
		}
	})
	return d
}

// startResident starts `secrun-runc-admit serve` from beside front on a
// socket under dir, waits until it answers and stops it when the test ends.
func startResident(t testing.TB, front, dir string) (sock string, d *daemon) {
	t.Helper()
	sock = filepath.Join(dir, "run", "admit.sock")
	d = startDaemon(t, filepath.Join(dir, "resident.log"), nil, filepath.Join(filepath.Dir(front), "secrun-runc-admit"), "serve", "--socket", sock)
	d.waitFor(t, 30*time.Second, func() error {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	return sock, d
}

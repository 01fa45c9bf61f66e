package runner_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner"
)

const allowAll = "package secrun\n\nallow := true\n"

type env struct {
	r     *runner.Runner
	root  string
	ref   string
	trail string
}

var (
	imageOnce sync.Once
	imageVal  v1.Image
)

// probeImage is busybox plus /bin/probe, built once per test binary.
func probeImage(t *testing.T) v1.Image {
	imageOnce.Do(func() { imageVal = testenv.ProbeImage(t) })
	if imageVal == nil {
		t.Fatal("building the probe image failed earlier")
	}
	return imageVal
}

// newEnv sets up a runner with a private root, the probe image in an OCI
// layout, and the given policy source (a Rego text, or a built-in name).
func newEnv(t *testing.T, pol string) *env {
	t.Helper()
	testenv.RequireRoot(t)
	root := testenv.StateDir(t)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	imagetest.WriteOCILayout(t, layoutDir, probeImage(t), "probe")
	st, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(pol, "package ") {
		f := filepath.Join(t.TempDir(), "policy.rego")
		if err := os.WriteFile(f, []byte(pol), 0o600); err != nil {
			t.Fatal(err)
		}
		pol = f
	}
	eng, err := policy.Load(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	trailPath := filepath.Join(root, "audit", "audit.log")
	trail, err := audit.Open(trailPath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	r := &runner.Runner{
		Root: root, Store: st, Policy: eng, Trail: trail,
		Runtime: &runner.Runtime{Path: testenv.Runc(t), Root: filepath.Join(root, "runc")},
		Seccomp: runner.DefaultSeccompSource,
		Warn:    testWriter{t},
	}
	return &env{r: r, root: root, ref: "oci:" + layoutDir + ":probe", trail: trailPath}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimSpace(p))
	return len(p), nil
}

func (e *env) run(t *testing.T, o runner.RunOptions) (int, string, error) {
	t.Helper()
	if o.Image == "" {
		o.Image = e.ref
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, err := e.r.Run(ctx, o, runner.RunIO{Stdout: &out, Stderr: &out})
	return code, out.String(), err
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// A probe inside a container under the defaults sees every control enforced
// by the kernel itself.
func TestHardenedContainerProbes(t *testing.T) {
	e := newEnv(t, allowAll)
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: sh(testenv.ProbeCommands)})
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, err %v\n%s", code, err, out)
	}
	t.Logf("probe output:\n%s", out)
	want := testenv.HardenedProbes("65534", true)
	for name, re := range want {
		if !re.MatchString(out) {
			t.Errorf("%s: not seen", name)
		}
	}
	m := regexp.MustCompile(`uid_map=\s*0\s+(\d+)\s+(\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("uid_map is the identity or missing: %q", m)
	}
}

// The container's root is an overlay the kernel mounted "volatile": its
// upper layer, which lives only as long as the container, is never synced.
func TestRootfsOverlayIsVolatile(t *testing.T) {
	e := newEnv(t, allowAll)
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: sh(`grep " / / " /proc/self/mountinfo`)})
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, err %v\n%s", code, err, out)
	}
	_, super, ok := strings.Cut(out, " - overlay overlay ")
	if !ok {
		t.Fatalf("the container's root is not an overlay:\n%s", out)
	}
	// Linux 6.4 and later show it as fsync=volatile.
	opts := strings.Split(strings.TrimSpace(super), ",")
	if !slices.Contains(opts, "volatile") && !slices.Contains(opts, "fsync=volatile") {
		t.Errorf("the root overlay is not volatile: %s", super)
	}
}

func TestExitStatusIsTheContainers(t *testing.T) {
	e := newEnv(t, allowAll)
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: sh("exit 42")})
	if err != nil || code != 42 {
		t.Fatalf("code %d err %v: %s", code, err, out)
	}
}

func TestPidsLimitStopsForkLoop(t *testing.T) {
	e := newEnv(t, allowAll)
	code, out, _ := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, PidsLimit: 16, Args: sh(
		`n=0; i=0; while [ $i -lt 64 ]; do if sleep 2 & then n=$((n+1)); fi; i=$((i+1)); done; echo started=$n; wait`)})
	t.Logf("code %d\n%s", code, out)
	if !strings.Contains(out, "can't fork") && !strings.Contains(out, "Resource temporarily unavailable") {
		t.Fatalf("a fork loop of 64 ran under --pids-limit 16 without a failed fork")
	}
}

// leftovers lists what a container could leave behind in root.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	for _, d := range []string{"containers", "runc", "names"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, en := range entries {
			left = append(left, filepath.Join(d, en.Name()))
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, root) {
			left = append(left, "mount: "+line)
		}
	}
	uns, _ := os.ReadDir(filepath.Join(root, "userns"))
	for _, en := range uns {
		left = append(left, "userns/"+en.Name())
	}
	return left
}

// cgroupLeftovers lists the cgroup directories, in any hierarchy, of the
// containers in the env's audit trail.
func cgroupLeftovers(t *testing.T, trail string) []string {
	t.Helper()
	data, err := os.ReadFile(trail)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`"container":\{"id":"([0-9a-f]{64})"`).FindAllStringSubmatch(string(data), -1) {
		ids[m[1]] = true
	}
	if len(ids) == 0 {
		t.Fatal("no container in the audit trail")
	}
	var left []string
	for id := range ids {
		found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "secrun", id))
		v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "secrun", id))
		left = append(left, append(found, v2...)...)
	}
	return left
}

func TestNothingLeftBehind(t *testing.T) {
	e := newEnv(t, allowAll)
	t.Cleanup(func() {
		if l := cgroupLeftovers(t, e.trail); len(l) > 0 {
			t.Errorf("cgroups left behind: %v", l)
		}
	})
	t.Run("--rm", func(t *testing.T) {
		if code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Name: "gone", Args: sh("echo hi")}); err != nil || code != 0 {
			t.Fatalf("code %d err %v %s", code, err, out)
		}
		if l := leftovers(t, e.root); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
	})
	t.Run("command not found", func(t *testing.T) {
		code, _, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: []string{"no-such-command"}})
		if code != runner.ExitNotFound || err == nil || !strings.Contains(err.Error(), "no-such-command") {
			t.Fatalf("code %d err %v", code, err)
		}
		if l := leftovers(t, e.root); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
	})
	t.Run("runtime failure", func(t *testing.T) {
		// A working directory that cannot be entered fails inside runc.
		code, _, err := e.run(t, runner.RunOptions{ReadOnly: true, Workdir: "/etc/passwd", Args: sh("true")})
		if code != runner.ExitSecrun || err == nil {
			t.Fatalf("code %d err %v", code, err)
		}
		if l := leftovers(t, e.root); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
	})
}

func TestDeniedByPolicyStartsNothing(t *testing.T) {
	e := newEnv(t, "package secrun\n\nallow := true\n\ndeny contains {\"id\": \"no-caps\", \"msg\": \"no capabilities\", \"field\": \"request.cap_add\", \"fix\": \"drop --cap-add\"} if count(input.request.cap_add) > 0\n")
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, CapAdd: []string{"NET_ADMIN"}, Args: sh("echo should-not-run")})
	if code != runner.ExitDenied || err == nil {
		t.Fatalf("code %d err %v", code, err)
	}
	if strings.Contains(out, "should-not-run") {
		t.Fatal("denied container ran")
	}
	if !strings.Contains(err.Error(), "no-caps") || !strings.Contains(err.Error(), "drop --cap-add") {
		t.Errorf("denial does not name the violation: %v", err)
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	e := newEnv(t, allowAll)
	ctx := context.Background()
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Detach: true, Name: "sleeper", Args: []string{"sleep", "300"}})
	if err != nil || code != 0 {
		t.Fatalf("detached run: %d %v %s", code, err, out)
	}
	id := strings.TrimSpace(out)
	list, err := e.r.List(ctx)
	if err != nil || len(list) != 1 || list[0].Live != "running" || list[0].ID != id {
		t.Fatalf("ps = %+v, %v", list, err)
	}
	var execOut bytes.Buffer
	code, err = e.r.Exec(ctx, runner.ExecOptions{Container: "sleeper", Args: sh("echo exec-ok; exit 3")}, runner.RunIO{Stdout: &execOut, Stderr: &execOut})
	if err != nil || code != 3 || !strings.Contains(execOut.String(), "exec-ok") {
		t.Fatalf("exec: %d %v %q", code, err, execOut.String())
	}
	if err := e.r.Remove(ctx, "sleeper", false); err == nil {
		t.Fatal("rm of a running container without -f succeeded")
	}
	if err := e.r.Stop(ctx, "sleeper", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	list, _ = e.r.List(ctx)
	if len(list) != 1 || list[0].Live != "exited" {
		t.Fatalf("after stop: %+v", list)
	}
	// An exited container keeps its record, not its mounts.
	for _, l := range leftovers(t, e.root) {
		if strings.HasPrefix(l, "mount: ") {
			t.Errorf("still mounted after stop: %s", l)
		}
	}
	if err := e.r.Remove(ctx, id[:12], false); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

// Every step lands in the audit trail, and the trail verifies.
func TestRunIsAudited(t *testing.T) {
	e := newEnv(t, allowAll)
	if code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: sh("exit 7")}); code != 7 {
		t.Fatalf("code %d err %v %s", code, err, out)
	}
	rep, err := audit.Verify([]string{e.trail}, nil)
	if err != nil {
		t.Fatalf("trail does not verify: %v", err)
	}
	var buf bytes.Buffer
	if err := audit.Show(&buf, []string{e.trail}, audit.Filter{}, true); err != nil {
		t.Fatal(err)
	}
	// Every step, in the order it happened.
	at := -1
	for _, kind := range []string{"image.resolved", "signature.verdict", "policy.decision", "spec.created", "runtime.invoked", "container.started", "container.exited", "container.removed"} {
		i := strings.Index(buf.String(), `"`+kind+`"`)
		switch {
		case i < 0:
			t.Errorf("no %s record in %d records", kind, rep.Records)
		case i < at:
			t.Errorf("%s is recorded out of order:\n%s", kind, buf.String())
		default:
			at = i
		}
	}
	if !strings.Contains(buf.String(), `"exit.code":7`) && !strings.Contains(buf.String(), `"code":7`) {
		t.Errorf("exit code 7 not recorded:\n%s", buf.String())
	}
}

// The trail is written before the container starts: an unwritable trail
// means no container.
func TestUnwritableTrailRefusesRun(t *testing.T) {
	e := newEnv(t, allowAll)
	e.r.Trail.Close()
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Args: sh("echo should-not-run")})
	if err == nil || code != runner.ExitSecrun || strings.Contains(out, "should-not-run") {
		t.Fatalf("run with a closed trail: code %d err %v out %q", code, err, out)
	}
}

func TestUnknownImage(t *testing.T) {
	e := newEnv(t, allowAll)
	code, _, err := e.run(t, runner.RunOptions{Image: "oci:/nonexistent/layout:x", ReadOnly: true, Args: sh("true")})
	if err == nil || code == 0 {
		t.Fatalf("unknown image ran: %d", code)
	}
	if strings.Count(strings.TrimSpace(err.Error()), "\n") != 0 {
		t.Errorf("error is not one line: %q", err)
	}
}

// A container killed by the OOM killer exits 137, and its exit record says
// it was an OOM kill (read from the memory cgroup before the runtime removes
// it).
func TestOOMKillIsRecorded(t *testing.T) {
	e := newEnv(t, allowAll)
	code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Memory: "16m",
		Args: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}})
	if err != nil || code != 137 {
		t.Fatalf("code %d err %v: %s", code, err, out)
	}
	var buf bytes.Buffer
	if err := audit.Show(&buf, []string{e.trail}, audit.Filter{Kind: "container.exited"}, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"oom_killed":true`) {
		t.Fatalf("exit record does not mark the OOM kill:\n%s", buf.String())
	}
	// Under the same limit, a container that stays within it is not
	// marked, whether it exits 0 or is killed by another SIGKILL.
	for _, args := range [][]string{{"true"}, sh("kill -9 $$")} {
		code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Memory: "16m", Args: args})
		if err != nil || (code != 0 && code != 137) {
			t.Fatalf("%v: code %d err %v: %s", args, code, err, out)
		}
	}
	buf.Reset()
	if err := audit.Show(&buf, []string{e.trail}, audit.Filter{Kind: "container.exited"}, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `"oom_killed":true`); n != 1 {
		t.Fatalf("%d exit records marked as OOM kills, want only the first:\n%s", n, buf.String())
	}
	if l := cgroupLeftovers(t, e.trail); len(l) > 0 {
		t.Errorf("cgroups left behind: %v", l)
	}
}

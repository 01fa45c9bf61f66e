package profiles_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/profiles"
)

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// llBundle is a runc bundle whose rootfs holds only the probe and a few
// files: /bin/llprobe, /tmp, /data (writable by the container's root as far
// as file permissions go) and /etc/secret (readable).
type llBundle struct {
	dir, rootfs, init string
}

func newLLBundle(t *testing.T, bins string) llBundle {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "data", "etc", "proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe, err := os.ReadFile(filepath.Join(bins, "llprobe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "llprobe"), probe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "secret"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return llBundle{dir: dir, rootfs: rootfs, init: filepath.Join(bins, "secrun-init")}
}

// spec is a minimal hardened container: no capabilities, no new
// privileges, private namespaces.
func (b llBundle) spec(args ...string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args:            args,
			Env:             []string{"PATH=/bin"},
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: b.rootfs},
		Hostname: "llprobe",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

// run runs spec in a container and returns its exit status, stdout and
// stderr. A watchdog kills runc if the container hangs.
func (b llBundle) run(t *testing.T, runc string, spec *specs.Spec) (int, string, string) {
	t.Helper()
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(b.dir, "state")
	id := fmt.Sprintf("secrun-ll-%d-%d", os.Getpid(), time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runc, "--root", state, "run", "--bundle", b.dir, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if out, err := exec.Command(runc, "--root", state, "delete", "--force", id).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "does not exist") {
		t.Logf("runc delete %s: %v: %s", id, err, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("container did not finish; killed by the watchdog. stderr: %s", stderr.String())
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		code = exitErr.ExitCode()
	} else if runErr != nil {
		t.Fatalf("runc run: %v\n%s", runErr, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

// llWant maps each probe line's "OP PATH" to the expected result.
func llCheck(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q (probe output:\n%s)", k, got[k], v, out)
		}
	}
}

// TestLandlockInContainer runs real containers with runc: secrun-init
// applies the ruleset the runner would configure through ApplyLSM, and the
// kernel denies what the ruleset does not grant.
func TestLandlockInContainer(t *testing.T) {
	testenv.RequireRoot(t)
	host := profiles.DetectLSM()
	if !host.Landlock {
		t.Fatalf("this kernel has no Landlock (%q); the kernel test needs it", host.Notes)
	}
	runc := testenv.Runc(t)
	bins := t.TempDir()
	lsmGoBuild(t, "./cmd/secrun-init", bins)
	lsmGoBuild(t, "./profiles/testdata/llprobe", bins)

	probeOps := []string{
		"write:/tmp/ok", "read:/tmp/ok", "write:/data/x", "read:/etc/secret",
		"list:/etc", "read:/bin/llprobe", "exec:/bin/llprobe", "write:/dev/null",
	}
	landlocked := func(t *testing.T, b llBundle, opts ...string) *specs.Spec {
		t.Helper()
		rules, err := profiles.ParseLandlock(opts)
		if err != nil {
			t.Fatal(err)
		}
		s := b.spec(append([]string{"/bin/llprobe"}, probeOps...)...)
		// apparmor=unconfined keeps this test about Landlock on hosts that
		// also run AppArmor.
		if _, err := profiles.ApplyLSM(s, host, profiles.LSMRequest{
			ContainerID: "lltest", AppArmor: "unconfined", Landlock: rules, InitBinary: b.init,
		}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("control without landlock", func(t *testing.T) {
		b := newLLBundle(t, bins)
		code, out, stderr := b.run(t, runc, b.spec(append([]string{"/bin/llprobe"}, probeOps...)...))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		// File permissions alone allow everything the Landlock cases deny.
		llCheck(t, out, map[string]string{
			"write /tmp/ok": "OK", "write /data/x": "OK", "read /etc/secret": "OK", "list /etc": "OK",
		})
	})

	t.Run("ro=/bin rw=/tmp", func(t *testing.T) {
		b := newLLBundle(t, bins)
		code, out, stderr := b.run(t, runc, landlocked(t, b, "ro=/bin", "rw=/tmp"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		llCheck(t, out, map[string]string{
			"write /tmp/ok":     "OK",
			"read /tmp/ok":      "OK",
			"write /data/x":     "EACCES",
			"read /etc/secret":  "EACCES",
			"list /etc":         "EACCES",
			"read /bin/llprobe": "OK",
			"exec /bin/llprobe": "OK",
			"write /dev/null":   "EACCES",
		})
		if fileExists(filepath.Join(b.rootfs, "data", "x")) {
			t.Error("/data/x was created despite EACCES")
		}
	})

	t.Run("default", func(t *testing.T) {
		b := newLLBundle(t, bins)
		code, out, stderr := b.run(t, runc, landlocked(t, b, "default"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		llCheck(t, out, map[string]string{
			"write /tmp/ok":    "OK",
			"write /data/x":    "EACCES",
			"read /etc/secret": "OK",
			"list /etc":        "OK",
			"write /dev/null":  "OK",
		})
	})

	t.Run("missing required path fails closed", func(t *testing.T) {
		b := newLLBundle(t, bins)
		code, out, stderr := b.run(t, runc, landlocked(t, b, "ro=/bin", "rw=/nonexistent"))
		if code != 125 || !strings.Contains(stderr+out, "/nonexistent") || strings.Contains(out, "write /tmp/ok") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 125 naming /nonexistent and the probe never run", code, out, stderr)
		}
	})

	t.Run("kernel without landlock fails closed", func(t *testing.T) {
		// A seccomp filter makes landlock_create_ruleset fail with ENOSYS,
		// as on a kernel built without Landlock.
		b := newLLBundle(t, bins)
		s := landlocked(t, b, "ro=/bin", "rw=/tmp")
		enosys := uint(38)
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"landlock_create_ruleset"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			},
		}
		code, out, stderr := b.run(t, runc, s)
		if code != 125 {
			t.Fatalf("exit %d, want 125 (stdout %q, stderr %q)", code, out, stderr)
		}
		if strings.Contains(out, "write /tmp/ok") {
			t.Fatalf("the command ran without Landlock: %q", out)
		}
		if !strings.Contains(stderr+out, "landlock is not available") || !strings.Contains(stderr+out, "refusing to run /bin/llprobe") {
			t.Errorf("error does not explain the refusal: %q", stderr+out)
		}
	})
}

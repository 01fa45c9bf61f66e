package main_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
)

type cli struct {
	t      *testing.T
	bin    string
	root   string
	runc   string
	layout string // oci: reference of the probe image
}

func newCLI(t *testing.T) *cli {
	testenv.RequireRoot(t)
	c := &cli{t: t, bin: testenv.SecrunBinary(t), root: testenv.StateDir(t), runc: testenv.Runc(t)}
	dir := filepath.Join(t.TempDir(), "layout")
	imagetest.WriteOCILayout(t, dir, testenv.ProbeImage(t), "probe")
	c.layout = "oci:" + dir + ":probe"
	return c
}

func (c *cli) policyFile(text string) string {
	f := filepath.Join(c.t.TempDir(), "policy.rego")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// run runs secrun with the test's root and runc; it returns the exit
// status, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	full := append([]string{"--root", c.root, "--runtime", c.runc}, args...)
	cmd := exec.Command(c.bin, full...)
	cmd.Env = append(os.Environ(), "SECRUN_POLICY=", "SECRUN_TRUST=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

const allowAll = "package secrun\n\nallow := true\n"

func TestExitCodes(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	t.Run("container status", func(t *testing.T) {
		code, _, stderr := c.run("--policy", allow, "run", "--rm", c.layout, "sh", "-c", "exit 42")
		if code != 42 {
			t.Fatalf("exit %d, want 42; stderr %s", code, stderr)
		}
	})
	t.Run("stdout passes through", func(t *testing.T) {
		code, stdout, stderr := c.run("--policy", allow, "run", "--rm", c.layout, "echo", "hello from the container")
		if code != 0 || stdout != "hello from the container\n" {
			t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
		}
	})
	t.Run("127 command not found", func(t *testing.T) {
		code, _, stderr := c.run("--policy", allow, "run", "--rm", c.layout, "no-such-cmd")
		if code != 127 || !strings.Contains(stderr, `"no-such-cmd" not found`) {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
	})
	t.Run("126 unsigned under the default policy", func(t *testing.T) {
		code, stdout, stderr := c.run("run", "--rm", c.layout, "echo", "ran")
		if code != 126 || strings.Contains(stdout, "ran") {
			t.Fatalf("exit %d stdout %q stderr %q", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "secrun: denied by policy: ") || !strings.Contains(strings.ToLower(stderr), "sign") {
			t.Fatalf("denial does not say why: %q", stderr)
		}
	})
	t.Run("126 privileged under baseline", func(t *testing.T) {
		code, _, stderr := c.run("--policy", "baseline", "run", "--rm", "--privileged", c.layout, "true")
		if code != 126 {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
		for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if !strings.HasPrefix(line, "secrun: denied by policy: ") {
				t.Errorf("violation line not in the documented form: %q", line)
			}
		}
		if !strings.Contains(stderr, "privileged") || !strings.Contains(stderr, "request.privileged=true") {
			t.Errorf("no privileged violation naming the field: %q", stderr)
		}
	})
	t.Run("126 policy with a syntax error", func(t *testing.T) {
		bad := c.policyFile("package secrun\n\nallow := \n")
		code, _, stderr := c.run("--policy", bad, "run", "--rm", c.layout, "true")
		if code != 126 || !strings.Contains(stderr, "policy.rego") {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
	})
}

// Bad input: one line naming the thing, a non-zero exit, nothing left behind.
func TestBadInputOneLine(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown image", []string{"run", "oci:/no/such/layout:x", "true"}, "/no/such/layout"},
		{"bad reference", []string{"run", "Bad Ref!!", "true"}, "Bad Ref!!"},
		{"unknown flag value", []string{"run", "--network", "bridge", c.layout, "true"}, "--network"},
		{"bad memory", []string{"run", "--memory", "lots", c.layout, "true"}, "--memory"},
		{"missing volume", []string{"run", "-v", "/no/such/dir:/data", c.layout, "true"}, "/no/such/dir"},
		{"symlink volume", []string{"run", "-v", link + ":/data", c.layout, "true"}, "symlink"},
		{"unknown capability", []string{"run", "--cap-add", "TELEPORT", c.layout, "true"}, "TELEPORT"},
		{"unknown security-opt", []string{"run", "--security-opt", "bogus=1", c.layout, "true"}, "bogus"},
		{"missing seccomp file", []string{"run", "--security-opt", "seccomp=/no/such.json", c.layout, "true"}, "/no/such.json"},
		{"missing runtime", []string{"--runtime", "/no/such/runc", "run", c.layout, "true"}, "/no/such/runc"},
		{"unknown flag", []string{"run", "--frobnicate", c.layout}, "frobnicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--policy", allow}, tc.args...)
			if tc.name == "missing runtime" {
				// --runtime must win over the test's own.
				args = append([]string{"--policy", allow}, tc.args...)
			}
			code, _, stderr := c.run(args...)
			if code == 0 {
				t.Fatal("succeeded")
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "secrun: ") || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("want one 'secrun: ...' line naming %q, got %q", tc.want, stderr)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(c.root, "containers"))
	if len(entries) != 0 {
		t.Fatalf("bad input left %d containers behind", len(entries))
	}
}

// A custom policy that allows one extra capability makes exactly that
// capability appear in the container's CapEff; any other is denied.
func TestCustomPolicyCapability(t *testing.T) {
	c := newCLI(t)
	pol := c.policyFile(`package secrun

allow := true

deny contains v if {
	some cap in input.spec.process.capabilities.bounding
	cap != "CAP_CHOWN"
	v := {"id": "caps", "msg": sprintf("capability %s is not allowed", [cap]), "field": "spec.process.capabilities.bounding", "fix": "only CAP_CHOWN may be added"}
}
`)
	code, stdout, stderr := c.run("--policy", pol, "run", "--rm", "-u", "0", "--cap-add", "CHOWN", c.layout, "grep", "CapEff", "/proc/self/status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`CapEff:\s+0000000000000001\n`).MatchString(stdout) {
		t.Fatalf("CAP_CHOWN (bit 0) is not the only effective capability: %q", stdout)
	}
	code, _, stderr = c.run("--policy", pol, "run", "--rm", "-u", "0", "--cap-add", "NET_ADMIN", c.layout, "true")
	if code != 126 || !strings.Contains(stderr, "CAP_NET_ADMIN") {
		t.Fatalf("NET_ADMIN: exit %d stderr %q", code, stderr)
	}
}

func TestImageCommands(t *testing.T) {
	c := newCLI(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	imagetest.WriteDockerArchive(t, archive, imagetest.BusyboxImage(t), "busybox:latest")
	code, stdout, stderr := c.run("image", "import", "docker-archive:"+archive)
	if code != 0 || !strings.HasPrefix(stdout, "sha256:") {
		t.Fatalf("import: %d %q %q", code, stdout, stderr)
	}
	digest := strings.Fields(stdout)[0]
	code, stdout, _ = c.run("image", "ls")
	if code != 0 || !strings.Contains(stdout, "docker-archive:"+archive) {
		t.Fatalf("ls: %d %q", code, stdout)
	}
	code, stdout, stderr = c.run("--policy", c.policyFile(allowAll), "run", "--rm", digest[:19], "echo", "by-digest")
	if code != 0 || stdout != "by-digest\n" {
		t.Fatalf("run by digest: %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr = c.run("image", "rm", digest); code != 0 {
		t.Fatalf("rm: %d %q", code, stderr)
	}
	code, stdout, _ = c.run("image", "ls")
	if code != 0 || strings.Contains(stdout, archive) {
		t.Fatalf("image still listed after rm: %q", stdout)
	}
}

// A profile recorded from a workload lets the same workload run, and makes a
// syscall it never used fail with EPERM.
func TestProfileRecordReplay(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	prof := filepath.Join(t.TempDir(), "recorded.json")
	workload := "echo recorded; cat /etc/passwd >/dev/null; ls / >/dev/null"
	code, stdout, stderr := c.run("--policy", allow, "profile", "record", "-o", prof, c.layout, "sh", "-c", workload)
	if code != 0 || !strings.Contains(stdout, "recorded") {
		t.Fatalf("record: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = c.run("--policy", allow, "run", "--rm", "--security-opt", "seccomp="+prof, c.layout, "sh", "-c", workload)
	if code != 0 || !strings.Contains(stdout, "recorded") {
		t.Fatalf("replay under the recorded profile: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = c.run("--policy", allow, "run", "--rm", "--security-opt", "seccomp="+prof, c.layout, "sh", "-c", workload+"; grep Seccomp: /proc/self/status; mkdir /tmp/new")
	if code == 0 || !strings.Contains(stderr, "Operation not permitted") || !regexp.MustCompile(`Seccomp:\s+2`).MatchString(stdout) {
		t.Fatalf("mkdir under a profile that never saw it: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = c.run("profile", "show", prof)
	if code != 0 || !strings.Contains(stdout, "BPF instructions") {
		t.Fatalf("profile show: %d %q", code, stdout)
	}
}

// -t gives the container a terminal: runc allocates a pty and hands it over
// a console socket. The test runs secrun under script(1) so that secrun's own
// stdin is a terminal too.
func TestTTY(t *testing.T) {
	c := newCLI(t)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) from util-linux is needed to give secrun a terminal")
	}
	allow := c.policyFile(allowAll)
	inner := strings.Join([]string{c.bin, "--root", c.root, "--runtime", c.runc, "--policy", allow, "run", "--rm", "-t", c.layout, "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty"}, " ")
	out, err := exec.Command(script, "-qec", inner, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("secrun run -t: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`/dev/pts/\d+`).Match(out) || !strings.Contains(string(out), "stdin-is-a-tty") {
		t.Fatalf("no terminal in the container: %q", out)
	}
}

// A signal sent to secrun reaches the container's process, and the exit
// status that comes back is the container's.
func TestSignalForwarding(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	cmd := exec.Command(c.bin, "--root", c.root, "--runtime", c.runc, "--policy", allow, "run", "--rm", c.layout,
		"sh", "-c", `trap "echo got-term; exit 3" TERM; echo ready; while true; do sleep 0.1; done`)
	var stdout bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	buf := make([]byte, 6)
	if _, err := pr.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("container did not start: %q %v", buf, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(pr)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(rest), "got-term") {
		t.Fatalf("exit %v, output %q, stderr %q", err, rest, stdout.String())
	}
}

// --security-opt landlock= confines the container's process with Landlock
// (applied by secrun-init before the command starts), and exec'd processes
// too: writes outside the rw paths and reads outside the ruleset fail.
func TestLandlockThroughRun(t *testing.T) {
	c := newCLI(t)
	t.Setenv("SECRUN_INIT", testenv.InitBinary(t))
	allow := c.policyFile(allowAll)
	code, stdout, stderr := c.run("--policy", allow, "run", "--rm", "--read-only=false",
		"--security-opt", "landlock=ro=/bin:/etc", "--security-opt", "landlock=rw=/tmp", c.layout,
		"sh", "-c", "echo x > /tmp/ok && echo wrote-tmp; grep -q root /etc/passwd && echo read-etc; echo x > /home/x || echo write-home-denied; ls /root || echo read-root-denied")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	for _, want := range []string{"wrote-tmp", "read-etc", "write-home-denied", "read-root-denied"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("%s not seen:\n%s\n%s", want, stdout, stderr)
		}
	}
	if !strings.Contains(stderr, "Permission denied") {
		t.Errorf("no EACCES from Landlock: %s", stderr)
	}
}

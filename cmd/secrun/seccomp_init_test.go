package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/profiles"
)

// TestSeccompLoadedBySecrunInit: under the defaults, secrun compiles the
// container's seccomp profile once and secrun-init loads it right before
// the container's command, instead of runc compiling it on every start.
// The kernel must show the same filter: in the container's first process
// and in an exec'd one, mode 2 and EPERM from keyctl, a syscall only the
// seccomp profile denies. The declared profile stays readable (policy
// input of exec, secrun audit) and the trail says who loaded it.
func TestSeccompLoadedBySecrunInit(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	code, out, stderr := c.run("--policy", allow, "run", "-d", c.layout, "sleep", "600")
	if code != 0 {
		t.Fatalf("run -d: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() { c.run("rm", "-f", id) })

	data, err := os.ReadFile(filepath.Join(c.root, "containers", id, "bundle", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Linux.Seccomp != nil || !profiles.InitLoadsSeccomp(&spec) || !slices.Contains(spec.Process.Args, "sleep") {
		t.Fatalf("runc's spec: seccomp %v, args %q; want the filter loaded by secrun-init", spec.Linux.Seccomp != nil, spec.Process.Args)
	}
	if err := profiles.DeclaredSeccomp(&spec); err != nil || spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("declared profile: %v", err)
	}
	// secrun-init and the program come in a layer of the rootfs overlay:
	// runc mounts nothing for them, and the container cannot change them.
	if i := slices.IndexFunc(spec.Mounts, func(m specs.Mount) bool { return strings.HasPrefix(m.Destination, "/.secrun") }); i >= 0 {
		t.Errorf("runc's spec mounts %s", spec.Mounts[i].Destination)
	}
	code, out, stderr = c.run("--policy", allow, "exec", id, "sh", "-c", "echo x >> /.secrun/seccomp.bpf")
	if code == 0 || !strings.Contains(stderr, "Read-only file system") && !strings.Contains(stderr, "Permission denied") {
		t.Errorf("writing the filter's program in the container: exit %d: %s%s", code, out, stderr)
	}

	mode2 := regexp.MustCompile(`(?m)^Seccomp:\s+2$`)
	for name, args := range map[string][]string{
		"the container's process": {"exec", id, "cat", "/proc/1/status"},
		"an exec'd process":       {"exec", id, "sh", "-c", "grep Seccomp: /proc/self/status; /bin/probe keyctl getpid"},
	} {
		code, out, stderr := c.run(append([]string{"--policy", allow}, args...)...)
		if code != 0 || !mode2.MatchString(out) {
			t.Errorf("%s: exit %d, no seccomp filter:\n%s%s", name, code, out, stderr)
		}
		if strings.Contains(args[3], "probe") && (!strings.Contains(out, "keyctl=EPERM") || !strings.Contains(out, "getpid=ok")) {
			t.Errorf("%s: the filter does not decide as the profile says:\n%s%s", name, out, stderr)
		}
	}

	code, out, stderr = c.run("audit", "log", "show", "--kind", "spec.created", "--json")
	if code != 0 {
		t.Fatalf("audit log show: exit %d: %s", code, stderr)
	}
	var loaded bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, id) && strings.Contains(line, `"seccomp.loader":"secrun-init"`) && strings.Contains(line, `"seccomp.bpf":"sha256:`) {
			loaded = true
		}
	}
	if !loaded {
		t.Errorf("no spec.created record says secrun-init loads the filter:\n%s", out)
	}
}

package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/testenv"
)

// Every control of the default policy, through the real `secrun run` path:
// a signed, hardened run is allowed, and each relaxation a user can ask for
// with run flags is denied by exactly the control that covers it. Controls
// that no run flag can violate (secrun never joins or shares host pid, ipc or
// uts namespaces, never sets sysctls, never runs without memory or pids
// limits... ) are listed with the reason and covered by the policy's own
// tests over bundles.
func TestRestrictedControlsThroughRun(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	env := append(os.Environ(), "COSIGN_PASSWORD=test")
	// Sign the probe image and trust the key.
	if code, _, stderr := c.runIn(dir, env, "generate-key-pair"); code != 0 {
		t.Fatalf("generate-key-pair: %s", stderr)
	}
	if code, _, stderr := c.runIn(dir, env, "sign", "--key", "cosign.key", c.layout); code != 0 {
		t.Fatalf("sign: %s", stderr)
	}
	trust := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(trust, []byte("rules:\n- images: [\"oci:**\"]\n  keys: [cosign.pub]\n  insecureIgnoreTlog: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Outside the allowed host paths (/srv, /mnt, /media, /opt, /tmp, ...).
	data, err := os.MkdirTemp("/var/cache", "secrun-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) })
	run := func(flags ...string) (int, string) {
		args := append([]string{"--trust", trust, "run", "--rm", "-u", "1000"}, flags...)
		args = append(args, c.layout, "true")
		code, _, stderr := c.runIn(dir, env, args...)
		return code, stderr
	}
	t.Run("allowed", func(t *testing.T) {
		if code, stderr := run(); code != 0 {
			t.Fatalf("hardened signed run denied: %d %s", code, stderr)
		}
		if code, stderr := run("--cap-add", "NET_BIND_SERVICE", "--memory", "64m", "--pids-limit", "32"); code != 0 {
			t.Fatalf("NET_BIND_SERVICE with limits denied: %d %s", code, stderr)
		}
	})
	denied := []struct {
		control string
		flags   []string
	}{
		{"apparmor", []string{"--security-opt", "apparmor=unconfined"}},
		{"capabilities", []string{"--cap-add", "NET_RAW"}},
		{"host-network", []string{"--network", "host"}},
		{"host-path", []string{"-v", data + ":/data"}},
		{"host-userns", []string{"--userns", "host"}},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges=false"}},
		{"pids-limit", []string{"--pids-limit", "-1"}},
		{"privileged", []string{"--privileged"}},
		{"proc-mount", []string{"--privileged"}},
		{"readonly-rootfs", []string{"--read-only=false"}},
		{"run-as-non-root", []string{"-u", "0"}},
		{"runtime-socket", []string{"-v", sock + ":/var/run/docker.sock"}},
		{"seccomp", []string{"--security-opt", "seccomp=unconfined"}},
		{"selinux", []string{"--security-opt", "label=disable"}},
		{"sensitive-host-path", []string{"-v", "/etc:/host-etc:ro"}},
	}
	for _, tc := range denied {
		t.Run(tc.control, func(t *testing.T) {
			code, stderr := run(tc.flags...)
			if code != 126 || !strings.Contains(stderr, "secrun: denied by policy: "+tc.control+": ") {
				t.Fatalf("%v: exit %d, want 126 naming %s:\n%s", tc.flags, code, tc.control, stderr)
			}
		})
	}
	t.Run("signed-image", func(t *testing.T) {
		code, _, stderr := c.runIn(dir, env, "run", "--rm", "-u", "1000", c.layout, "true")
		if code != 126 || !strings.Contains(stderr, "signed-image: ") {
			t.Fatalf("unsigned (no trust) run: exit %d %s", code, stderr)
		}
	})
	// Not expressible with run flags; covered by policy tests over bundles:
	// host-ipc, host-pid, host-uts and joined-namespace (secrun always
	// unshares them), memory-limit (always set), sysctls (never set), hooks
	// (never set: runner.WithoutHooks; TestPolicyEvalHooks below).
}

// `secrun policy eval` on a spec with OCI hooks: restricted and baseline
// deny a hook with the hooks control and admit dockerd's setkey hook; and
// `secrun policy explain` lists the control.
func TestPolicyEvalHooks(t *testing.T) {
	c := newCLI(t)
	raw, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "testdata", "policy", "hardened.json"))
	if err != nil {
		t.Fatal(err)
	}
	setkey := map[string]any{"path": "/proc/26856/exe", "args": []string{"libnetwork-setkey", "-exec-root=/var/run/docker",
		"beac18336857e6c78b3c3530248f09a18634201e1911b2ba0b1475995945ee69", "68c4717f6d82"}}
	input := func(hooks map[string]any) string {
		var in map[string]any
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		in["spec"].(map[string]any)["hooks"] = hooks
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "input.json")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		name  string
		hooks map[string]any
		field string // "" when allowed
	}{
		{"dockerd's setkey hook", map[string]any{"prestart": []any{setkey}}, ""},
		{"another command of a process's binary", map[string]any{"prestart": []any{setkey, map[string]any{"path": "/proc/1/exe", "args": []string{"something-else"}}}},
			"spec.hooks.prestart[1].path=/proc/1/exe"},
		{"a host binary", map[string]any{"createRuntime": []any{map[string]any{"path": "/usr/bin/evil", "args": []string{"evil"}}}},
			"spec.hooks.createRuntime[0].path=/usr/bin/evil"},
		{"setkey by another path", map[string]any{"prestart": []any{map[string]any{"path": "/usr/bin/dockerd", "args": setkey["args"]}}},
			"spec.hooks.prestart[0].path=/usr/bin/dockerd"},
	}
	for _, pol := range []string{"restricted", "baseline"} {
		for _, tc := range cases {
			t.Run(pol+"/"+tc.name, func(t *testing.T) {
				code, stdout, stderr := c.run("--policy", pol, "policy", "eval", "--input", input(tc.hooks))
				var d struct {
					Allowed    bool `json:"allowed"`
					Violations []struct {
						ID, Field, Severity, Fix string
					} `json:"violations"`
				}
				if err := json.Unmarshal([]byte(stdout), &d); err != nil {
					t.Fatalf("exit %d, output %q: %v\n%s", code, stdout, err, stderr)
				}
				if tc.field == "" {
					if code != 0 || !d.Allowed {
						t.Fatalf("exit %d, want 0 and allowed: %s", code, stdout)
					}
					return
				}
				if code != 126 || d.Allowed || len(d.Violations) != 1 {
					t.Fatalf("exit %d, want 126 and one violation: %s", code, stdout)
				}
				if v := d.Violations[0]; v.ID != "hooks" || v.Field != tc.field || v.Severity != "critical" || v.Fix == "" {
					t.Errorf("violation %+v, want hooks on %s, critical, with a fix", v, tc.field)
				}
			})
		}
		t.Run(pol+"/explain", func(t *testing.T) {
			code, stdout, stderr := c.run("--policy", pol, "policy", "explain")
			if code != 0 || !strings.Contains(stdout, "\nhooks ") || !strings.Contains(stdout, "critical") {
				t.Fatalf("explain: exit %d, no hooks control:\n%s%s", code, stdout, stderr)
			}
		})
	}
}

// runIn is run with a working directory and environment.
func (c *cli) runIn(dir string, env []string, args ...string) (int, string, string) {
	c.t.Helper()
	old, err := os.Getwd()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		c.t.Fatal(err)
	}
	defer os.Chdir(old)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "COSIGN_PASSWORD" {
			c.t.Setenv(k, v)
		}
	}
	return c.run(args...)
}

package wrapper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/runner/wrapper"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want wrapper.Config
		err  string
	}{
		{
			name: "defaults",
			yaml: "runtime: /usr/bin/runc\n",
			want: wrapper.Config{Runtime: "/usr/bin/runc", AuditLog: wrapper.DefaultAuditLog, StateDir: wrapper.DefaultStateDir, Mode: wrapper.ModeEnforce},
		},
		{
			name: "everything, relative paths resolved against the file",
			yaml: "runtime: bin/runc\npolicy: policies/mine.rego\nexemptions: ex.yaml\ntrust: /etc/secrun/trust.yaml\nverifier: secrun-runc-verify\n" +
				"auditLog: audit/audit.log\nauditKey: key.pem\nmode: audit-only\nstateDir: state\nhardening:\n  seccomp: default\n  noNewPrivileges: true\n",
			want: wrapper.Config{Runtime: "/etc/secrun/bin/runc", Policy: "/etc/secrun/policies/mine.rego", Exemptions: "/etc/secrun/ex.yaml",
				Trust: "/etc/secrun/trust.yaml", Verifier: "secrun-runc-verify", AuditLog: "/etc/secrun/audit/audit.log", AuditKey: "/etc/secrun/key.pem",
				Mode: wrapper.ModeAuditOnly, StateDir: "/etc/secrun/state", Hardening: wrapper.Hardening{Seccomp: "default", NoNewPrivileges: true}},
		},
		{
			name: "a built-in policy name stays a name",
			yaml: "policy: baseline\n",
			want: wrapper.Config{Policy: "baseline", AuditLog: wrapper.DefaultAuditLog, StateDir: wrapper.DefaultStateDir, Mode: wrapper.ModeEnforce},
		},
		{name: "unknown field", yaml: "runtime: x\nenforce: false\n", err: `top level: unknown field "enforce"`},
		{name: "misspelt by case", yaml: "Mode: audit-only\n", err: `unknown field "Mode"`},
		{name: "unknown hardening", yaml: "hardening:\n  apparmor: x\n", err: `hardening: unknown field "apparmor"`},
		{name: "bad mode", yaml: "mode: permissive\n", err: `mode "permissive" is not enforce or audit-only`},
		{name: "bad seccomp", yaml: "hardening:\n  seccomp: unconfined\n", err: `hardening.seccomp "unconfined"`},
		{name: "duplicate key", yaml: "mode: enforce\nmode: audit-only\n", err: "malformed"},
		{name: "not a mapping", yaml: "- a\n", err: "not a mapping"},
		{name: "wrong type", yaml: "hardening:\n  noNewPrivileges: yes please\n", err: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := wrapper.ParseConfig([]byte(tc.yaml), "/etc/secrun/runtime.yaml")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "/etc/secrun/runtime.yaml") {
					t.Fatalf("error %v, want one naming the file and %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Source() != "/etc/secrun/runtime.yaml" {
				t.Errorf("source %q", c.Source())
			}
			got := *c
			got = wrapper.Config{Runtime: got.Runtime, Policy: got.Policy, Exemptions: got.Exemptions, Trust: got.Trust, Verifier: got.Verifier,
				AuditLog: got.AuditLog, AuditKey: got.AuditKey, Mode: got.Mode, StateDir: got.StateDir, Hardening: got.Hardening}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestConfigPath(t *testing.T) {
	if p := wrapper.ConfigPath(func(string) string { return "" }); p != wrapper.DefaultConfigPath {
		t.Errorf("default %q", p)
	}
	if p := wrapper.ConfigPath(func(k string) string { return map[string]string{wrapper.ConfigEnv: "/x.yaml"}[k] }); p != "/x.yaml" {
		t.Errorf("from the environment %q", p)
	}
}

func TestFindRuntime(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "secrun-runc")
	writeFile(t, self, "#!/bin/sh\n", 0o755)
	runc := filepath.Join(dir, "runc")
	t.Run("configured", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "other"), "#!/bin/sh\n", 0o755)
		if p, err := wrapper.FindRuntime(filepath.Join(dir, "other"), self); err != nil || p != filepath.Join(dir, "other") {
			t.Fatalf("%q, %v", p, err)
		}
	})
	t.Run("configured missing", func(t *testing.T) {
		if _, err := wrapper.FindRuntime(filepath.Join(dir, "nope"), self); err == nil || !strings.Contains(err.Error(), "runtime:") {
			t.Fatalf("want an error saying what to set, got %v", err)
		}
	})
	t.Run("configured as itself loops", func(t *testing.T) {
		if _, err := wrapper.FindRuntime(self, self); err == nil || !strings.Contains(err.Error(), "is secrun-runc itself") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("runc beside secrun-runc", func(t *testing.T) {
		writeFile(t, runc, "#!/bin/sh\n", 0o755)
		if p, err := wrapper.FindRuntime("", self); err != nil || p != runc {
			t.Fatalf("%q, %v", p, err)
		}
	})
	t.Run("a runc beside it that is secrun-runc is skipped", func(t *testing.T) {
		if err := os.Remove(runc); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(self, runc); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		if p, err := wrapper.FindRuntime("", self); err == nil && (p == runc || p == self) {
			t.Fatalf("found %q: secrun-runc would execute itself", p)
		}
	})
}

// FuzzParseConfig: a config either parses into a valid mode and hardening
// or is an error naming the file; never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"runtime: /usr/bin/runc\npolicy: baseline\nmode: enforce\n",
		"mode: audit-only\nhardening:\n  seccomp: default\n  noNewPrivileges: true\n",
		"{}", "", "mode: [1]", "hardening: null\n", "runtime: ~\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := wrapper.ParseConfig(data, "/etc/secrun/runtime.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "/etc/secrun/runtime.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if c.Mode != wrapper.ModeEnforce && c.Mode != wrapper.ModeAuditOnly {
			t.Fatalf("mode %q accepted", c.Mode)
		}
		if c.Hardening.Seccomp != "" && c.Hardening.Seccomp != "default" {
			t.Fatalf("seccomp %q accepted", c.Hardening.Seccomp)
		}
		if !filepath.IsAbs(c.AuditLog) {
			t.Fatalf("relative audit log %q", c.AuditLog)
		}
	})
}

package wrapper_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner/wrapper"
)

// env is one secrun-runc installation in a temp dir: a config, a fake
// real runtime, an audit trail, and a bundle. Exec is recorded instead of
// replacing the test process.
type env struct {
	t       testing.TB
	dir     string
	config  string
	runtime string
	audit   string
	bundle  string
	stderr  bytes.Buffer
	execed  [][]string
	environ []string
}

func newEnv(t testing.TB, configYAML string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.runtime = filepath.Join(e.dir, "runc")
	// The fake runtime answers `state` for exec tests; everything else is
	// only recorded by the fake Exec.
	writeFile(t, e.runtime, "#!/bin/sh\n"+
		"for a; do last=$a; done\n"+
		"case \" $* \" in *\" state \"*) printf '{\"id\":\"%s\",\"pid\":4242,\"status\":\"running\",\"bundle\":\"%s\"}\\n' \"$last\" \""+filepath.Join(e.dir, "bundle")+"\";; *) exit 3;; esac\n", 0o755)
	e.audit = filepath.Join(e.dir, "audit", "audit.log")
	e.bundle = filepath.Join(e.dir, "bundle")
	if err := os.MkdirAll(e.bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	e.config = filepath.Join(e.dir, "runtime.yaml")
	writeFile(t, e.config, "runtime: "+e.runtime+"\nauditLog: "+e.audit+"\nstateDir: "+filepath.Join(e.dir, "state")+"\n"+configYAML, 0o644)
	e.environ = []string{"PATH=/usr/bin:/bin", wrapper.ConfigEnv + "=" + e.config}
	return e
}

func writeFile(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// specFixture returns a captured engine spec with edits applied.
func specFixture(t testing.TB, name string, edit func(*specs.Spec)) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata(t), "runtime", "specs", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return data
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	edit(&s)
	out, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) writeSpec(data []byte) {
	e.t.Helper()
	writeFile(e.t, filepath.Join(e.bundle, "config.json"), string(data), 0o600)
}

var fixedHost = policy.HostInfo{LSM: []string{}, Userns: true, Cgroup: "hybrid"}

// run runs secrun-runc's Main with args and returns its exit status.
func (e *env) run(args ...string) int {
	e.t.Helper()
	e.stderr.Reset()
	getenv := func(k string) string {
		for _, kv := range e.environ {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	return wrapper.Main(context.Background(), args, wrapper.System{
		Getenv:  getenv,
		Environ: e.environ,
		Stderr:  &e.stderr,
		Self:    filepath.Join(e.dir, "bin", "secrun-runc"),
		Exec: func(path string, argv, env []string) error {
			if argv[0] != path {
				e.t.Errorf("argv[0] %q is not the executed path %q", argv[0], path)
			}
			if !slices.Equal(env, e.environ) {
				e.t.Errorf("environment changed: %q", env)
			}
			e.execed = append(e.execed, argv)
			return nil
		},
		Now:  func() time.Time { return time.Date(2025, 11, 23, 10, 0, 0, 0, time.UTC) },
		Host: func() policy.HostInfo { return fixedHost },
	})
}

// records returns the audit trail's records after the trail's own.
func (e *env) records() []audit.Record {
	e.t.Helper()
	f, err := os.Open(e.audit)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, audit.MaxRecordSize)
	for sc.Scan() {
		r, err := audit.ParseRecord(sc.Bytes())
		if err != nil {
			e.t.Fatalf("audit record %q: %v", sc.Text(), err)
		}
		if !strings.HasPrefix(r.Kind, "trail.") {
			out = append(out, r)
		}
	}
	return out
}

func kinds(rs []audit.Record) []string {
	var k []string
	for _, r := range rs {
		k = append(k, r.Kind+":"+r.Outcome)
	}
	return k
}

// runcLog reads the JSON runc log and returns its entries.
func runcLog(t *testing.T, path string) []map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("runc log: %v", err)
	}
	var out []map[string]string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("runc log line %q is not runc's JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestCreate runs the create path over the specs Docker, podman and ctr
// really hand to their runtime, under the built-in policies.
func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		spec    string
		edit    func(*specs.Spec)
		allowed bool
		// want are substrings of the denial line (stderr and runc log).
		want     []string
		hardened []string
		// hooks is what runtime.invoked records under spec.hooks.
		hooks []string
	}{
		{name: "docker default under baseline", config: "policy: baseline\n", spec: "docker-default", allowed: true},
		{name: "podman default under baseline", config: "policy: baseline\n", spec: "podman-default", allowed: true},
		{name: "docker --privileged", config: "policy: baseline\n", spec: "docker-privileged",
			want: []string{"secrun: denied by policy baseline: ", "privileged: privileged containers are not allowed", "proc-mount: "}},
		{name: "docker -v docker.sock", config: "policy: baseline\n", spec: "docker-socket",
			want: []string{"runtime-socket: host path /tmp/srd/docker.sock is a container runtime socket"}},
		{name: "ctr has no seccomp filter", config: "policy: baseline\n", spec: "ctr-default",
			want: []string{"seccomp: seccomp is disabled"}},
		{name: "ctr with the default seccomp profile applied", config: "policy: baseline\nhardening:\n  seccomp: default\n", spec: "ctr-default",
			allowed: true, hardened: []string{"linux.seccomp=default"}},
		{name: "hardening never replaces the caller's profile", config: "policy: baseline\nhardening:\n  seccomp: default\n  noNewPrivileges: true\n", spec: "docker-default",
			allowed: true, hardened: []string{"process.noNewPrivileges=true"}},
		{name: "restricted requires a signature: no image identity", config: "policy: restricted\n", spec: "docker-default",
			want: []string{"signed-image: the image signature is not verified: no image identity"}},
		{name: "restricted with a name but no trust", config: "policy: restricted\n", spec: "docker-default",
			edit: func(s *specs.Spec) {
				s.Annotations = map[string]string{"io.kubernetes.cri.image-name": "registry.example/app:1"}
			},
			want: []string{"signed-image: the image signature is not verified: no trust configuration"}},
		{name: "hooks are in the input for the policy", config: "policy: @testdata@/runtime/policies/no-hooks\n", spec: "docker-default",
			edit: func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/evil", Args: []string{"evil"}}}}
			},
			want: []string{"hooks: OCI createRuntime hook /usr/bin/evil runs on the host as root"}},
		{name: "audit-only records the denial and starts it", config: "policy: baseline\nmode: audit-only\n", spec: "docker-privileged", allowed: true},
		{name: "docker --network none: dockerd's setkey hook is allowed", config: "policy: baseline\n", spec: "docker-default",
			edit:    func(s *specs.Spec) { s.Hooks = &specs.Hooks{Prestart: []specs.Hook{dockerSetkeyHook}} }, //nolint:staticcheck // Docker's hook kind
			allowed: true,
			hooks:   []string{"prestart[0] /proc/26856/exe libnetwork-setkey -exec-root=/var/run/docker beac18336857e6c78b3c3530248f09a18634201e1911b2ba0b1475995945ee69 68c4717f6d82"}},
		{name: "a hook besides dockerd's is refused by baseline", config: "policy: baseline\n", spec: "docker-default",
			edit: func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{
					Prestart:      []specs.Hook{dockerSetkeyHook}, //nolint:staticcheck // Docker's hook kind
					CreateRuntime: []specs.Hook{{Path: "/usr/bin/evil", Args: []string{"evil"}}},
				}
			},
			want: []string{"secrun: denied by policy baseline: hooks: OCI createRuntime hook 0 runs /usr/bin/evil evil on the host", "(spec.hooks.createRuntime[0].path=/usr/bin/evil)"}},
		{name: "another command of dockerd's binary is refused by restricted", config: "policy: restricted\n", spec: "docker-default",
			edit: func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/proc/26856/exe", Args: []string{"something-else"}}}} //nolint:staticcheck // Docker's hook kind
			},
			want: []string{"hooks: OCI prestart hook 0 runs /proc/26856/exe something-else on the host"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, strings.ReplaceAll(tc.config, "@testdata@", testdata(t)))
			orig := specFixture(t, tc.spec, tc.edit)
			e.writeSpec(orig)
			logFile := filepath.Join(e.bundle, "log.json")
			args := []string{"--root", "/run/x", "--log", logFile, "--log-format", "json", "create", "--bundle", e.bundle, "--pid-file", filepath.Join(e.bundle, "init.pid"), "ctr1"}
			code := e.run(args...)
			recs := e.records()
			onDisk, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.allowed {
				if code != wrapper.ExitDenied {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, wrapper.ExitDenied, e.stderr.String())
				}
				if len(e.execed) != 0 {
					t.Fatalf("denied, yet runc was executed: %q", e.execed)
				}
				line := strings.TrimSpace(e.stderr.String())
				if strings.Count(line, "\n") != 0 {
					t.Errorf("the denial is not one line on stderr:\n%s", line)
				}
				entries := runcLog(t, logFile)
				last := entries[len(entries)-1]
				if last["level"] != "error" || last["msg"] != line || last["time"] != "2025-11-23T10:00:00Z" {
					t.Errorf("runc log entry %v, want level error, the stderr line and the time", last)
				}
				for _, w := range tc.want {
					if !strings.Contains(line, w) {
						t.Errorf("denial %q does not say %q", line, w)
					}
				}
				if got := kinds(recs); !slices.Equal(got, []string{"policy.decision:denied", "container.denied:denied"}) {
					t.Errorf("audit records %v", got)
				}
				if !bytes.Equal(onDisk, orig) {
					t.Error("a denied bundle was modified")
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, e.stderr.String())
			}
			if len(e.execed) != 1 || !slices.Equal(e.execed[0], append([]string{e.runtime}, args...)) {
				t.Fatalf("executed %q, want the runtime with the same arguments", e.execed)
			}
			want := []string{"policy.decision:allowed", "runtime.invoked:success"}
			if strings.Contains(tc.config, "audit-only") {
				want[0] = "policy.decision:denied"
			}
			if got := kinds(recs); !slices.Equal(got, want) {
				t.Fatalf("audit records %v, want %v", got, want)
			}
			dec, inv := recs[0], recs[1]
			if dec.Container.ID != "ctr1" || dec.Container.Runtime != e.runtime || dec.Policy == nil || dec.Policy.Hash == "" || dec.Policy.InputHash == "" {
				t.Errorf("decision record %+v lacks container, runtime or policy identity", dec)
			}
			if dec.Fields["enforcement"] == nil || inv.Fields["runtime.command"] != "create" || inv.Fields["spec.hash"] != hash(onDisk) {
				t.Errorf("records' fields: decision %v, invoked %v", dec.Fields, inv.Fields)
			}
			var hooks []string
			if hs, ok := inv.Fields["spec.hooks"].([]any); ok {
				for _, h := range hs {
					hooks = append(hooks, h.(string))
				}
			}
			if !slices.Equal(hooks, tc.hooks) {
				t.Errorf("runtime.invoked spec.hooks %q, want %q", hooks, tc.hooks)
			}
			if len(tc.hardened) == 0 {
				if !bytes.Equal(onDisk, orig) {
					t.Error("the bundle was rewritten with nothing to harden")
				}
				if _, err := os.Stat(filepath.Join(e.bundle, "config.json.orig")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("config.json.orig written without hardening: %v", err)
				}
				return
			}
			kept, err := os.ReadFile(filepath.Join(e.bundle, "config.json.orig"))
			if err != nil || !bytes.Equal(kept, orig) {
				t.Fatalf("config.json.orig does not keep the engine's spec: %v", err)
			}
			var final specs.Spec
			if err := json.Unmarshal(onDisk, &final); err != nil {
				t.Fatal(err)
			}
			if final.Annotations[wrapper.AnnotationOriginal] != hash(orig) {
				t.Errorf("adjusted spec annotation %q, want the original's hash", final.Annotations[wrapper.AnnotationOriginal])
			}
			if slices.Contains(tc.hardened, "linux.seccomp=default") && (final.Linux.Seccomp == nil || final.Linux.Seccomp.DefaultAction != specs.ActErrno) {
				t.Errorf("no default seccomp profile in the adjusted spec: %+v", final.Linux.Seccomp)
			}
			if slices.Contains(tc.hardened, "process.noNewPrivileges=true") && !final.Process.NoNewPrivileges {
				t.Error("no_new_privs not set in the adjusted spec")
			}
			if got, _ := inv.Fields["spec.hardening"].([]any); len(got) != len(tc.hardened) {
				t.Errorf("runtime.invoked hardening %v, want %v", inv.Fields["spec.hardening"], tc.hardened)
			}
			if inv.Fields["spec.original_hash"] != hash(orig) {
				t.Errorf("runtime.invoked original hash %v", inv.Fields["spec.original_hash"])
			}
		})
	}
}

// testdata is the repository's testdata directory.
func testdata(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "testdata")
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestCreateTwiceFromOneBundle: runc allows several containers from one
// bundle; the second create hardens the engine's original again instead of
// treating secrun-runc's output as the original.
func TestCreateTwiceFromOneBundle(t *testing.T) {
	e := newEnv(t, "policy: baseline\nhardening:\n  seccomp: default\n")
	orig := specFixture(t, "ctr-default", nil)
	e.writeSpec(orig)
	for _, id := range []string{"a", "b"} {
		if code := e.run("create", "--bundle", e.bundle, id); code != 0 {
			t.Fatalf("create %s: exit %d: %s", id, code, e.stderr.String())
		}
	}
	kept, err := os.ReadFile(filepath.Join(e.bundle, "config.json.orig"))
	if err != nil || !bytes.Equal(kept, orig) {
		t.Fatalf("config.json.orig no longer holds the engine's spec after two creates: %v", err)
	}
	recs := e.records()
	if recs[0].Policy.InputHash != recs[2].Policy.InputHash {
		t.Error("the second create evaluated a different input")
	}
	// The engine rewrites config.json (a new container): that is the new
	// original.
	e.writeSpec(specFixture(t, "docker-default", nil))
	if code := e.run("create", "--bundle", e.bundle, "c"); code != 0 {
		t.Fatalf("create c: exit %d: %s", code, e.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "config.json.orig")); err != nil {
		t.Fatal(err)
	}
	now, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now, specFixture(t, "docker-default", nil)) {
		t.Error("a spec needing no hardening was rewritten")
	}
}

// TestFailClosed: whatever stops secrun-runc from deciding stops the
// container, with one line saying what to fix.
func TestFailClosed(t *testing.T) {
	td := testdata(t)
	tests := []struct {
		name   string
		setup  func(e *env)
		want   string
		record bool
	}{
		{"config missing", func(e *env) { e.environ[1] = wrapper.ConfigEnv + "=" + filepath.Join(e.dir, "nope.yaml") }, "nope.yaml: no such file or directory", false},
		{"config misspelt", func(e *env) { writeFile(e.t, e.config, "polcy: baseline\n", 0o644) }, `unknown field "polcy"`, false},
		{"config unreadable mode", func(e *env) {
			writeFile(e.t, e.config, "runtime: "+e.runtime+"\nmode: audit-onyl\n", 0o644)
		}, `mode "audit-onyl"`, false},
		{"policy does not compile", func(e *env) {
			writeFile(e.t, e.config, "runtime: "+e.runtime+"\nauditLog: "+e.audit+"\npolicy: "+filepath.Join(td, "runtime", "policies", "bad.rego")+"\n", 0o644)
		}, "does not parse", true},
		{"policy missing", func(e *env) {
			writeFile(e.t, e.config, "runtime: "+e.runtime+"\nauditLog: "+e.audit+"\npolicy: /nonexistent/policy.rego\n", 0o644)
		}, "/nonexistent/policy.rego", true},
		{"audit log unwritable", func(e *env) {
			writeFile(e.t, filepath.Join(e.dir, "afile"), "", 0o644)
			writeFile(e.t, e.config, "runtime: "+e.runtime+"\npolicy: baseline\nauditLog: "+filepath.Join(e.dir, "afile", "audit.log")+"\n", 0o644)
		}, "refusing to start unaudited", false},
		{"bundle without config.json", func(e *env) {
			if err := os.Remove(filepath.Join(e.bundle, "config.json")); err != nil {
				e.t.Fatal(err)
			}
		}, "config.json: no such file or directory", true},
		{"config.json is not a spec", func(e *env) { e.writeSpec([]byte(`{"process": 7}`)) }, "cannot unmarshal", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "policy: baseline\n")
			e.writeSpec(specFixture(t, "docker-default", nil))
			tc.setup(e)
			logFile := filepath.Join(e.dir, "log.json")
			code := e.run("--log", logFile, "--log-format", "json", "create", "--bundle", e.bundle, "ctr1")
			if code != wrapper.ExitDenied {
				t.Fatalf("exit %d, want %d: %s", code, wrapper.ExitDenied, e.stderr.String())
			}
			if len(e.execed) != 0 {
				t.Fatal("runc was executed")
			}
			line := strings.TrimSpace(e.stderr.String())
			if strings.Contains(line, "\n") || !strings.Contains(line, tc.want) {
				t.Errorf("stderr %q: want one line mentioning %q", line, tc.want)
			}
			if entries := runcLog(t, logFile); entries[len(entries)-1]["msg"] != line {
				t.Errorf("runc log %v does not carry the line", entries)
			}
			recs := e.records()
			if tc.record && (len(recs) != 1 || recs[0].Kind != audit.KindContainerDenied || !strings.Contains(recs[0].Reason, tc.want)) {
				t.Errorf("audit records %v: want one container.denied saying %q", kinds(recs), tc.want)
			}
		})
	}
}

// TestPassThrough: commands that start nothing reach the real runtime with
// their arguments unchanged, even when the config is broken (an engine must
// still be able to stop and delete its containers).
func TestPassThrough(t *testing.T) {
	tests := [][]string{
		{"--root", "/run/containerd/runc/moby", "--log", "/b/log.json", "--log-format", "json", "state", "abc"},
		{"--root", "/r", "kill", "abc", "9"},
		{"delete", "--force", "abc"},
		{"start", "abc"},
		{"ps", "--format", "json", "abc"},
		{"pause", "abc"}, {"resume", "abc"},
		{"update", "--memory", "100000000", "abc"},
		{"events", "--stats", "abc"},
		{"features"}, {"--version"}, {"create", "--help"},
	}
	for _, broken := range []bool{false, true} {
		for _, args := range tests {
			t.Run(strings.Join(args, " ")+map[bool]string{true: " (config broken)"}[broken], func(t *testing.T) {
				e := newEnv(t, "policy: baseline\n")
				if broken {
					writeFile(t, e.config, "not: [valid", 0o644)
					// Without a config the runtime is found beside secrun-runc.
					writeFile(t, filepath.Join(e.dir, "bin", "runc"), "#!/bin/sh\n", 0o755)
				}
				if code := e.run(args...); code != 0 {
					t.Fatalf("exit %d: %s", code, e.stderr.String())
				}
				want := e.runtime
				if broken {
					want = filepath.Join(e.dir, "bin", "runc")
				}
				if len(e.execed) != 1 || !slices.Equal(e.execed[0], append([]string{want}, args...)) {
					t.Fatalf("executed %q, want %s %q", e.execed, want, args)
				}
				if recs := e.records(); len(recs) != 0 {
					t.Errorf("pass-through commands are not audited, got %v", kinds(recs))
				}
			})
		}
	}
}

// TestRefused: checkpoint and restore would bring a container back without
// a decision.
func TestRefused(t *testing.T) {
	for _, args := range [][]string{{"checkpoint", "abc"}, {"restore", "--bundle", "/b", "abc"}} {
		t.Run(args[0], func(t *testing.T) {
			e := newEnv(t, "policy: baseline\n")
			logFile := filepath.Join(e.dir, "log.txt")
			code := e.run(append([]string{"--log", logFile}, args...)...)
			if code == 0 || len(e.execed) != 0 {
				t.Fatalf("exit %d, executed %q", code, e.execed)
			}
			if !strings.Contains(e.stderr.String(), "runc "+args[0]+" is not supported by secrun-runc") {
				t.Errorf("stderr %q", e.stderr.String())
			}
			// Without --log-format json, the log is runc's text format.
			data, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			if want := `time="2025-11-23T10:00:00Z" level=error msg="secrun-runc: runc ` + args[0]; !strings.HasPrefix(string(data), want) {
				t.Errorf("text log %q, want prefix %q", data, want)
			}
		})
	}
}

// TestCommandLineRefused: a command line secrun-runc cannot read exactly is
// refused, never passed through.
func TestCommandLineRefused(t *testing.T) {
	e := newEnv(t, "policy: baseline\n")
	if code := e.run("--newflag", "create", "--bundle", e.bundle, "x"); code != wrapper.ExitError || len(e.execed) != 0 {
		t.Fatalf("exit %d, executed %q", code, e.execed)
	}
	if !strings.Contains(e.stderr.String(), "cannot read the runc command line") {
		t.Errorf("stderr %q", e.stderr.String())
	}
}

// TestConfigFlag: --secrun-config (podman --runtime-flag) names the config
// and is not passed to runc.
func TestConfigFlag(t *testing.T) {
	e := newEnv(t, "policy: baseline\n")
	e.environ = []string{"PATH=/usr/bin:/bin"}
	e.writeSpec(specFixture(t, "docker-default", nil))
	if code := e.run("--secrun-config="+e.config, "create", "--bundle", e.bundle, "x"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.stderr.String())
	}
	if want := []string{e.runtime, "create", "--bundle", e.bundle, "x"}; !slices.Equal(e.execed[0], want) {
		t.Fatalf("executed %q, want %q", e.execed[0], want)
	}
}

// TestExec: exec is decided on the container's spec with the process
// replaced, whether the process comes from --process (shims) or flags.
func TestExec(t *testing.T) {
	e := newEnv(t, "policy: baseline\nhardening:\n  noNewPrivileges: true\n")
	e.writeSpec(specFixture(t, "docker-default", nil))
	var s specs.Spec
	if err := json.Unmarshal(specFixture(t, "docker-default", nil), &s); err != nil {
		t.Fatal(err)
	}
	proc := *s.Process
	proc.Args = []string{"sh", "-c", "echo hi"}
	procJSON, err := json.Marshal(&proc)
	if err != nil {
		t.Fatal(err)
	}
	procFile := filepath.Join(e.dir, "process.json")
	writeFile(t, procFile, string(procJSON), 0o600)

	if code := e.run("exec", "--process", procFile, "--detach", "ctr1"); code != 0 {
		t.Fatalf("exec: exit %d: %s", code, e.stderr.String())
	}
	var got specs.Process
	data, err := os.ReadFile(procFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil || !got.NoNewPrivileges || !slices.Equal(got.Args, proc.Args) {
		t.Fatalf("process file after hardening: %s (%v)", data, err)
	}
	recs := e.records()
	if got := kinds(recs); !slices.Equal(got, []string{"policy.decision:allowed", "container.exec:success"}) {
		t.Fatalf("records %v", got)
	}
	if recs[1].Container.PID != 4242 || recs[1].Fields["runtime.command"] != "exec" {
		t.Errorf("exec record %+v", recs[1])
	}

	// Flags: --cap adds a capability the policy refuses.
	if code := e.run("exec", "--cap", "CAP_SYS_ADMIN", "ctr1", "id"); code != wrapper.ExitDenied {
		t.Fatalf("exec --cap SYS_ADMIN: exit %d: %s", code, e.stderr.String())
	}
	if !strings.Contains(e.stderr.String(), "capability CAP_SYS_ADMIN is not allowed") {
		t.Errorf("stderr %q", e.stderr.String())
	}
	// Flags, allowed: --no-new-privs is added for the hardening.
	e.execed = nil
	if code := e.run("--root", "/r", "exec", "-e", "A=1", "ctr1", "id"); code != 0 {
		t.Fatalf("exec id: exit %d: %s", code, e.stderr.String())
	}
	if want := []string{e.runtime, "--root", "/r", "exec", "--no-new-privs", "-e", "A=1", "ctr1", "id"}; !slices.Equal(e.execed[0], want) {
		t.Errorf("executed %q, want %q", e.execed[0], want)
	}
}

// TestSignatureHelper: with a trust config and an image named by digest,
// the helper's verdict reaches the policy; a helper that cannot check
// stops the container.
func TestSignatureHelper(t *testing.T) {
	td := testdata(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	ref := "127.0.0.1:5000/app@" + digest
	tests := []struct {
		name   string
		helper string
		ann    string
		code   int
		want   string
	}{
		{"verified", `printf '{"verified":true,"signers":["key:sha256:00"],"digest":"` + digest + `"}\n'`, ref, 0, ""},
		{"not signed", `printf '{"verified":false,"signers":[],"digest":"` + digest + `","error":"image is not signed"}\n'`, ref, wrapper.ExitDenied, "image is not signed"},
		{"helper fails", `echo "registry unreachable" >&2; exit 125`, ref, wrapper.ExitDenied, "could not be checked: registry unreachable"},
		{"helper lies about the digest", `printf '{"verified":true,"signers":["k"],"digest":"sha256:` + strings.Repeat("cd", 32) + `"}\n'`, ref, wrapper.ExitDenied, "not " + digest},
		{"no digest in the name", `exit 99`, "127.0.0.1:5000/app:1", wrapper.ExitDenied, "named without a digest"},
		{"no name at all", `exit 99`, "", wrapper.ExitDenied, "no image identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			helper := filepath.Join(e.dir, "verifier")
			writeFile(t, helper, "#!/bin/sh\n"+tc.helper+"\n", 0o755)
			trust := filepath.Join(e.dir, "trust.yaml")
			writeFile(t, trust, "rules: []\n", 0o644)
			writeFile(t, e.config, "runtime: "+e.runtime+"\nauditLog: "+e.audit+"\ntrust: trust.yaml\nverifier: "+helper+
				"\npolicy: "+filepath.Join(td, "runtime", "policies", "signed-only")+"\n", 0o644)
			e.writeSpec(specFixture(t, "docker-default", func(s *specs.Spec) {
				if tc.ann != "" {
					s.Annotations = map[string]string{wrapper.AnnotationImage: tc.ann}
				}
			}))
			code := e.run("create", "--bundle", e.bundle, "x")
			if code != tc.code || !strings.Contains(e.stderr.String(), tc.want) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", code, tc.code, e.stderr.String(), tc.want)
			}
			recs := e.records()
			if len(recs) == 0 || recs[0].Image.Name != tc.ann {
				t.Fatalf("records %v do not name the image %q", kinds(recs), tc.ann)
			}
		})
	}
}

// TestOneLine: a denial is one line naming the policy and at most a handful
// of violations; the audit trail keeps them all.
func TestOneLine(t *testing.T) {
	var vs []policy.Violation
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		vs = append(vs, policy.Violation{ID: id, Msg: "bad\nthing", Field: "f", Fix: "fix it"})
	}
	got := wrapper.OneLine(&policy.DeniedError{Policy: "baseline", Violations: vs, Reason: "why"})
	want := "secrun: denied by policy baseline: a: bad thing (f); fix it | b: bad thing (f); fix it | c: bad thing (f); fix it | " +
		"d: bad thing (f); fix it | e: bad thing (f); fix it | f: bad thing (f); fix it | and 2 more (secrun audit log show --kind policy.decision) | why"
	if got != want {
		t.Errorf("OneLine:\n got %s\nwant %s", got, want)
	}
	if got := wrapper.OneLine(errors.New("audit trail /x:\n  disk full")); got != "secrun-runc: audit trail /x: disk full" {
		t.Errorf("OneLine(error) = %q", got)
	}
}

// dockerSetkeyHook is the hook dockerd 20.10 (Debian 12's docker.io) wrote
// into config.json for `docker run --network none` on the development VM.
var dockerSetkeyHook = specs.Hook{
	Path: "/proc/26856/exe",
	Args: []string{"libnetwork-setkey", "-exec-root=/var/run/docker", "beac18336857e6c78b3c3530248f09a18634201e1911b2ba0b1475995945ee69", "68c4717f6d82"},
}

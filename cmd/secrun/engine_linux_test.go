package main_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/testenv"
)

// TestLightFrontImports keeps the installed secrun (the secrun_noengine
// build) free of the packages whose initialisation made every `secrun run`
// about 50 ms slower: OPA and sigstore's verification stack. A warm run
// needs neither; the engine beside it has both.
func TestLightFrontImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-tags", "secrun_noengine", "-deps", "./cmd/secrun")
	cmd.Dir = testenv.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/open-policy-agent/", "github.com/sigstore/cosign/", "github.com/sigstore/rekor/",
		"github.com/sigstore/sigstore/pkg/tuf", "github.com/sigstore/sigstore/pkg/signature",
		"github.com/go-openapi/", "google.golang.org/grpc", "google.golang.org/protobuf",
	}
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) && dep != "github.com/sigstore/sigstore/pkg/signature/payload" {
				t.Errorf("the light secrun imports %s: keep it in secrun-engine", dep)
			}
		}
	}
	if len(deps) < 50 {
		t.Fatalf("go list found only %d packages: is the build tag still secrun_noengine?", len(deps))
	}
}

// auditKinds reads the audit log (ECS lines) and counts records by
// event.action, per container.
func auditKinds(t *testing.T, root string) map[string]map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Event struct {
				Action string `json:"action"`
			} `json:"event"`
			Container struct {
				ID string `json:"id"`
			} `json:"container"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit record %q: %v", sc.Text(), err)
		}
		if rec.Container.ID == "" {
			continue
		}
		if out[rec.Container.ID] == nil {
			out[rec.Container.ID] = map[string]int{}
		}
		out[rec.Container.ID][rec.Event.Action]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEngineHandOff: the light secrun answers a warm request itself and
// hands a cold one to secrun-engine, and a hand-off leaves no trace of the
// light half: every container has one record per step. Without the engine
// beside it, a cold request is refused in one line, before anything is
// recorded or created.
func TestEngineHandOff(t *testing.T) {
	c := newCLI(t)
	allow := c.policyFile(allowAll)
	trace := func(args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("SECRUN_TRACE", "1")
		defer os.Unsetenv("SECRUN_TRACE")
		return c.run(args...)
	}
	// Cold: the policy has never been compiled under this root.
	code, stdout, stderr := trace("--policy", allow, "run", "--rm", c.layout, "echo", "cold")
	if code != 0 || stdout != "cold\n" {
		t.Fatalf("cold run: exit %d stdout %q stderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "trace: hand-off") {
		t.Fatalf("a cold run was not handed to secrun-engine:\n%s", stderr)
	}
	// Warm: the same request is decided from the cache, by the light half.
	code, stdout, stderr = trace("--policy", allow, "run", "--rm", c.layout, "echo", "cold")
	if code != 0 || stdout != "cold\n" {
		t.Fatalf("warm run: exit %d stdout %q stderr %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "hand-off") {
		t.Fatalf("a warm run was handed off:\n%s", stderr)
	}
	// A denial is never cached: it is the engine's, every time, with the
	// policy's own messages.
	code, _, stderr = trace("--policy", "baseline", "run", "--rm", "--privileged", c.layout, "true")
	if code != 126 || !strings.Contains(stderr, "hand-off") || !strings.Contains(stderr, "request.privileged=true") {
		t.Fatalf("denial: exit %d stderr %s", code, stderr)
	}
	// A signature verdict the cache does not hold is the engine's too,
	// and so is recording the steps before it; the next run is the light
	// half's, verdict included.
	dir := t.TempDir()
	env := append(os.Environ(), "COSIGN_PASSWORD=test")
	for _, args := range [][]string{{"generate-key-pair"}, {"sign", "--key", "cosign.key", c.layout}} {
		if code, _, stderr := c.runIn(dir, env, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	trust := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(trust, []byte("rules:\n- images: [\"oci:**\"]\n  keys: [cosign.pub]\n  insecureIgnoreTlog: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		code, stdout, stderr = trace("--policy", allow, "--trust", trust, "run", "--rm", c.layout, "echo", "signed")
		if code != 0 || stdout != "signed\n" || strings.Contains(stderr, "trace: hand-off") != want {
			t.Fatalf("signed run %d: exit %d stdout %q, want hand-off %v; stderr:\n%s", i+1, code, stdout, want, stderr)
		}
	}
	for id, kinds := range auditKinds(t, c.root) {
		for _, k := range []string{"image.resolved", "signature.verdict", "policy.decision"} {
			if kinds[k] != 1 {
				t.Errorf("container %s has %d %s records, want 1 (a hand-off must not record twice): %v", id, kinds[k], k, kinds)
			}
		}
	}

	// The light half alone.
	lone := filepath.Join(t.TempDir(), "secrun")
	copyFile(t, c.bin, lone, 0o755)
	lonely := &cli{t: t, bin: lone, root: c.root, runc: c.runc, layout: c.layout}
	code, stdout, stderr = lonely.run("--policy", allow, "run", "--rm", c.layout, "echo", "cold")
	if code != 0 || stdout != "cold\n" {
		t.Fatalf("warm run without the engine: exit %d stdout %q stderr %s", code, stdout, stderr)
	}
	before, err := os.ReadFile(filepath.Join(c.root, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--policy", allow, "run", "--rm", c.layout, "echo", "another request"},
		{"--policy", c.policyFile("package secrun\n\nallow := input.request.args[0] == \"echo\"\n"), "run", "--rm", c.layout, "echo", "x"},
		{"policy", "explain"},
	} {
		code, stdout, stderr = lonely.run(args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 125 || stdout != "" || len(lines) != 1 || !strings.Contains(stderr, "secrun-engine") || !strings.Contains(stderr, "make install") {
			t.Errorf("%v without the engine: exit %d stdout %q stderr %q; want 125 and one line naming secrun-engine", args, code, stdout, stderr)
		}
	}
	after, err := os.ReadFile(filepath.Join(c.root, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("a refused hand-off wrote audit records:\n%s", after[len(before):])
	}
	if ents, err := os.ReadDir(filepath.Join(c.root, "containers")); err == nil && len(ents) != 0 {
		t.Errorf("a refused hand-off left containers behind: %v", ents)
	}
}

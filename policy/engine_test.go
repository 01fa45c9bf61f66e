package policy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrun/secrun/policy"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadBuiltins(t *testing.T) {
	ctx := context.Background()
	def, err := policy.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if def.Name() != "restricted" {
		t.Errorf("default policy %q, want restricted", def.Name())
	}
	seen := map[string]string{}
	for _, name := range []string{"restricted", "baseline", "cis-docker"} {
		e, err := policy.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() != name || !strings.HasPrefix(e.Hash(), "sha256:") || len(e.Hash()) != len("sha256:")+64 {
			t.Errorf("%s: name %q hash %q", name, e.Name(), e.Hash())
		}
		if other, dup := seen[e.Hash()]; dup {
			t.Errorf("%s and %s hash the same", name, other)
		}
		seen[e.Hash()] = name
		again, err := policy.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if again.Hash() != e.Hash() {
			t.Errorf("%s: hash not stable: %s then %s", name, e.Hash(), again.Hash())
		}
		if len(e.Controls()) == 0 {
			t.Errorf("%s declares no controls", name)
		}
		for _, c := range e.Controls() {
			if c.Description == "" || len(c.Refs) == 0 {
				t.Errorf("%s: control %s lacks description or refs", name, c.ID)
			}
		}
	}
	if seen[def.Hash()] != "restricted" {
		t.Error("the default policy is not restricted")
	}
}

// The contract of ARCHITECTURE.md: a policy of just `allow := true` admits
// everything, including unsigned and privileged containers.
func TestCustomAllowAll(t *testing.T) {
	e, err := policy.Load(context.Background(), filepath.Join(testdata, "custom", "allow-all.rego"))
	if err != nil {
		t.Fatal(err)
	}
	in := apply(fixture(t, "docker-default.json"), privilegedSpec, func(in *policy.Input) { in.Request.Privileged = true })
	d := eval(t, e, in)
	if !d.Allowed || d.Err() != nil || len(d.Violations) != 0 || d.Reason != "" {
		t.Fatalf("allow-all denied:%s", dump(d))
	}
	if !filepath.IsAbs(e.Name()) || d.Policy != e.Name() || d.PolicyHash != e.Hash() {
		t.Errorf("decision names policy %q (%s), engine %q (%s)", d.Policy, d.PolicyHash, e.Name(), e.Hash())
	}
	if d.InputHash != policy.InputHash(in) {
		t.Errorf("input hash %s, want %s", d.InputHash, policy.InputHash(in))
	}
	if len(e.Controls()) != 0 {
		t.Errorf("controls %v", e.Controls())
	}
	var b bytes.Buffer
	if err := e.Explain(&b); err != nil || !strings.Contains(b.String(), "declares no controls") {
		t.Errorf("explain: %v %q", err, b.String())
	}
}

func TestSyntaxErrorDenies(t *testing.T) {
	p := filepath.Join(testdata, "custom", "syntax-error.rego")
	_, err := policy.Load(context.Background(), p)
	if err == nil {
		t.Fatal("a policy with a syntax error loaded")
	}
	var denied *policy.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("error %T is not a denial: %v", err, err)
	}
	abs, _ := filepath.Abs(p)
	msg := err.Error()
	if !strings.HasPrefix(msg, policy.DeniedPrefix) || !strings.Contains(msg, abs+":7:") || !strings.Contains(msg, "rego_parse_error") {
		t.Fatalf("message does not name the file and line: %q", msg)
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("message spans lines: %q", msg)
	}
}

// Policies that go wrong deny, with the reason.
func TestBrokenPoliciesDeny(t *testing.T) {
	cases := []struct {
		name, src string
		loadErr   string // substring of the Load error; "" when Load succeeds
		reason    string // substring of Decision.Reason
		denial    bool   // whether a load error is a *DeniedError
	}{
		{name: "undefined-allow", src: "package secrun\n\ndeny contains \"x\" if false\n", reason: "data.secrun.allow is undefined"},
		{name: "allow-not-boolean", src: "package secrun\n\nallow := \"yes\"\n", reason: "data.secrun.allow is \"yes\", not a boolean"},
		{name: "eval-error", src: "package secrun\n\ndefault allow := false\n\nallow if to_number(input.request.name) > 0\n", reason: "policy evaluation failed"},
		{name: "conflict", src: "package secrun\n\nallow := true if input.request.source == \"run\"\n\nallow := false if input.request.name == \"web\"\n", reason: "policy evaluation failed"},
		{name: "allow-but-deny", src: "package secrun\n\nallow := true\n\ndeny contains \"the image is on fire\" if true\n"},
		{name: "deny-not-a-set", src: "package secrun\n\nallow := true\n\ndeny := true\n", reason: "data.secrun.deny is true, not a set"},
		{name: "false-without-violation", src: "package secrun\n\ndefault allow := false\n", reason: "listed no violation"},
		{name: "wrong-package", src: "package acme\n\nallow := true\n", loadErr: "has no `package secrun`", denial: true},
		{name: "network-builtin", src: "package secrun\n\nallow if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1/\"}).status_code == 200\n", loadErr: "undefined function http.send", denial: true},
		{name: "rego-v0", src: "package secrun\n\nallow { true }\n", loadErr: "rego_parse_error", denial: true},
		{name: "compile-error", src: "package secrun\n\nallow if undefined_thing\n", loadErr: "does not compile", denial: true},
	}
	in := fixture(t, "hardened.json")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), c.name+".rego", c.src)
			e, err := policy.Load(context.Background(), p)
			if c.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.loadErr) {
					t.Fatalf("load error %v, want %q", err, c.loadErr)
				}
				var denied *policy.DeniedError
				if errors.As(err, &denied) != c.denial {
					t.Errorf("denial=%v for %v", !c.denial, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Eval(context.Background(), in)
			if err != nil {
				t.Fatalf("eval error %v: a broken policy is a denial, not a failure", err)
			}
			if d.Allowed || d.Err() == nil {
				t.Fatalf("allowed:%s", dump(d))
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Errorf("reason %q, want %q", d.Reason, c.reason)
			}
			for _, line := range strings.Split(d.Err().Error(), "\n") {
				if !strings.HasPrefix(line, policy.DeniedPrefix) {
					t.Errorf("line without prefix: %q", line)
				}
			}
		})
	}
}

func TestEvalNilAndCancelled(t *testing.T) {
	e := builtin(t, "restricted")
	d, err := e.Eval(context.Background(), nil)
	if err == nil || d.Allowed || d.Reason == "" {
		t.Errorf("nil input: %+v, %v", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err = e.Eval(ctx, fixture(t, "hardened.json"))
	if err == nil || d.Allowed || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %+v, %v", d, err)
	}
}

func TestExemptionsFile(t *testing.T) {
	ctx := context.Background()
	exemptions := filepath.Join(testdata, "exemptions.yaml")
	e, err := policy.Load(ctx, "restricted", policy.WithExemptions(exemptions))
	if err != nil {
		t.Fatal(err)
	}
	if e.Hash() == builtin(t, "restricted").Hash() {
		t.Error("exemptions do not change the policy hash")
	}
	writable := func(in *policy.Input) { in.Spec.Root.Readonly = false }
	d := eval(t, e, apply(fixture(t, "hardened.json"), writable))
	if !d.Allowed || len(d.Exempted) != 1 || d.Exempted[0].ID != "readonly-rootfs" {
		t.Fatalf("exemption not applied: exempted %v:%s", d.Exempted, dump(d))
	}
	// Another image: no exemption.
	other := apply(fixture(t, "hardened.json"), writable, func(in *policy.Input) { in.Image.Ref = "127.0.0.1:5000/other/web:1.0" })
	if d := eval(t, e, other); d.Allowed {
		t.Fatal("exemption applied to another image")
	}
	// After expiry the exemption lapses: time is injected.
	expired, err := policy.Load(ctx, "restricted", policy.WithExemptions(exemptions),
		policy.WithEvalTime(func() time.Time { return time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	if d := eval(t, expired, apply(fixture(t, "hardened.json"), writable)); d.Allowed || len(violationsOf(d, "readonly-rootfs")) != 1 {
		t.Fatalf("expired exemption applied:%s", dump(d))
	}
}

func TestExemptionsRejected(t *testing.T) {
	cases := map[string]string{
		"unknown-control": "exemptions:\n  - control: read-only-rootfs\n    images: [\"*\"]\n",
		"typo-key":        "exemption:\n  - control: readonly-rootfs\n    images: [\"*\"]\n",
		"no-images":       "exemptions:\n  - control: readonly-rootfs\n",
		"bad-glob":        "exemptions:\n  - control: readonly-rootfs\n    images: [\"registry/[a-\"]\n",
		"bad-date":        "exemptions:\n  - control: readonly-rootfs\n    images: [\"*\"]\n    expires: tomorrow\n",
		"root-host-path":  "allowed_host_paths: [\"/\"]\n",
		"relative-path":   "allowed_host_paths: [\"srv\"]\n",
		"not-yaml":        "exemptions: [\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "exemptions.yaml", content)
			if _, err := policy.Load(context.Background(), "restricted", policy.WithExemptions(p)); err == nil {
				t.Fatal("accepted")
			} else if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
	if _, err := policy.Load(context.Background(), "restricted", policy.WithExemptions("/nonexistent/exemptions.yaml")); err == nil {
		t.Fatal("missing exemptions file accepted")
	}
}

func TestAllowedHostPathsData(t *testing.T) {
	p := writeFile(t, t.TempDir(), "data.yaml", "allowed_host_paths: [/srv, /home/alice/projects]\n")
	e, err := policy.Load(context.Background(), "restricted", policy.WithExemptions(p))
	if err != nil {
		t.Fatal(err)
	}
	in := apply(fixture(t, "hardened.json"), volume("/home/alice/projects/x", "/home/alice/projects/x", "/src"))
	if d := eval(t, e, in); !d.Allowed {
		t.Fatalf("allowlisted path denied:%s", dump(d))
	}
	in = apply(fixture(t, "hardened.json"), volume("/home/alice/.ssh", "/home/alice/.ssh", "/ssh"))
	if d := eval(t, e, in); d.Allowed {
		t.Fatal("path outside the allowlist admitted")
	}
	// An empty list allows no host path at all, not the default list.
	p = writeFile(t, t.TempDir(), "data.yaml", "allowed_host_paths: []\n")
	if e, err = policy.Load(context.Background(), "restricted", policy.WithExemptions(p)); err != nil {
		t.Fatal(err)
	}
	if d := eval(t, builtin(t, "restricted"), apply(fixture(t, "hardened.json"), volume("/srv/data", "/srv/data", "/data"))); !d.Allowed {
		t.Fatalf("a default allowed path denied by the default list:%s", dump(d))
	}
	if d := eval(t, e, apply(fixture(t, "hardened.json"), volume("/srv/data", "/srv/data", "/data"))); d.Allowed {
		t.Fatal("allowed_host_paths: [] still admitted a path from the default list")
	}
}

func TestCustomDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(testdata, "customdir")
	e, err := policy.Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(e.Controls()); got != 2 {
		t.Errorf("controls %d, want 2", got)
	}
	in := fixture(t, "hardened.json")
	d := eval(t, e, in)
	if d.Allowed || len(d.Violations) != 1 || d.Violations[0].Field != "image.ref=127.0.0.1:5000/apps/web:1.0" {
		t.Fatalf("decision:%s", dump(d))
	}
	in.Image.Ref = "registry.team.example/tools/debug:2"
	in.Spec.Process.User.UID = 0
	if d := eval(t, e, in); !d.Allowed {
		t.Fatalf("exempted root denied:%s", dump(d))
	}
	// An exemptions file for a control the custom policy lacks is refused.
	p := writeFile(t, t.TempDir(), "x.yaml", "exemptions:\n  - control: readonly-rootfs\n    images: [\"*\"]\n")
	if _, err := policy.Load(ctx, dir, policy.WithExemptions(p)); err == nil || !strings.Contains(err.Error(), "registry, root") {
		t.Errorf("exemption for an unknown control: %v", err)
	}
	// The hash covers data: changing it changes the hash.
	cp := t.TempDir()
	for _, f := range []string{"policy.rego", "data.yaml", "team/data.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, cp, f, string(b))
	}
	same, err := policy.Load(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	if same.Hash() != e.Hash() {
		t.Errorf("a copy of the policy hashes differently: %s vs %s", same.Hash(), e.Hash())
	}
	writeFile(t, cp, "team/data.json", `{"registry": "evil.example/"}`)
	changed, err := policy.Load(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Hash() == e.Hash() {
		t.Error("changed data, same hash")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty/README", "no policy here")
	writeFile(t, dir, "conflict/policy.rego", "package secrun\n\nallow := true\n")
	writeFile(t, dir, "conflict/data.json", `{"x": 1}`)
	writeFile(t, dir, "conflict/sub/data.json", `{"y": 1}`)
	writeFile(t, dir, "conflict2/policy.rego", "package secrun\n\nallow := true\n")
	writeFile(t, dir, "conflict2/data.json", `{"sub": 1}`)
	writeFile(t, dir, "conflict2/sub/data.json", `{"y": 1}`)
	writeFile(t, dir, "baddata/policy.rego", "package secrun\n\nallow := true\n")
	writeFile(t, dir, "baddata/data.json", `[1, 2]`)
	cases := map[string]string{
		"missing":   filepath.Join(dir, "nope"),
		"no-rego":   filepath.Join(dir, "empty"),
		"conflict2": filepath.Join(dir, "conflict2"),
		"bad-data":  filepath.Join(dir, "baddata"),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := policy.Load(context.Background(), p); err == nil {
				t.Fatal("loaded")
			}
		})
	}
	if _, err := policy.Load(context.Background(), filepath.Join(dir, "conflict")); err != nil {
		t.Errorf("data at different paths: %v", err)
	}
}

// One Engine serves many containers at once.
func TestConcurrentEval(t *testing.T) {
	e := builtin(t, "restricted")
	good := fixture(t, "hardened.json")
	bad := apply(fixture(t, "hardened.json"), func(in *policy.Input) { in.Request.Privileged = true })
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Go(func() {
			in, want := good, true
			if i%2 == 1 {
				in, want = bad, false
			}
			d, err := e.Eval(context.Background(), in)
			if err != nil || d.Allowed != want {
				errs <- "wrong decision"
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestExplain(t *testing.T) {
	var b bytes.Buffer
	e := builtin(t, "cis-docker")
	if err := e.Explain(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"policy cis-docker (sha256:", "ID", "SEVERITY", "runtime-socket", "critical", "CIS Docker 5.31"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != len(e.Controls())+2 {
		t.Errorf("%d lines for %d controls", lines, len(e.Controls()))
	}
}

func TestDecisionText(t *testing.T) {
	v := policy.Violation{ID: "privileged", Msg: "privileged containers are not allowed", Field: "request.privileged=true", Fix: "drop --privileged", Severity: "critical"}
	if got, want := v.String(), "privileged: privileged containers are not allowed (request.privileged=true); drop --privileged"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := (policy.Decision{Allowed: true}).Err(); err != nil {
		t.Errorf("allowed decision has error %v", err)
	}
	err := policy.Decision{Violations: []policy.Violation{v, {ID: "x", Msg: "two\nlines"}}}.Err()
	want := "secrun: denied by policy: privileged: privileged containers are not allowed (request.privileged=true); drop --privileged\n" +
		"secrun: denied by policy: x: two lines"
	if err == nil || err.Error() != want {
		t.Errorf("Err() = %q, want %q", err, want)
	}
	var denied *policy.DeniedError
	if !errors.As(err, &denied) || len(denied.Violations) != 2 {
		t.Errorf("not a DeniedError: %T", err)
	}
	if err := (policy.Decision{}).Err(); err == nil || !strings.HasPrefix(err.Error(), policy.DeniedPrefix) {
		t.Errorf("zero decision: %v", err)
	}
}

func TestInputHash(t *testing.T) {
	a, b := fixture(t, "hardened.json"), fixture(t, "hardened.json")
	if policy.InputHash(a) != policy.InputHash(b) || !strings.HasPrefix(policy.InputHash(a), "sha256:") {
		t.Fatal("hash not stable")
	}
	b.Request.Name = "other"
	if policy.InputHash(a) == policy.InputHash(b) {
		t.Fatal("different inputs, same hash")
	}
}

func TestReadInputStrict(t *testing.T) {
	cases := map[string]string{
		"unknown-field":  `{"request": {"privilidged": true}}`,
		"trailing":       `{} {}`,
		"wrong-type":     `{"request": {"privileged": "yes"}}`,
		"not-json":       `request: {}`,
		"unknown-in-oci": `{"spec": {"process": {"noNewPrivilege": true}}}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := policy.ReadInput(strings.NewReader(src)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := policy.ReadInput(strings.NewReader(`{"request": {"source": "run"}}`)); err != nil {
		t.Fatal(err)
	}
}

package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/policy"
)

// loadCached loads a policy with a decision cache in dir.
func loadCached(t *testing.T, spec, dir string, opts ...policy.Option) *policy.Engine {
	t.Helper()
	e, err := policy.Load(context.Background(), spec, append(opts, policy.WithDecisionCache(dir))...)
	if err != nil {
		t.Fatalf("load %s: %v", spec, err)
	}
	return e
}

func withHostname(h string) func(*policy.Input) {
	return func(in *policy.Input) {
		in.Spec.Hostname = h
		in.Spec.Linux.CgroupsPath = "/secrun/" + h
	}
}

func TestDecisionCacheHits(t *testing.T) {
	dir := t.TempDir()
	first := loadCached(t, "restricted", dir)
	d := eval(t, first, apply(fixture(t, "hardened.json"), withHostname("aaaa")))
	if !d.Allowed || d.Cached {
		t.Fatalf("first decision: allowed %v cached %v:%s", d.Allowed, d.Cached, dump(d))
	}
	// A new process (a new engine) with the same request for another
	// container: the per-container hostname and cgroup path differ, and the
	// built-in policy reads neither.
	second := loadCached(t, "restricted", dir)
	in := apply(fixture(t, "hardened.json"), withHostname("bbbb"))
	d = eval(t, second, in)
	if !d.Allowed || !d.Cached {
		t.Fatalf("same request again: allowed %v cached %v", d.Allowed, d.Cached)
	}
	if d.InputHash != policy.InputHash(in) || d.PolicyHash != second.Hash() {
		t.Errorf("a cached decision names input %s and policy %s, want %s and %s", d.InputHash, d.PolicyHash, policy.InputHash(in), second.Hash())
	}
	// Any other difference is a miss, evaluated.
	other := apply(fixture(t, "hardened.json"), withHostname("cccc"), func(in *policy.Input) { in.Spec.Process.Args = []string{"/bin/other"} })
	if d := eval(t, second, other); !d.Allowed || d.Cached {
		t.Fatalf("different args: allowed %v cached %v", d.Allowed, d.Cached)
	}
	// Another policy shares nothing with this one.
	if d := eval(t, loadCached(t, "baseline", dir), in); d.Cached {
		t.Fatal("baseline answered from restricted's decision")
	}
}

func TestDecisionCacheNeverCachesDenials(t *testing.T) {
	dir := t.TempDir()
	priv := func(in *policy.Input) { in.Request.Privileged = true }
	for i := range 2 {
		d := eval(t, loadCached(t, "restricted", dir), apply(fixture(t, "hardened.json"), priv))
		if d.Allowed || d.Cached || len(violationsOf(d, "privileged")) == 0 {
			t.Fatalf("run %d: a privileged request: allowed %v cached %v:%s", i, d.Allowed, d.Cached, dump(d))
		}
	}
}

// A policy that reads the hostname keeps it in the key: a decision for one
// hostname never answers for another.
func TestDecisionCacheKeepsFieldsThePolicyReads(t *testing.T) {
	for name, rule := range map[string]string{
		"by name":     `deny contains {"id": "host", "msg": "no"} if input.spec.hostname == "evil"`,
		"by variable": `deny contains {"id": "host", "msg": "no"} if { some k; k == "hostname"; input.spec[k] == "evil" }`,
		"whole input": `deny contains {"id": "host", "msg": "no"} if { walk(input, [p, v]); v == "evil" }`,
		"via a call":  `deny contains {"id": "host", "msg": "no"} if object.get(input.spec, "hostname", "") == "evil"`,
	} {
		t.Run(name, func(t *testing.T) {
			pol := writeFile(t, t.TempDir(), "p.rego", "package secrun\n\ndefault allow := false\n\nallow if count(deny) == 0\n\n"+rule+"\n")
			dir := t.TempDir()
			if d := eval(t, loadCached(t, pol, dir), apply(fixture(t, "hardened.json"), withHostname("good"))); !d.Allowed {
				t.Fatalf("good hostname denied:%s", dump(d))
			}
			d := eval(t, loadCached(t, pol, dir), apply(fixture(t, "hardened.json"), withHostname("evil")))
			if d.Allowed || d.Cached {
				t.Fatalf("the cache allowed a hostname the policy denies: allowed %v cached %v", d.Allowed, d.Cached)
			}
		})
	}
}

// A policy whose answer changes between calls is never cached.
func TestDecisionCacheNondeterministicPolicies(t *testing.T) {
	for name, rule := range map[string]string{
		"clock":  `allow if time.now_ns() > 0`,
		"random": `allow if rand.intn("x", 10) >= 0`,
	} {
		t.Run(name, func(t *testing.T) {
			pol := writeFile(t, t.TempDir(), "p.rego", "package secrun\n\ndefault allow := false\n\n"+rule+"\n")
			dir := t.TempDir()
			for i := range 2 {
				d := eval(t, loadCached(t, pol, dir), fixture(t, "hardened.json"))
				if !d.Allowed || d.Cached {
					t.Fatalf("run %d: allowed %v cached %v", i, d.Allowed, d.Cached)
				}
			}
		})
	}
}

// An exemption that expires ends the cached decisions that relied on it.
func TestDecisionCacheExemptionExpiry(t *testing.T) {
	dir := t.TempDir()
	exemptions := filepath.Join(testdata, "exemptions.yaml") // readonly-rootfs until 2030-01-01
	writable := func(in *policy.Input) { in.Spec.Root.Readonly = false }
	at := func(t0 time.Time) policy.Option { return policy.WithEvalTime(func() time.Time { return t0 }) }
	before := time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC)
	for i := range 2 {
		d := eval(t, loadCached(t, "restricted", dir, policy.WithExemptions(exemptions), at(before)), apply(fixture(t, "hardened.json"), writable))
		if !d.Allowed || d.Cached != (i == 1) || len(d.Exempted) != 1 {
			t.Fatalf("run %d before expiry: allowed %v cached %v exempted %v", i, d.Allowed, d.Cached, d.Exempted)
		}
	}
	after := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	d := eval(t, loadCached(t, "restricted", dir, policy.WithExemptions(exemptions), at(after)), apply(fixture(t, "hardened.json"), writable))
	if d.Allowed || d.Cached || len(violationsOf(d, "readonly-rootfs")) != 1 {
		t.Fatalf("after expiry: allowed %v cached %v:%s", d.Allowed, d.Cached, dump(d))
	}
}

// A damaged or foreign cache is a miss, never an allow.
func TestDecisionCacheDamaged(t *testing.T) {
	dir := t.TempDir()
	in := fixture(t, "hardened.json")
	eval(t, loadCached(t, "restricted", dir), in)
	var entries []string
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() && !strings.HasPrefix(de.Name(), "policy-") {
			entries = append(entries, p)
		}
		return nil
	})
	if len(entries) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(entries))
	}
	orig, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"truncated": string(orig[:len(orig)/2]),
		"denied":    strings.Replace(string(orig), `"allowed":true`, `"allowed":false`, 1),
		"other key": strings.Replace(string(orig), `"key":"`, `"key":"0`, 1),
		"expired":   strings.Replace(string(orig), `"until":"2`, `"until":"1`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if content == string(orig) {
				t.Fatal("the damage did not apply")
			}
			if err := os.WriteFile(entries[0], []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if d := eval(t, loadCached(t, "restricted", dir), in); d.Cached || !d.Allowed {
				t.Fatalf("damaged entry: allowed %v cached %v", d.Allowed, d.Cached)
			}
		})
	}
	// A damaged policy profile means compiling again, and still deciding.
	profiles, _ := filepath.Glob(filepath.Join(dir, "policy-*.json"))
	if len(profiles) != 1 {
		t.Fatalf("%d policy profiles, want 1", len(profiles))
	}
	if err := os.WriteFile(profiles[0], []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	priv := apply(fixture(t, "hardened.json"), func(in *policy.Input) { in.Request.Privileged = true })
	if d := eval(t, loadCached(t, "restricted", dir), priv); d.Allowed {
		t.Fatal("a damaged profile let a privileged request through")
	}
}

// A policy whose profile is cached is compiled only on a miss; a broken
// policy is never cached, so it is refused at load as before.
func TestDecisionCacheLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, t.TempDir(), "bad.rego", "package secrun\n\nallow if {\n")
	for range 2 {
		_, err := policy.Load(context.Background(), bad, policy.WithDecisionCache(dir))
		var de *policy.DeniedError
		if !errors.As(err, &de) {
			t.Fatalf("a policy that does not parse: %v", err)
		}
	}
}

func BenchmarkLoadAndEvalCached(b *testing.B) {
	dir := b.TempDir()
	in := fixture(b, "hardened.json")
	e, err := policy.Load(context.Background(), "restricted", policy.WithDecisionCache(dir))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Eval(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		e, err := policy.Load(context.Background(), "restricted", policy.WithDecisionCache(dir))
		if err != nil {
			b.Fatal(err)
		}
		d, err := e.Eval(context.Background(), in)
		if err != nil || !d.Cached {
			b.Fatalf("not cached: %v", err)
		}
	}
}

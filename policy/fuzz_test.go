package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secrun/secrun/policy"
)

// Input documents come from files users hand to `secrun policy eval`, and
// from bundles other engines write: decoding must never panic, and whatever
// decodes must evaluate to a decision that is never Allowed on error.
func FuzzReadInputEval(f *testing.F) {
	for _, name := range []string{"hardened.json", "docker-default.json", "runc-bundle.json"} {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"spec": null}`))
	f.Add([]byte(`{"spec": {"mounts": [{"type": "bind"}]}, "request": {"volumes": [{"type": "bind"}]}}`))
	f.Add([]byte(`{"spec": {"process": {"capabilities": {"bounding": [""]}}}}`))
	f.Add([]byte(`{"spec": {"annotations": {"nerdctl/ports": "[{\"HostPort\": \"x\"}]"}}}`))
	f.Add([]byte(`{"spec": {"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}}`))
	e := builtin(f, "restricted")
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := policy.ReadInput(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		d, err := e.Eval(context.Background(), in)
		if err != nil && d.Allowed {
			t.Fatal("allowed with an error")
		}
		if d.Allowed && (len(d.Violations) > 0 || d.Reason != "") {
			t.Fatalf("allowed with violations: %+v", d)
		}
		if !d.Allowed && d.Err() == nil {
			t.Fatal("denied without an error")
		}
		// Whatever restricted admits carries a verified signature and no
		// privileged request.
		if d.Allowed && (!in.Signature.Verified || in.Request.Privileged) {
			t.Fatalf("restricted admitted an unsigned or privileged input: %s", b)
		}
	})
}

// Exemption files are reviewed data, but typos and hostile edits must still
// be rejected cleanly.
func FuzzParsePolicyData(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(testdata, "exemptions.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("allowed_host_paths: [/srv]\n"))
	f.Add([]byte("exemptions: [{control: x, images: ['[']}]\n"))
	f.Add([]byte("exemptions: [{control: x, images: ['*'], expires: 2020-13-01}]\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("allowed_hooks: []\n"))
	f.Add([]byte("allowed_hooks: [{name: x, kinds: [prestart], path: /usr/bin/x, args: [x, '-v'], env: ['A=[0-9]+'], reason: r}]\n"))
	f.Add([]byte("allowed_hooks: [{name: x, kinds: [prestart], path: 'x)|(.*', args: [], reason: r}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pd, err := policy.ParsePolicyData(b)
		if err != nil {
			return
		}
		for _, e := range pd.Exemptions {
			if e.Control == "" || len(e.Images) == 0 {
				t.Fatalf("accepted an exemption without control or images: %+v", e)
			}
		}
		if pd.AllowedHostPaths != nil {
			for _, p := range *pd.AllowedHostPaths {
				if p == "/" || !strings.HasPrefix(p, "/") {
					t.Fatalf("accepted host path %q", p)
				}
			}
		}
		if pd.AllowedHooks != nil {
			for _, r := range *pd.AllowedHooks {
				if r.Name == "" || r.Reason == "" || len(r.Kinds) == 0 || r.Path == "" || r.Args == nil {
					t.Fatalf("accepted an incomplete hook rule: %+v", r)
				}
				for _, p := range append(append([]string{r.Path}, r.Args...), r.Env...) {
					if _, err := regexp.Compile(p); err != nil {
						t.Fatalf("accepted hook pattern %q: %v", p, err)
					}
				}
			}
		}
	})
}

package policy_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

// OCI hooks run on the host as the runtime's user, outside the container:
// every built-in policy denies them, except the exact shape of the hook
// dockerd adds for networking (data.allowed_hooks).
func TestHooks(t *testing.T) {
	setkey := func(edit func(h *specs.Hook)) specs.Hook {
		h := dockerSetkeyHook
		h.Args = slices.Clone(h.Args)
		edit(&h)
		return h
	}
	allowed := []struct {
		name string
		kind string
		hook specs.Hook
	}{
		{"docker's libnetwork-setkey hook", "prestart", dockerSetkeyHook},
		{"setkey under another dockerd pid and exec root", "prestart", setkey(func(h *specs.Hook) {
			h.Path = "/proc/1/exe"
			h.Args[1] = "-exec-root=/tmp/srdk-1234/exec"
		})},
		{"setkey with the trace context of newer dockerd", "prestart", setkey(func(h *specs.Hook) {
			h.Env = []string{"TRACEPARENT=00-5ebf70084575ef7986a74f21e4a018db-df514d71c49d34e1-01"}
		})},
	}
	denied := []struct {
		name  string
		kind  string
		hook  specs.Hook
		field string
	}{
		{"another command of a process's binary", "prestart", specs.Hook{Path: "/proc/1/exe", Args: []string{"something-else"}},
			"spec.hooks.prestart[0].path=/proc/1/exe"},
		{"another command with setkey's arguments", "prestart", setkey(func(h *specs.Hook) { h.Args[0] = "something-else" }),
			"spec.hooks.prestart[0].path=/proc/26856/exe"},
		{"a host binary", "prestart", evilHook, "spec.hooks.prestart[0].path=/usr/bin/evil"},
		{"a host binary, createRuntime", "createRuntime", evilHook, "spec.hooks.createRuntime[0].path=/usr/bin/evil"},
		{"a host binary, createContainer", "createContainer", evilHook, "spec.hooks.createContainer[0].path=/usr/bin/evil"},
		{"a host binary, startContainer", "startContainer", evilHook, "spec.hooks.startContainer[0].path=/usr/bin/evil"},
		{"a host binary, poststart", "poststart", evilHook, "spec.hooks.poststart[0].path=/usr/bin/evil"},
		{"a host binary, poststop", "poststop", evilHook, "spec.hooks.poststop[0].path=/usr/bin/evil"},
		{"setkey by dockerd's file path", "prestart", setkey(func(h *specs.Hook) { h.Path = "/usr/bin/dockerd" }),
			"spec.hooks.prestart[0].path=/usr/bin/dockerd"},
		{"setkey by another path", "prestart", setkey(func(h *specs.Hook) { h.Path = "/usr/bin/evil" }),
			"spec.hooks.prestart[0].path=/usr/bin/evil"},
		{"setkey through /proc/self", "prestart", setkey(func(h *specs.Hook) { h.Path = "/proc/self/exe" }),
			"spec.hooks.prestart[0].path=/proc/self/exe"},
		{"setkey through a process's root", "prestart", setkey(func(h *specs.Hook) { h.Path = "/proc/1/root/usr/bin/evil" }),
			"spec.hooks.prestart[0].path=/proc/1/root/usr/bin/evil"},
		{"setkey as createRuntime", "createRuntime", dockerSetkeyHook, "spec.hooks.createRuntime[0].path=/proc/26856/exe"},
		{"setkey with LD_PRELOAD", "prestart", setkey(func(h *specs.Hook) { h.Env = []string{"LD_PRELOAD=/tmp/evil.so"} }),
			"spec.hooks.prestart[0].path=/proc/26856/exe"},
		{"setkey with an extra argument", "prestart", setkey(func(h *specs.Hook) { h.Args = append(h.Args, "--evil") }),
			"spec.hooks.prestart[0].path=/proc/26856/exe"},
		{"setkey with a relative exec root", "prestart", setkey(func(h *specs.Hook) { h.Args[1] = "-exec-root=../../tmp" }),
			"spec.hooks.prestart[0].path=/proc/26856/exe"},
	}
	for _, name := range []string{"restricted", "baseline", "cis-docker"} {
		e := builtin(t, name)
		// The base input each policy admits: secrun run's for restricted and
		// cis-docker, Docker's bundle (without its hook) for baseline.
		base := func() *policy.Input {
			if name == "baseline" {
				in := fixture(t, "docker-default.json")
				in.Spec.Hooks = nil
				return in
			}
			return fixture(t, "hardened.json")
		}
		if d := eval(t, e, base()); !d.Allowed {
			t.Fatalf("%s denies its base input:%s", name, dump(d))
		}
		for _, c := range allowed {
			t.Run(name+"/allowed/"+c.name, func(t *testing.T) {
				d := eval(t, e, apply(base(), addHook(c.kind, c.hook)))
				if !d.Allowed {
					t.Fatalf("denied:%s", dump(d))
				}
			})
		}
		for _, c := range denied {
			t.Run(name+"/denied/"+c.name, func(t *testing.T) {
				d := eval(t, e, apply(base(), addHook("prestart", dockerSetkeyHook), addHook(c.kind, c.hook)))
				if d.Allowed {
					t.Fatal("allowed")
				}
				if got := ids(d); !slices.Equal(got, []string{"hooks"}) {
					t.Fatalf("violations %v, want only hooks:%s", got, dump(d))
				}
				vs := violationsOf(d, "hooks")
				field, index := c.field, "0"
				if c.kind == "prestart" {
					// Docker's own hook is prestart[0] and allowed.
					field, index = strings.Replace(field, "prestart[0]", "prestart[1]", 1), "1"
				}
				if len(vs) != 1 || vs[0].Field != field {
					t.Fatalf("want one hooks violation on %s:%s", field, dump(d))
				}
				v := vs[0]
				for _, want := range []string{"OCI " + c.kind + " hook " + index + " runs " + c.hook.Path, "on the host"} {
					if !strings.Contains(v.Msg, want) {
						t.Errorf("message %q lacks %q", v.Msg, want)
					}
				}
				if v.Severity != "critical" || v.Fix == "" {
					t.Errorf("violation %+v: want severity critical and a fix", v)
				}
			})
		}
	}
}

// Engines' real bundles: Docker's hook is admitted where the rest of the
// bundle is.
func TestHooksDockerBundle(t *testing.T) {
	in := fixture(t, "docker-default.json")
	if in.Spec.Hooks == nil || len(in.Spec.Hooks.Prestart) != 1 || in.Spec.Hooks.Prestart[0].Args[0] != "libnetwork-setkey" { //nolint:staticcheck // Docker's hook kind
		t.Fatalf("docker-default.json lacks Docker's setkey hook: %+v", in.Spec.Hooks)
	}
	if d := eval(t, builtin(t, "baseline"), in); !d.Allowed {
		t.Fatalf("baseline denies Docker's default bundle:%s", dump(d))
	}
}

// allowed_hooks is data: an exemptions file replaces the default list.
func TestAllowedHooksData(t *testing.T) {
	ctx := context.Background()
	nvidia := specs.Hook{Path: "/usr/bin/nvidia-container-runtime-hook", Args: []string{"nvidia-container-runtime-hook", "prestart"}}
	withBoth := func() *policy.Input {
		return apply(fixture(t, "hardened.json"), addHook("prestart", nvidia), addHook("prestart", dockerSetkeyHook))
	}
	cases := []struct {
		name, data string
		want       []string // fields of hooks violations
	}{
		{"default", "", []string{"spec.hooks.prestart[0].path=/usr/bin/nvidia-container-runtime-hook"}},
		{"empty list: no hook at all", "allowed_hooks: []\n",
			[]string{"spec.hooks.prestart[0].path=/usr/bin/nvidia-container-runtime-hook", "spec.hooks.prestart[1].path=/proc/26856/exe"}},
		{"a rule replaces the default", `allowed_hooks:
  - name: nvidia
    kinds: [prestart]
    path: /usr/bin/nvidia-container-runtime-hook
    args: [nvidia-container-runtime-hook, prestart]
    reason: GPU containers on this host (TICKET-7)
`, []string{"spec.hooks.prestart[1].path=/proc/26856/exe"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := builtin(t, "restricted")
			if c.data != "" {
				var err error
				e, err = policy.Load(ctx, "restricted", policy.WithExemptions(writeFile(t, t.TempDir(), "data.yaml", c.data)))
				if err != nil {
					t.Fatal(err)
				}
				if e.Hash() == builtin(t, "restricted").Hash() {
					t.Error("allowed_hooks does not change the policy hash")
				}
			}
			d := eval(t, e, withBoth())
			var got []string
			for _, v := range violationsOf(d, "hooks") {
				got = append(got, v.Field)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) || d.Allowed != (len(c.want) == 0) {
				t.Fatalf("hooks violations %v, want %v:%s", got, c.want, dump(d))
			}
		})
	}
}

func TestAllowedHooksRejected(t *testing.T) {
	rule := func(fields string) string {
		return "allowed_hooks:\n  - name: x\n    reason: test\n" + fields
	}
	cases := map[string]string{
		"unknown kind":       rule("    kinds: [prestop]\n    path: /x\n    args: []\n"),
		"no kinds":           rule("    path: /x\n    args: []\n"),
		"no path":            rule("    kinds: [prestart]\n    args: []\n"),
		"no args":            rule("    kinds: [prestart]\n    path: /x\n"),
		"bad path pattern":   rule("    kinds: [prestart]\n    path: '/x['\n    args: []\n"),
		"escaping anchors":   rule("    kinds: [prestart]\n    path: '/x)|(.*'\n    args: []\n"),
		"bad arg pattern":    rule("    kinds: [prestart]\n    path: /x\n    args: ['a(']\n"),
		"empty arg pattern":  rule("    kinds: [prestart]\n    path: /x\n    args: ['']\n"),
		"bad env pattern":    rule("    kinds: [prestart]\n    path: /x\n    args: []\n    env: ['*']\n"),
		"unknown field":      rule("    kinds: [prestart]\n    path: /x\n    args: []\n    paths: [/y]\n"),
		"no reason":          "allowed_hooks:\n  - name: x\n    kinds: [prestart]\n    path: /x\n    args: []\n",
		"no name":            "allowed_hooks:\n  - reason: test\n    kinds: [prestart]\n    path: /x\n    args: []\n",
		"not a list":         "allowed_hooks: {name: x}\n",
		"typo in the key":    "allowed_hook: []\n",
		"kind in wrong case": rule("    kinds: [PreStart]\n    path: /x\n    args: []\n"),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "data.yaml", content)
			if _, err := policy.Load(context.Background(), "restricted", policy.WithExemptions(p)); err == nil {
				t.Fatal("accepted")
			} else if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
	// The same checks hold for a policy directory's own data.
	dir := t.TempDir()
	writeFile(t, dir, "policy.rego", "package secrun\n\nallow := true\n")
	writeFile(t, dir, "data.yaml", rule("    kinds: [prestart]\n    path: '/x)|(.*'\n    args: []\n"))
	if _, err := policy.Load(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "allowed_hooks[0]") {
		t.Fatalf("policy directory with a bad allowed_hooks: %v", err)
	}
}

// The policy data example in docs/policy-input.md loads, and its copy of
// Docker's entry still admits Docker's hook.
func TestDocumentedPolicyData(t *testing.T) {
	b, err := os.ReadFile("../docs/policy-input.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### Exemptions, allowed host paths and allowed hooks are data")
	if !ok {
		t.Fatal("no data section in docs/policy-input.md")
	}
	_, after, ok = strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("no yaml example in the data section")
	}
	example, _, ok := strings.Cut(after, "```")
	if !ok || !strings.Contains(example, "allowed_hooks:") {
		t.Fatalf("the data example is not closed or shows no allowed_hooks:\n%s", example)
	}
	e, err := policy.Load(context.Background(), "restricted", policy.WithExemptions(writeFile(t, t.TempDir(), "data.yaml", example)))
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	trace := dockerSetkeyHook
	trace.Env = []string{"TRACEPARENT=00-5ebf70084575ef7986a74f21e4a018db-df514d71c49d34e1-01"}
	in := apply(fixture(t, "hardened.json"), addHook("prestart", dockerSetkeyHook), addHook("prestart", trace))
	if d := eval(t, e, in); !d.Allowed {
		t.Fatalf("the documented data denies Docker's hook:%s", dump(d))
	}
}

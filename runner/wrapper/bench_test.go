package wrapper_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner/wrapper"
)

// BenchmarkAdmitCreate is one create decision in-process (everything
// secrun-runc does for a create but starting the process and exec'ing
// runc): config, policy compile, bundle, evaluation, two durable audit
// records. Docker's spec, baseline policy.
func BenchmarkAdmitCreate(b *testing.B) {
	for _, tc := range []struct{ name, spec, config string }{
		{"docker-spec", "docker-default", "policy: baseline\n"},
		{"ctr-spec-hardened", "ctr-default", "policy: baseline\nhardening:\n  seccomp: default\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, tc.config)
			orig := specFixture(b, tc.spec, nil)
			for b.Loop() {
				e.writeSpec(orig)
				if code := e.run("create", "--bundle", e.bundle, "x"); code != 0 {
					b.Fatalf("exit %d: %s", code, e.stderr.String())
				}
			}
		})
	}
}

// BenchmarkDecisionPreparedPolicy is the same decision with the policy
// compiled once, as a resident process would hold it: bundle, hardening,
// input, evaluation, two durable audit records. The difference to
// BenchmarkAdmitCreate is what compiling the policy per process costs.
func BenchmarkDecisionPreparedPolicy(b *testing.B) {
	ctx := context.Background()
	eng, err := policy.Load(ctx, "baseline")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	trail, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer trail.Close()
	orig := specFixture(b, "docker-default", nil)
	writeFile(b, filepath.Join(dir, "config.json"), string(orig), 0o600)
	for b.Loop() {
		bnd, err := wrapper.ReadBundle(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := bnd.Harden(wrapper.Hardening{Seccomp: "default"}); err != nil {
			b.Fatal(err)
		}
		in := &policy.Input{Request: policy.RequestFromSpec(bnd.OrigSpec, "runtime"), Spec: bnd.Spec,
			Signature: policy.SignatureInfo{Signers: []string{}, Error: policy.NoImageIdentity}, Host: fixedHost}
		d, err := eng.Eval(ctx, in)
		if err != nil || !d.Allowed {
			b.Fatalf("%v %+v", err, d)
		}
		for _, k := range []string{audit.KindPolicyDecision, audit.KindRuntimeInvoked} {
			if _, err := trail.Append(ctx, audit.Event{Kind: k, Outcome: audit.OutcomeSuccess, Container: audit.Container{ID: "x"}}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

package policy_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/secrun/secrun/policy"
)

// reportPercentiles adds the median and 99th percentile of per-iteration
// times: the figure that matters per container is the typical one, and
// `go test -bench` reports only the mean.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "p50-ns/op")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns/op")
}

// BenchmarkEval is the runner's pattern: the policy is compiled once per
// process, each container is one Eval over the full hardened input (a real
// OCI spec with a 300-syscall seccomp profile).
func BenchmarkEval(b *testing.B) {
	for _, name := range []string{"restricted", "baseline", "cis-docker"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			e := builtin(b, name)
			in := fixture(b, "hardened.json")
			if d := eval(b, e, in); !d.Allowed {
				b.Fatalf("denied:%s", dump(d))
			}
			ds := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				d, err := e.Eval(ctx, in)
				ds = append(ds, time.Since(t0))
				if err != nil || !d.Allowed {
					b.Fatal(err)
				}
			}
			reportPercentiles(b, ds)
		})
	}
}

// BenchmarkEvalDenied evaluates an input that breaks many controls, so every
// violation is built and formatted.
func BenchmarkEvalDenied(b *testing.B) {
	ctx := context.Background()
	e := builtin(b, "restricted")
	in := fixture(b, "docker-default.json")
	ds := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		d, err := e.Eval(ctx, in)
		ds = append(ds, time.Since(t0))
		if err != nil || d.Allowed {
			b.Fatal(err)
		}
	}
	reportPercentiles(b, ds)
}

// BenchmarkCompilePerRequest is the pattern to avoid: parse, compile and
// prepare the policy for every container. The ratio to BenchmarkEval is the
// reason Engine exists.
func BenchmarkCompilePerRequest(b *testing.B) {
	ctx := context.Background()
	in := fixture(b, "hardened.json")
	ds := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		e, err := policy.Load(ctx, "restricted")
		if err != nil {
			b.Fatal(err)
		}
		d, err := e.Eval(ctx, in)
		ds = append(ds, time.Since(t0))
		if err != nil || !d.Allowed {
			b.Fatal(err)
		}
	}
	reportPercentiles(b, ds)
}

package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
)

// fleetSize is the fleet the speed target is stated for: 200 running
// containers audited in under 2 seconds.
const fleetSize = 200

// startFleet starts n hardened runc containers, four at a time.
func startFleet(tb testing.TB, n int) *runcEnv {
	tb.Helper()
	e := newRuncEnv(tb)
	t0 := time.Now()
	errs := make(chan error, n)
	fleetParallelDo(n, func(i int) {
		id := fmt.Sprintf("bulk-%03d", i)
		if _, err := e.startIn(e.root, filepath.Join(e.dir, "bundles", id), id, e.hardenedSpec(id)); err != nil {
			errs <- err
		}
	})
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	tb.Logf("started %d runc containers in %s", n, time.Since(t0).Round(time.Millisecond))
	return e
}

// TestFleet200 audits 200 running containers and reports the time; the
// target (under 2 s on the CI machine) is watched through the log and
// BenchmarkAuditFleet, never asserted, since CI machines are shared.
func TestFleet200(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 200 containers")
	}
	e := startFleet(t, fleetSize)
	cis := fleetLoadCIS(t)
	opts := audit.FleetOptions{Discover: audit.DiscoverOptions{RuncRoots: []string{e.root}}, Host: noLSMHost}
	t0 := time.Now()
	rep, err := audit.AuditFleet(context.Background(), nil, cis, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	t.Logf("audited %d containers in %s (%s per container): %s", len(rep.Containers), d.Round(time.Millisecond),
		(d / time.Duration(max(1, len(rep.Containers)))).Round(time.Microsecond), rep.Summary())
	if len(rep.Containers) != fleetSize {
		t.Fatalf("found %d containers, want %d", len(rep.Containers), fleetSize)
	}
	for _, c := range rep.Containers {
		if len(c.Findings) != 0 || c.Effective == nil {
			t.Errorf("%s: findings %v, effective %v; want a clean hardened container", c.ID, c.Findings, c.Effective != nil)
		}
	}
}

// BenchmarkAuditFleet measures one audit of 200 running containers with
// the cis-docker library prepared once; ns/container is the per-container
// cost. Discover and Effective are the parts without policy evaluation.
func BenchmarkAuditFleet(b *testing.B) {
	e := startFleet(b, fleetSize)
	cis := fleetLoadCIS(b)
	opts := audit.FleetOptions{Discover: audit.DiscoverOptions{RuncRoots: []string{e.root}}, Host: noLSMHost}
	ctx := context.Background()
	b.Run("audit", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.AuditFleet(ctx, nil, cis, opts)
			if err != nil || len(rep.Containers) != fleetSize {
				b.Fatalf("%d containers, %v", len(rep.Containers), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fleetSize), "ns/container")
	})
	restricted, err := policy.Load(ctx, "restricted")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("audit+restricted", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.AuditFleet(ctx, restricted, cis, opts)
			if err != nil || len(rep.Containers) != fleetSize {
				b.Fatalf("%d containers, %v", len(rep.Containers), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fleetSize), "ns/container")
	})
	b.Run("discover", func(b *testing.B) {
		for b.Loop() {
			cs, err := audit.Discover(ctx, opts.Discover)
			if err != nil || len(cs) != fleetSize {
				b.Fatalf("%d containers, %v", len(cs), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fleetSize), "ns/container")
	})
	cs, err := audit.Discover(ctx, opts.Discover)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("effective", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := audit.Effective(cs[i%len(cs)].Pid); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

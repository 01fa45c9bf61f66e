package policy_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/policy"
)

// timer records per-iteration wall time and on-CPU time of the benchmark's
// thread. The machine is shared: wall time includes waiting for a CPU, so
// the CPU-time median is the figure to compare; `go test -bench` reports
// only the wall-clock mean.
type timer struct {
	wall, cpu []time.Duration
	w0, c0    time.Time
}

func newTimer(b *testing.B) *timer {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return &timer{}
}

func threadCPU() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Unix(ts.Unix())
}

func (t *timer) start() { t.w0, t.c0 = time.Now(), threadCPU() }

func (t *timer) stop() {
	t.cpu = append(t.cpu, threadCPU().Sub(t.c0))
	t.wall = append(t.wall, time.Since(t.w0))
}

func (t *timer) report(b *testing.B) {
	if len(t.wall) == 0 {
		return
	}
	slices.Sort(t.wall)
	slices.Sort(t.cpu)
	b.ReportMetric(float64(t.wall[len(t.wall)/2].Nanoseconds()), "p50-wall-ns/op")
	b.ReportMetric(float64(t.cpu[len(t.cpu)/2].Nanoseconds()), "p50-cpu-ns/op")
	b.ReportMetric(float64(t.cpu[len(t.cpu)*99/100].Nanoseconds()), "p99-cpu-ns/op")
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
			tm := newTimer(b)
			b.ReportAllocs()
			for b.Loop() {
				tm.start()
				d, err := e.Eval(ctx, in)
				tm.stop()
				if err != nil || !d.Allowed {
					b.Fatal(err)
				}
			}
			tm.report(b)
		})
	}
}

// BenchmarkEvalDenied evaluates an input that breaks many controls, so every
// violation is built and formatted.
func BenchmarkEvalDenied(b *testing.B) {
	ctx := context.Background()
	e := builtin(b, "restricted")
	in := fixture(b, "docker-default.json")
	tm := newTimer(b)
	for b.Loop() {
		tm.start()
		d, err := e.Eval(ctx, in)
		tm.stop()
		if err != nil || d.Allowed {
			b.Fatal(err)
		}
	}
	tm.report(b)
}

// BenchmarkCompilePerRequest is the pattern to avoid: parse, compile and
// prepare the policy for every container. The ratio to BenchmarkEval is the
// reason Engine exists.
func BenchmarkCompilePerRequest(b *testing.B) {
	ctx := context.Background()
	in := fixture(b, "hardened.json")
	tm := newTimer(b)
	b.ReportAllocs()
	for b.Loop() {
		tm.start()
		e, err := policy.Load(ctx, "restricted")
		if err != nil {
			b.Fatal(err)
		}
		d, err := e.Eval(ctx, in)
		tm.stop()
		if err != nil || !d.Allowed {
			b.Fatal(err)
		}
	}
	tm.report(b)
}

package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/runner/wrapper"
)

// BenchmarkCreateVsRunc measures what secrun-runc adds to `create`: each
// iteration runs `runc create` and `secrun-runc create` of the same bundle
// (alternating which goes first, deleting both), so machine noise hits both
// alike. Reported: the medians of each and the median of the per-iteration
// difference, in wall time and in CPU time (the target is under 10 ms).
//
//   - engine-seccomp: the bundle carries a seccomp profile, as Docker's and
//     podman's do; secrun-runc evaluates and records, and writes nothing.
//   - hardened-by-wrapper: no profile, as ctr's; secrun-runc adds the default
//     one and rewrites config.json.
//   - state: a pass-through command, for the cost of starting secrun-runc.
//
// The resident- variants have `secrun-runc-admit serve` running, so the
// policy is compiled once and no admit process starts per call; the others
// have none, and each call execs secrun-runc-admit, which compiles it.
func BenchmarkCreateVsRunc(b *testing.B) {
	testenv.RequireRoot(b)
	bin, _ := binaries(b)
	runc := testenv.Runc(b)
	for _, mode := range []string{"engine-seccomp", "hardened-by-wrapper", "resident-engine-seccomp", "resident-hardened-by-wrapper", "state"} {
		b.Run(mode, func(b *testing.B) {
			dir := shortTempDir(b, "srbn-")
			s := newSite(b, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
			if strings.HasPrefix(mode, "resident-") {
				s.socket, _ = startResident(b, bin, dir)
			}
			bnd := bundle(b, dir, []string{"sleep", "60"}, func(sp *specs.Spec) {
				if !strings.HasSuffix(mode, "hardened-by-wrapper") {
					sc, err := wrapper.DefaultSeccomp(sp.Process.Capabilities.Bounding)
					if err != nil {
						b.Fatal(err)
					}
					sp.Linux.Seccomp = sc
				}
			})
			orig, err := os.ReadFile(filepath.Join(bnd, "config.json"))
			if err != nil {
				b.Fatal(err)
			}
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			root := filepath.Join(dir, "runc")
			ctx := context.Background()
			// do returns the wall time and the CPU time (user+system, of the
			// process: secrun-runc and the runc that replaces it) of a call.
			// The machine is shared: CPU time is the steadier figure.
			do := func(path string, args ...string) (time.Duration, time.Duration) {
				cmd := exec.CommandContext(ctx, path, append([]string{"--root", root}, args...)...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SECRUN_RUNTIME_CONFIG=" + s.config, "SECRUN_ADMIT_SOCKET=" + s.socket}
				cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s %v: %v", filepath.Base(path), args, err)
				}
				return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			if mode == "state" {
				do(runc, "create", "--bundle", bnd, "st")
				b.Cleanup(func() { exec.Command(runc, "--root", root, "delete", "--force", "st").Run() })
			}
			one := func(path, id string) (time.Duration, time.Duration) {
				if mode == "state" {
					return do(path, "state", "st")
				}
				// Every create starts from the engine's spec.
				if err := os.WriteFile(filepath.Join(bnd, "config.json"), orig, 0o644); err != nil {
					b.Fatal(err)
				}
				w, c := do(path, "create", "--bundle", bnd, id)
				do(runc, "delete", "--force", id)
				return w, c
			}
			// Warm the page cache for both binaries and the policy.
			one(runc, "warm-r")
			one(bin, "warm-s")
			var tr, ts, diff, cdiff []time.Duration
			i := 0
			for b.Loop() {
				var r, w, rc, wc time.Duration
				if i%2 == 0 {
					r, rc = one(runc, fmt.Sprintf("r%d", i))
					w, wc = one(bin, fmt.Sprintf("s%d", i))
				} else {
					w, wc = one(bin, fmt.Sprintf("s%d", i))
					r, rc = one(runc, fmt.Sprintf("r%d", i))
				}
				tr, ts, diff, cdiff = append(tr, r), append(ts, w), append(diff, w-r), append(cdiff, wc-rc)
				i++
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(median(tr)), "runc-ms")
			b.ReportMetric(ms(median(ts)), "secrun-runc-ms")
			b.ReportMetric(ms(median(diff)), "added-ms")
			b.ReportMetric(ms(median(cdiff)), "added-cpu-ms")
			b.ReportMetric(float64(median(ts))/float64(median(tr)), "ratio")
			if mode != "state" {
				n, resident := 0, 0
				for _, r := range find(s.records(b), "policy.decision", "allowed", "") {
					n++
					if r.Fields["runtime.decider"] != nil {
						resident++
					}
				}
				if n < i {
					b.Fatalf("%d allowed decisions for %d creates", n, i)
				}
				if strings.HasPrefix(mode, "resident-") != (resident == n) || (resident != 0 && resident != n) {
					b.Fatalf("%d of %d decisions by the resident server in mode %s", resident, n, mode)
				}
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

package runner_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/profiles"
)

// BenchmarkRunVsRunc compares `secrun run` (the whole pipeline: a new
// process, image lookup, signature verdict, spec, policy, audit records,
// idmapped rootfs, runc) with bare `runc run` of an equivalent bundle (the
// same hardened config.json over the same rootfs), alternating the two in
// one run so that machine noise hits both alike. It reports the median of
// each and their ratio; the target is secrun/runc <= 1.15 with warm caches.
func BenchmarkRunVsRunc(b *testing.B) {
	testenv.RequireRoot(b)
	runc := testenv.Runc(b)
	secrun := testenv.SecrunBinary(b)
	root := testenv.StateDir(b)
	layout := filepath.Join(b.TempDir(), "layout")
	imagetest.WriteOCILayout(b, layout, imagetest.BusyboxImage(b), "bench")
	ref := "oci:" + layout + ":bench"
	// The policy to run under: baseline by default; SECRUN_BENCH_POLICY
	// names another (a built-in name or a .rego path).
	pol := os.Getenv("SECRUN_BENCH_POLICY")
	if pol == "" {
		pol = "baseline"
	}
	// The image is signed and its signature checked on every run, as under
	// a trust configuration (the verdict is cached after the first).
	keys := b.TempDir()
	cli := func(args ...string) {
		cmd := exec.Command(secrun, append([]string{"--root", root}, args...)...)
		cmd.Dir = keys
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=bench")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("secrun %v: %v\n%s", args, err, out)
		}
	}
	cli("image", "import", ref)
	cli("generate-key-pair")
	cli("sign", "--key", filepath.Join(keys, "cosign.key"), ref)
	trust := filepath.Join(keys, "trust.yaml")
	if err := os.WriteFile(trust, []byte("rules:\n- images: [\"oci:**\"]\n  keys: ["+filepath.Join(keys, "cosign.pub")+"]\n  insecureIgnoreTlog: true\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	secrunCmd := func() *exec.Cmd {
		return exec.Command(secrun, "--root", root, "--runtime", runc, "--policy", pol, "--trust", trust, "run", "--rm", ref, "true")
	}
	// Warm the caches: import, unpack, verdict.
	if out, err := secrunCmd().CombinedOutput(); err != nil {
		b.Fatalf("warm-up: %v\n%s", err, out)
	}
	if trail, err := os.ReadFile(filepath.Join(root, "audit", "audit.log")); err != nil || !strings.Contains(string(trail), `"signature.verified":true`) {
		b.Fatalf("the warm-up run did not verify the image's signature (%v)", err)
	}
	// The equivalent bundle: a detached secrun container's spec and
	// rootfs, with the command swapped for `true`.
	out, err := exec.Command(secrun, "--root", root, "--runtime", runc, "--policy", pol, "--trust", trust, "run", "-d", ref, "sleep", "600").CombinedOutput()
	if err != nil {
		b.Fatalf("detached: %v\n%s", err, out)
	}
	id := string(out[:64])
	b.Cleanup(func() {
		exec.Command(secrun, "--root", root, "--runtime", runc, "rm", "-f", id).Run()
	})
	bundle := b.TempDir()
	data, err := os.ReadFile(filepath.Join(root, "containers", id, "bundle", "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		b.Fatal(err)
	}
	// runc loads the same seccomp filter that secrun-init loads for
	// secrun: the equivalent of secrun's container, as runc alone runs it.
	if err := profiles.DeclaredSeccomp(&spec); err != nil {
		b.Fatal(err)
	}
	delete(spec.Annotations, profiles.AnnotationInitSeccomp)
	spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool {
		return m.Destination == profiles.LandlockInitPath || m.Destination == profiles.InitSeccompPath
	})
	if spec.Linux.Seccomp == nil {
		b.Fatal("the container has no seccomp filter")
	}
	spec.Root.Path = filepath.Join(root, "containers", id, "bundle", "rootfs")
	spec.Process.Args = []string{"true"}
	spec.Linux.CgroupsPath = "/secrun-bench/runc"
	data, _ = json.Marshal(&spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(bundle, 0o711); err != nil {
		b.Fatal(err)
	}
	runcRoot := b.TempDir()
	var secrunT, runcT []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if out, err := exec.Command(runc, "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("bench-%d", i)).CombinedOutput(); err != nil {
			b.Fatalf("runc run: %v\n%s", err, out)
		}
		runcT = append(runcT, time.Since(start))
		start = time.Now()
		if out, err := secrunCmd().CombinedOutput(); err != nil {
			b.Fatalf("secrun run: %v\n%s", err, out)
		}
		secrunT = append(secrunT, time.Since(start))
	}
	b.StopTimer()
	s, r := median(secrunT), median(runcT)
	b.ReportMetric(float64(s.Microseconds())/1000, "secrun-ms")
	b.ReportMetric(float64(r.Microseconds())/1000, "runc-ms")
	b.ReportMetric(float64(s)/float64(r), "ratio")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

package verify_test

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/verify"
)

// Fixture keys in testdata/verify/keys, made with `cosign generate-key-pair`.
const fixturePassword = "secrun-test"

func fixture(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", "verify", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s: %v", rel, err)
	}
	return p
}

func staticPass(pw string) verify.PassFunc {
	return func(bool) ([]byte, error) { return []byte(pw), nil }
}

// testImage is a small image whose digest depends on content.
func testImage(t testing.TB, content string) v1.Image {
	t.Helper()
	layer, err := imagetest.LayerTar([]imagetest.Entry{
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/content", Type: tar.TypeReg, Mode: 0o644, Body: []byte(content)},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Image(v1.Config{Cmd: []string{"/bin/true"}}, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func openStore(t testing.TB) *image.Store {
	t.Helper()
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// importLayout writes img into a fresh OCI layout under tag and imports it
// into s, returning the stored image and the reference used.
func importLayout(t testing.TB, s *image.Store, img v1.Image, tag string) (*image.Image, string) {
	t.Helper()
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, img, tag)
	ref := "oci:" + dir + ":" + tag
	got, err := s.Import(context.Background(), ref, image.ImportOptions{})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	return got, ref
}

// trustFile writes a trust config into a temp dir next to copies of the
// fixture public keys (alice.pub, bob.pub) and loads it.
func trustFile(t testing.TB, yaml string) *verify.Trust {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"alice.pub", "bob.pub"} {
		b, err := os.ReadFile(fixture(t, "keys/"+k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := verify.LoadTrust(p)
	if err != nil {
		t.Fatalf("load trust: %v", err)
	}
	return tr
}

// aliceTrust trusts alice for every image.
func aliceTrust(t testing.TB) *verify.Trust {
	return trustFile(t, "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n")
}

func mustVerify(t testing.TB, v verify.Verifier, s verify.Subject) verify.Verdict {
	t.Helper()
	got, err := v.Verify(context.Background(), s)
	if err != nil {
		t.Fatalf("verify %s: %v", s.Ref, err)
	}
	if got.Verified == (got.Error != "") {
		t.Fatalf("verdict inconsistent: verified=%v error=%q", got.Verified, got.Error)
	}
	return got
}

func wantDenied(t testing.TB, got verify.Verdict, reason string) {
	t.Helper()
	t.Logf("denied: %s", got.Error)
	if got.Verified {
		t.Fatalf("verified, want denied with %q (signers %v)", reason, got.Signers)
	}
	if !strings.Contains(got.Error, reason) {
		t.Fatalf("denied with %q, want it to mention %q", got.Error, reason)
	}
}

// cosignBinary finds the real cosign CLI: $SECRUN_COSIGN or bin/cosign at the
// module root.
func cosignBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SECRUN_COSIGN"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "bin", "cosign"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("cosign CLI not found (set SECRUN_COSIGN or run: GOBIN=$PWD/bin go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5): %v", err)
	}
	return p
}

// runCosign runs the cosign CLI offline: a private HOME and TUF root, and no
// proxy, so nothing is fetched.
func runCosign(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(cosignBinary(t), args...)
	cmd.Dir = home
	cmd.Env = append([]string{
		"HOME=" + home,
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"PATH=" + os.Getenv("PATH"),
		"SIGSTORE_NO_CACHE=true",
		"NO_COLOR=1",
	}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// layoutWithSignature writes sig into a fresh OCI layout under the cosign
// name of d and returns a LayoutSignatures source reading it.
func layoutWithSignature(t testing.TB, d v1.Hash, sig v1.Image) verify.SignatureSource {
	t.Helper()
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, sig, verify.SignatureTag(d))
	return verify.LayoutSignatures(dir)
}

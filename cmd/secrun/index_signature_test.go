//go:build !secrun_noengine

// The test signs with the verify package's cosign code, which the light
// (secrun_noengine) build leaves out.

package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/verify"
)

// A multi-platform image signed the way `cosign sign` signs a
// multi-platform tag, at its index digest only, runs under the restricted
// policy (which requires a verified signature); the same index unsigned is
// denied. The trail names the index whose signature counted.
func TestRunImageSignedAtItsIndex(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	noPassword := func(bool) ([]byte, error) { return []byte{}, nil }
	if err := verify.GenerateKeyPair(dir, noPassword); err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(trust, []byte("rules:\n- images: [\"oci:**\"]\n  keys: [cosign.pub]\n  insecureIgnoreTlog: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A signature is the digest's wherever it was found, and a verdict for
	// an image is cached: the unsigned index holds another amd64 image (the
	// probe with an annotation added).
	multi := func(amd v1.Image) (v1.ImageIndex, v1.Hash) {
		t.Helper()
		arm, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
			mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		)
		ih, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return idx, ih
	}
	writeLayout := func(idx v1.ImageIndex, ih v1.Hash, signed bool) string {
		t.Helper()
		d := t.TempDir()
		p, err := layout.Write(d, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{image.AnnotationRefName: "multi"})); err != nil {
			t.Fatal(err)
		}
		if signed {
			sig, err := verify.Sign(context.Background(), filepath.Join(dir, verify.PrivateKeyFile), noPassword, ih, "oci:"+d+":multi")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(sig, layout.WithAnnotations(map[string]string{image.AnnotationRefName: verify.SignatureTag(ih)})); err != nil {
				t.Fatal(err)
			}
		}
		return "oci:" + d + ":multi"
	}

	idx, ih := multi(testenv.ProbeImage(t))
	signed := writeLayout(idx, ih, true)
	if code, stdout, stderr := c.run("--trust", trust, "run", "--rm", "-u", "1000", signed, "echo", "ran"); code != 0 || !strings.Contains(stdout, "ran") {
		t.Fatalf("image signed at its index: exit %d\n%s%s", code, stdout, stderr)
	}
	trail, err := os.ReadFile(filepath.Join(c.root, "audit", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(trail), `"signature.index":"`+ih.String()+`"`) {
		t.Errorf("the trail does not name the signed index %s", ih)
	}
	code, stdout, stderr := c.run("verify", "--key", filepath.Join(dir, "cosign.pub"), signed)
	if code != 0 || !strings.Contains(stdout, "(a signature on its image index "+ih.String()+")") {
		t.Errorf("secrun verify: exit %d\n%s%s", code, stdout, stderr)
	}

	uidx, uh := multi(mutate.Annotations(testenv.ProbeImage(t), map[string]string{"org.example.copy": "unsigned"}).(v1.Image))
	unsigned := writeLayout(uidx, uh, false)
	code, _, stderr = c.run("--trust", trust, "run", "--rm", "-u", "1000", unsigned, "echo", "ran")
	if code != 126 || !strings.Contains(stderr, "signed-image") || !strings.Contains(stderr, "and for the image index it was selected from") {
		t.Errorf("unsigned index: exit %d, want 126 naming the signature and the index\n%s", code, stderr)
	}
}

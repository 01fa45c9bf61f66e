package verify_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/verify"
)

// importMulti imports the linux/amd64 image of a two-platform index from an
// OCI layout, as `cosign sign` of a multi-platform tag leaves it: signed at
// the index digest only.
func importMulti(t *testing.T, s *image.Store, content string) (img *image.Image, ref string, idx v1.ImageIndex) {
	t.Helper()
	amd, arm := testImage(t, content+" amd64"), testImage(t, content+" arm64")
	idx = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{image.AnnotationRefName: "multi"})); err != nil {
		t.Fatal(err)
	}
	ref = "oci:" + dir + ":multi"
	img, err = s.Import(context.Background(), ref, image.ImportOptions{Platform: "linux/amd64"})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	if img.Digest != digestOf(t, amd) {
		t.Fatalf("imported %s, want the amd64 manifest %s", img.Digest, digestOf(t, amd))
	}
	return img, ref, idx
}

func indexDigest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A signature on the image index covers the platform image selected from
// it, once the index is shown to list that image; nothing else does.
func TestIndexSignatureCoversItsImages(t *testing.T) {
	s := openStore(t)
	img, ref, idx := importMulti(t, s, "multi")
	ih := indexDigest(t, idx)
	sign(t, s, "keys/alice.key", ih, ref)
	tr := aliceTrust(t)

	subject, err := verify.StoredSubject(s, img)
	if err != nil {
		t.Fatal(err)
	}
	if subject.Index == nil || subject.Index.Digest != ih {
		t.Fatalf("the stored subject offers index %+v, want %s", subject.Index, ih)
	}
	got := mustVerify(t, verify.NewVerifier(tr, ""), subject)
	if !got.Verified || got.Digest != img.Digest.String() || got.Index != ih.String() {
		t.Fatalf("verdict %+v: want verified for %s through index %s", got, img.Digest, ih)
	}
	if info := got.PolicyInfo(); info.Index != ih.String() || info.Digest != img.Digest.String() {
		t.Errorf("policy info %+v", info)
	}

	// The index manifest survives the store's garbage collection.
	other, _ := importLayout(t, s, testImage(t, "other"), "other")
	if err := s.Remove(other.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.IndexManifest(img); !ok || err != nil {
		t.Fatalf("index manifest after a collection: ok=%v err=%v", ok, err)
	}

	raw := subject.Index.Manifest
	denials := []struct {
		name    string
		subject verify.Subject
		trust   *verify.Trust
		reason  string
	}{
		{
			name:    "no index offered",
			subject: verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s},
			reason:  "is not signed",
		},
		{
			name: "index manifest not the signed one",
			subject: verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s,
				Index: &verify.Index{Digest: ih, Manifest: []byte(strings.Replace(string(raw), "arm64", "ppc64", 1))}},
			reason: "not the index that was signed",
		},
		{
			name:    "image not listed by the index",
			subject: verify.Subject{Ref: ref, Digest: other.Digest, Signatures: s, Index: &verify.Index{Digest: ih, Manifest: raw}},
			reason:  "does not list " + other.Digest.String(),
		},
		{
			name:    "index signed by an untrusted key",
			subject: subject,
			trust:   trustFile(t, "rules:\n- images: [\"**\"]\n  keys: [bob.pub]\n  insecureIgnoreTlog: true\n"),
			reason:  "; and for the image index it was selected from: ",
		},
	}
	for _, d := range denials {
		t.Run(d.name, func(t *testing.T) {
			trust := tr
			if d.trust != nil {
				trust = d.trust
			}
			got := mustVerify(t, verify.NewVerifier(trust, ""), d.subject)
			wantDenied(t, got, d.reason)
			if got.Index != "" {
				t.Errorf("a denial names index %s", got.Index)
			}
		})
	}

	// The image's own signature is still enough without the index's.
	s2 := openStore(t)
	img2, ref2, _ := importMulti(t, s2, "own")
	sign(t, s2, "keys/alice.key", img2.Digest, ref2)
	subject2, err := verify.StoredSubject(s2, img2)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustVerify(t, verify.NewVerifier(tr, ""), subject2); !got.Verified || got.Index != "" {
		t.Errorf("own signature: %+v", got)
	}
}

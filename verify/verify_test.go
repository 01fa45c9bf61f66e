package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/verify"
)

func TestSignedImageVerifies(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	img, ref := importLayout(t, s, testImage(t, "signed"), "v1")
	if _, err := verify.SignAndStore(ctx, s, img.Digest, verify.SignOptions{
		KeyPath: fixture(t, "keys/alice.key"), Pass: staticPass(fixturePassword), Ref: ref,
	}); err != nil {
		t.Fatalf("sign: %v", err)
	}
	tr := aliceTrust(t)
	got := mustVerify(t, verify.NewVerifier(tr, ""), verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s})
	if !got.Verified {
		t.Fatalf("not verified: %s", got.Error)
	}
	if got.Digest != img.Digest.String() {
		t.Errorf("verdict digest %s, want %s", got.Digest, img.Digest)
	}
	if len(got.Signers) != 1 || !strings.HasPrefix(got.Signers[0], "key:sha256:") {
		t.Errorf("signers %v, want one key fingerprint", got.Signers)
	}
	info := got.PolicyInfo()
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["verified"] != true || doc["digest"] != img.Digest.String() || doc["error"] != nil {
		t.Errorf("policy info %s", b)
	}
	if signers, ok := doc["signers"].([]any); !ok || len(signers) != 1 {
		t.Errorf("policy info signers %s", b)
	}

	// Signing again by another key adds a signature; both keys are named
	// when the rule trusts both.
	if _, err := verify.SignAndStore(ctx, s, img.Digest, verify.SignOptions{
		KeyPath: fixture(t, "keys/bob.key"), Pass: staticPass(fixturePassword), Ref: ref,
	}); err != nil {
		t.Fatalf("sign by bob: %v", err)
	}
	both := trustFile(t, "rules:\n- images: [\"oci:**\"]\n  keys: [alice.pub, bob.pub]\n  insecureIgnoreTlog: true\n")
	got = mustVerify(t, verify.NewVerifier(both, ""), verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s})
	if !got.Verified || len(got.Signers) != 2 {
		t.Fatalf("verified=%v signers=%v error=%q, want both signers", got.Verified, got.Signers, got.Error)
	}
}

func TestPolicyInfoOfDenial(t *testing.T) {
	info := verify.Verdict{}.PolicyInfo()
	if info.Verified || info.Error == "" || info.Signers == nil {
		t.Fatalf("zero verdict must read as denied with signers [], got %+v", info)
	}
}

func sign(t testing.TB, s *image.Store, key string, digest v1.Hash, ref string) v1.Image {
	t.Helper()
	sig, err := verify.SignAndStore(context.Background(), s, digest, verify.SignOptions{
		KeyPath: fixture(t, key), Pass: staticPass(fixturePassword), Ref: ref,
	})
	if err != nil {
		t.Fatalf("sign %s with %s: %v", digest, key, err)
	}
	return sig
}

// rewriteSignature rebuilds a signature image with each payload passed
// through edit and each signature annotation kept as is.
func rewriteSignature(t testing.TB, sig v1.Image, edit func(payload []byte) []byte) v1.Image {
	t.Helper()
	m, err := sig.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var sigs []oci.Signature
	for _, d := range m.Layers {
		l, err := sig.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		p, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		s, err := static.NewSignature(edit(p), d.Annotations[static.SignatureAnnotationKey])
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s)
	}
	out, err := cmutate.AppendSignatures(empty.Signatures(), false, sigs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDenials covers every way an image can fail verification; each must be
// a denial (not an error) with a reason a person can act on.
func TestDenials(t *testing.T) {
	tests := []struct {
		name   string
		trust  string // trust file; alice for everything when empty
		setup  func(t *testing.T, s *image.Store) verify.Subject
		reason string
	}{
		{
			name: "unsigned",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "unsigned"), "v1")
				return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
			},
			reason: "is not signed",
		},
		{
			name: "wrong key",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "wrong key"), "v1")
				sign(t, s, "keys/bob.key", img.Digest, ref)
				return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
			},
			reason: "invalid signature",
		},
		{
			// The manifest was changed after signing (an annotation added)
			// and the signature carried over: its payload names the old
			// manifest digest.
			name: "tampered manifest",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				orig := testImage(t, "tampered manifest")
				img, ref := importLayout(t, s, orig, "v1")
				sig := sign(t, s, "keys/alice.key", img.Digest, ref)
				changed := mutate.Annotations(orig, map[string]string{"org.example.evil": "yes"}).(v1.Image)
				timg, tref := importLayout(t, s, changed, "v1")
				if err := s.PutSignature(timg.Digest, sig); err != nil {
					t.Fatal(err)
				}
				return verify.Subject{Ref: tref, Digest: timg.Digest, Signatures: s}
			},
			reason: "a manifest changed after signing",
		},
		{
			// The payload was rewritten to name the new digest: the
			// signature no longer matches it.
			name: "tampered payload",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				a, ref := importLayout(t, s, testImage(t, "payload A"), "v1")
				b, bref := importLayout(t, s, testImage(t, "payload B"), "v1")
				sig := sign(t, s, "keys/alice.key", a.Digest, ref)
				forged := rewriteSignature(t, sig, func(p []byte) []byte {
					return []byte(strings.ReplaceAll(string(p), a.Digest.String(), b.Digest.String()))
				})
				if err := s.PutSignature(b.Digest, forged); err != nil {
					t.Fatal(err)
				}
				return verify.Subject{Ref: bref, Digest: b.Digest, Signatures: s}
			},
			reason: "invalid signature",
		},
		{
			// A valid signature of image A, copied as the signature of B.
			// Only the claim check stops it.
			name: "copied signature",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				a, ref := importLayout(t, s, testImage(t, "copied A"), "v1")
				b, bref := importLayout(t, s, testImage(t, "copied B"), "v1")
				sig := sign(t, s, "keys/alice.key", a.Digest, ref)
				if err := s.PutSignature(b.Digest, sig); err != nil {
					t.Fatal(err)
				}
				return verify.Subject{Ref: bref, Digest: b.Digest, Signatures: s}
			},
			reason: "signature copied from another image",
		},
		{
			name:  "no matching rule",
			trust: "rules:\n- images: [\"127.0.0.1:*/team/*\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "no rule"), "v1")
				sign(t, s, "keys/alice.key", img.Digest, ref)
				return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
			},
			reason: "matches no rule",
		},
		{
			name: "no reference",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "no ref"), "v1")
				sign(t, s, "keys/alice.key", img.Digest, ref)
				return verify.Subject{Digest: img.Digest, Signatures: s}
			},
			reason: "unsigned by definition",
		},
		{
			name:  "tlog proof required",
			trust: "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  rekorKeys: [bob.pub]\n",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "tlog"), "v1")
				sign(t, s, "keys/alice.key", img.Digest, ref)
				return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
			},
			reason: "no transparency-log bundle",
		},
		{
			name: "signature layer without signature",
			setup: func(t *testing.T, s *image.Store) verify.Subject {
				img, ref := importLayout(t, s, testImage(t, "no sig annotation"), "v1")
				p, err := json.Marshal(map[string]any{"critical": map[string]any{
					"identity": map[string]any{"docker-reference": ref},
					"image":    map[string]any{"docker-manifest-digest": img.Digest.String()},
					"type":     "cosign container image signature",
				}})
				if err != nil {
					t.Fatal(err)
				}
				bare, err := static.NewSignature(p, "")
				if err != nil {
					t.Fatal(err)
				}
				sig, err := cmutate.AppendSignatures(empty.Signatures(), false, bare)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.PutSignature(img.Digest, sig); err != nil {
					t.Fatal(err)
				}
				return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
			},
			reason: "no dev.cosignproject.cosign/signature annotation",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			tr := aliceTrust(t)
			if tc.trust != "" {
				tr = trustFile(t, tc.trust)
			}
			subject := tc.setup(t, s)
			got := mustVerify(t, verify.NewVerifier(tr, t.TempDir()), subject)
			wantDenied(t, got, tc.reason)
			if got.Digest != subject.Digest.String() {
				t.Errorf("verdict digest %q, want %q", got.Digest, subject.Digest)
			}
			if got.Signers == nil || len(got.Signers) != 0 {
				t.Errorf("signers %v, want []", got.Signers)
			}
			if strings.Contains(got.Error, "\n") {
				t.Errorf("reason spans lines: %q", got.Error)
			}
		})
	}
}

// TestMovedTag: image A is signed under tag t; t is then moved to an
// unsigned image B. Verification is by the digest the store resolved once,
// so what runs is A, verified; B, once resolved, is denied.
func TestMovedTag(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	tr := aliceTrust(t)
	v := verify.NewVerifier(tr, "")

	dir := t.TempDir()
	a, b := testImage(t, "tag A"), testImage(t, "tag B")
	imagetest.WriteOCILayout(t, dir, a, "t")
	ref := "oci:" + dir + ":t"
	resolved, err := s.Resolve(ctx, ref, image.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sign(t, s, "keys/alice.key", resolved.Digest, ref)

	// Move t to B in the source.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	imagetest.WriteOCILayout(t, dir, b, "t")

	// The run resolves the tag once, in the store: still A, verified, and
	// A's content is what the store serves for that digest.
	again, err := s.Resolve(ctx, ref, image.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != digestOf(t, a) {
		t.Fatalf("store resolved moved tag to %s, want A %s", again.Digest, digestOf(t, a))
	}
	got := mustVerify(t, v, verify.Subject{Ref: ref, Digest: again.Digest, Signatures: s})
	if !got.Verified || got.Digest != digestOf(t, a).String() {
		t.Fatalf("A not verified: %+v", got)
	}
	stored, err := s.Image(again.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, stored) != digestOf(t, a) {
		t.Fatal("store serves other content for A's digest")
	}

	// Importing the moved tag explicitly brings B, which is not signed.
	moved, err := s.Import(ctx, ref, image.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if moved.Digest != digestOf(t, b) {
		t.Fatalf("re-import got %s, want B %s", moved.Digest, digestOf(t, b))
	}
	wantDenied(t, mustVerify(t, v, verify.Subject{Ref: ref, Digest: moved.Digest, Signatures: s}), "is not signed")
}

// TestMovedTagRegistry: the same attack against a registry. A is signed and
// pushed under t; t is moved to B. The digest resolved before the move
// still verifies (and is what the store holds); B is denied.
func TestMovedTagRegistry(t *testing.T) {
	ctx := context.Background()
	host := imagetest.Registry(t)
	ref := host + "/team/app:t"
	a, b := testImage(t, "registry A"), testImage(t, "registry B")
	imagetest.Push(t, ref, a)
	da := digestOf(t, a)
	sig, err := verify.Sign(ctx, fixture(t, "keys/alice.key"), staticPass(fixturePassword), da, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.PushSignature(ctx, ref, da, sig); err != nil {
		t.Fatal(err)
	}
	src, err := verify.RegistrySignatures(ref)
	if err != nil {
		t.Fatal(err)
	}
	v := verify.NewVerifier(trustFile(t, "rules:\n- images: [\"127.0.0.1:*/team/*\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n"), "")
	if got := mustVerify(t, v, verify.Subject{Ref: ref, Digest: da, Signatures: src}); !got.Verified {
		t.Fatalf("A not verified: %s", got.Error)
	}

	imagetest.Push(t, ref, b)
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != digestOf(t, b) {
		t.Fatalf("tag not moved")
	}
	if got := mustVerify(t, v, verify.Subject{Ref: ref, Digest: da, Signatures: src}); !got.Verified {
		t.Fatalf("A's digest no longer verifies after the tag moved: %s", got.Error)
	}
	wantDenied(t, mustVerify(t, v, verify.Subject{Ref: ref, Digest: desc.Digest, Signatures: src}), "is not signed")
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		v    verify.Verdict
		err  error
		want int
	}{
		{verify.Verdict{Verified: true}, nil, 0},
		{verify.Verdict{Error: "not signed"}, nil, 126},
		{verify.Verdict{Verified: true}, io.ErrUnexpectedEOF, 125},
	}
	for _, tc := range tests {
		if got := verify.ExitCode(tc.v, tc.err); got != tc.want {
			t.Errorf("ExitCode(%+v, %v) = %d, want %d", tc.v, tc.err, got, tc.want)
		}
	}
}

// TestVerifyFailsClosed: failures to check are errors, never verdicts.
func TestVerifyFailsClosed(t *testing.T) {
	tr := aliceTrust(t)
	d := digestOf(t, testImage(t, "fail closed"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v := verify.NewVerifier(tr, "")
	if _, err := v.Verify(ctx, verify.Subject{Ref: "oci:/x:v1", Digest: d, Signatures: brokenSource{}}); err == nil {
		t.Error("cancelled context: no error")
	}
	if _, err := v.Verify(context.Background(), verify.Subject{Ref: "oci:/x:v1", Digest: d, Signatures: brokenSource{}}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("broken source: err = %v", err)
	}
	if _, err := v.Verify(context.Background(), verify.Subject{Ref: "oci:/x:v1", Digest: d}); err == nil {
		t.Error("no signature source: no error")
	}
	if _, err := v.Verify(context.Background(), verify.Subject{Ref: "oci:/x:v1", Signatures: brokenSource{}}); err == nil {
		t.Error("zero digest: no error")
	}
	if _, err := verify.NewVerifier(nil, "").Verify(context.Background(), verify.Subject{Ref: "oci:/x:v1", Digest: d}); err == nil {
		t.Error("nil trust: no error")
	}
	// An unwritable verdict cache is a failure too, not a silent pass.
	s := openStore(t)
	img, ref := importLayout(t, s, testImage(t, "unwritable cache"), "v1")
	sign(t, s, "keys/alice.key", img.Digest, ref)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := verify.NewVerifier(tr, filepath.Join(blocker, "verdicts")).Verify(context.Background(), verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s})
	if err == nil || !strings.Contains(err.Error(), "verdict cache") {
		t.Errorf("unwritable cache: err = %v", err)
	}
}

type brokenSource struct{}

func (brokenSource) Signature(v1.Hash) (v1.Image, error) {
	return nil, errors.New("disk on fire")
}

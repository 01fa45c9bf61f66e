package verify_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/verify"
)

// benchSubject is a signed image in a fresh store.
func benchSubject(b *testing.B) (verify.Subject, *verify.Trust) {
	b.Helper()
	s := openStore(b)
	img, ref := importLayout(b, s, testImage(b, "bench"), "v1")
	sign(b, s, "keys/alice.key", img.Digest, ref)
	return verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}, aliceTrust(b)
}

func benchVerify(b *testing.B, v verify.Verifier, s verify.Subject, wantCached bool) {
	b.Helper()
	got, err := v.Verify(context.Background(), s)
	if err != nil {
		b.Fatal(err)
	}
	if !got.Verified || got.Cached != wantCached {
		b.Fatalf("verdict %+v, want verified with cached=%v", got, wantCached)
	}
}

// BenchmarkVerifyCached: the verdict is in memory (the same secrun process
// verifying the digest again).
func BenchmarkVerifyCached(b *testing.B) {
	s, tr := benchSubject(b)
	v := verify.NewVerifier(tr, filepath.Join(b.TempDir(), "verdicts"))
	benchVerify(b, v, s, false)
	b.ResetTimer()
	for b.Loop() {
		benchVerify(b, v, s, true)
	}
}

// BenchmarkVerifyCachedDisk: the verdict is on disk under ROOT/verdicts (a
// new secrun process).
func BenchmarkVerifyCachedDisk(b *testing.B) {
	s, tr := benchSubject(b)
	dir := filepath.Join(b.TempDir(), "verdicts")
	benchVerify(b, verify.NewVerifier(tr, dir), s, false)
	b.ResetTimer()
	for b.Loop() {
		benchVerify(b, verify.NewVerifier(tr, dir), s, true)
	}
}

// BenchmarkVerifyCold: a full verification of a local image: read the
// signature image from the store, check the claim and the ECDSA signature.
func BenchmarkVerifyCold(b *testing.B) {
	s, tr := benchSubject(b)
	b.ResetTimer()
	for b.Loop() {
		benchVerify(b, verify.NewVerifier(tr, ""), s, false)
	}
}

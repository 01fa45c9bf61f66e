package verify_test

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secrun/secrun/verify"
)

func TestVerdictCache(t *testing.T) {
	s := openStore(t)
	img, ref := importLayout(t, s, testImage(t, "cached"), "v1")
	subject := verify.Subject{Ref: ref, Digest: img.Digest, Signatures: s}
	cacheDir := filepath.Join(t.TempDir(), "verdicts")
	tr := aliceTrust(t)

	// Not signed yet: denied, and the denial is not cached.
	v := verify.NewVerifier(tr, cacheDir)
	wantDenied(t, mustVerify(t, v, subject), "is not signed")
	sign(t, s, "keys/alice.key", img.Digest, ref)
	first := mustVerify(t, v, subject)
	if !first.Verified || first.Cached {
		t.Fatalf("after signing: %+v, want a fresh positive verdict", first)
	}

	// Memory hit.
	second := mustVerify(t, v, subject)
	if !second.Verified || !second.Cached || second.Signers[0] != first.Signers[0] {
		t.Fatalf("second verify: %+v, want cached", second)
	}

	// Disk hit from a new verifier (a new secrun process); the signature
	// source is not even consulted.
	files, err := filepath.Glob(filepath.Join(cacheDir, "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache files %v (%v), want one", files, err)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode: %v %v", fi.Mode(), err)
	}
	noSigs := verify.Subject{Ref: ref, Digest: img.Digest, Signatures: failingSource{t}}
	third := mustVerify(t, verify.NewVerifier(tr, cacheDir), noSigs)
	if !third.Verified || !third.Cached {
		t.Fatalf("disk cache: %+v", third)
	}

	// Another key set is another cache key: bob's trust re-verifies and
	// denies.
	bob := trustFile(t, "rules:\n- images: [\"**\"]\n  keys: [bob.pub]\n  insecureIgnoreTlog: true\n")
	wantDenied(t, mustVerify(t, verify.NewVerifier(bob, cacheDir), subject), "not signed by this key")

	// A corrupt cache entry is a miss, never a verdict.
	if err := os.WriteFile(files[0], []byte(`{"version":1,"verdict":{"verified":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := mustVerify(t, verify.NewVerifier(tr, cacheDir), subject)
	if !fresh.Verified || fresh.Cached {
		t.Fatalf("after corrupting the cache: %+v, want a fresh verification", fresh)
	}
}

func mustGlob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type failingSource struct{ t testing.TB }

func (f failingSource) Signature(d v1.Hash) (v1.Image, error) {
	f.t.Errorf("signature source consulted for %s despite a cached verdict", d)
	return nil, verify.ErrNoSignature
}

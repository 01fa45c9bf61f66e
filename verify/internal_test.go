package verify

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"127.0.0.1:*/team/*", "127.0.0.1:5000/team/app", true},
		{"127.0.0.1:*/team/*", "127.0.0.1:5000/team/sub/app", false},
		{"127.0.0.1:*/team/*", "127.0.0.1:5000/evil/team/app", false},
		{"127.0.0.1:*/team/*", "127.0.0.1:5000/team/", true},
		{"127.0.0.1:*/team/**", "127.0.0.1:5000/team/sub/app", true},
		{"oci:**", "oci:/var/lib/images/app:v1", true},
		{"oci:*", "oci:/var/lib/images/app:v1", false},
		{"oci:*", "oci:app", true},
		{"**", "", true},
		{"**", "anything/at/all:v1", true},
		{"*", "a/b", false},
		{"registry.example/app", "registry.example/app", true},
		{"registry.example/app", "registry.example/app2", false},
		{"registry.example/app?", "registry.example/app2", true},
		{"registry.example/app?", "registry.example/app/", false},
		{"a**b", "a/x/yb", true},
		{"a*b*c", "abxbyc", true},
		{"", "", true},
		{"", "a", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.s, func(t *testing.T) {
			if got := globMatch(tc.pattern, tc.s); got != tc.want {
				t.Fatalf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
		})
	}
}

// globRegexp is the reference semantics globMatch must agree with.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '*' && i+1 < len(p) && p[i+1] == '*':
			b.WriteString("(?s:.*)")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func FuzzGlobMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"127.0.0.1:*/team/*", "127.0.0.1:5000/team/app"},
		{"oci:**", "oci:/x/y:z"},
		{"a?c", "abc"},
		{"**/*", "a/b/c"},
		{"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 64 || len(s) > 256 {
			return
		}
		// Bytewise semantics: compare on ASCII only.
		for _, r := range p + s {
			if r >= 0x80 {
				return
			}
		}
		got := globMatch(p, s)
		want := globRegexp(p).MatchString(s)
		if got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", p, s, got, want)
		}
	})
}

func TestMatchNames(t *testing.T) {
	tests := []struct {
		ref  string
		want []string
	}{
		{"busybox", []string{"index.docker.io/library/busybox", "docker.io/library/busybox", "busybox"}},
		{"busybox:1.36@sha256:" + strings.Repeat("a", 64), []string{"index.docker.io/library/busybox", "docker.io/library/busybox", "busybox"}},
		{"127.0.0.1:5000/team/app:v1", []string{"127.0.0.1:5000/team/app"}},
		{"docker://127.0.0.1:5000/team/app", []string{"127.0.0.1:5000/team/app"}},
		{"oci:/x/layout:v1", []string{"oci:/x/layout:v1"}},
		{"docker-archive:/x/a.tar", []string{"docker-archive:/x/a.tar"}},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			got := matchNames(tc.ref)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("matchNames(%q) = %q, want %q", tc.ref, got, tc.want)
			}
		})
	}
}

func TestFirstMatchingRuleDecides(t *testing.T) {
	pub := filepath.Join("..", "testdata", "verify", "keys")
	tr, err := NewTrust(TrustConfig{Rules: []Rule{
		{Images: []string{"127.0.0.1:*/team/*"}, Keys: []string{"alice.pub"}, InsecureIgnoreTlog: true},
		{Images: []string{"**"}, Keys: []string{"bob.pub"}, InsecureIgnoreTlog: true},
	}}, pub, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r := tr.match("127.0.0.1:5000/team/app:v1"); r == nil || r.index != 1 {
		t.Fatalf("team image matched rule %v, want 1", r)
	}
	if r := tr.match("127.0.0.1:5000/other/app:v1"); r == nil || r.index != 2 {
		t.Fatalf("other image matched rule %v, want 2", r)
	}
	if r := tr.match(""); r != nil {
		t.Fatalf("empty reference matched rule %d", r.index)
	}
}

// TestClaimVerifierIsWhatStopsCopiedSignatures shows why ClaimVerifier is
// always set: without it cosign accepts a valid signature of image A as the
// signature of image B.
func TestClaimVerifierIsWhatStopsCopiedSignatures(t *testing.T) {
	ctx := context.Background()
	keys := filepath.Join("..", "testdata", "verify", "keys")
	tr, err := NewTrust(TrustConfig{Rules: []Rule{
		{Images: []string{"**"}, Keys: []string{"alice.pub"}, InsecureIgnoreTlog: true},
	}}, keys, "test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	pass := func(bool) ([]byte, error) { return []byte("secrun-test"), nil }
	sigImg, err := Sign(ctx, filepath.Join(keys, "alice.key"), pass, da, "127.0.0.1:5000/team/a:v1")
	if err != nil {
		t.Fatal(err)
	}
	raws, err := readSignatures(sigImg)
	if err != nil || len(raws) != 1 {
		t.Fatalf("read signature: %v (%d layers)", err, len(raws))
	}

	checker := tr.rules[0].checkers[0].(*cosignChecker)
	if checker.opts.ClaimVerifier == nil {
		t.Fatal("ClaimVerifier is not set on the checker")
	}
	if _, err := checker.check(ctx, raws[0], da); err != nil {
		t.Fatalf("signature of A does not verify for A: %v", err)
	}
	if _, err := checker.check(ctx, raws[0], db); err == nil || !strings.Contains(err.Error(), "invalid or missing digest in claim") {
		t.Fatalf("signature of A checked for B: err = %v, want a claim mismatch", err)
	}

	// The attack, with the claim check off: accepted.
	opts := *checker.opts
	opts.ClaimVerifier = nil
	unsafe := &cosignChecker{opts: &opts, keyName: checker.keyName, signer: checker.signer}
	if _, err := unsafe.check(ctx, raws[0], db); err != nil {
		t.Fatalf("without the claim check cosign should accept the copied signature (this test shows why the check is on), got %v", err)
	}

	// And the whole verifier denies it.
	v := NewVerifier(tr, "")
	got, err := v.Verify(ctx, Subject{Ref: "127.0.0.1:5000/team/b:v1", Digest: db, Signatures: staticSource{db: sigImg}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Verified || !strings.Contains(got.Error, "signs "+da.String()) {
		t.Fatalf("copied signature: %+v", got)
	}
}

type staticSource map[v1.Hash]v1.Image

func (s staticSource) Signature(h v1.Hash) (v1.Image, error) {
	if img, ok := s[h]; ok {
		return img, nil
	}
	return nil, ErrNoSignature
}

// TestCacheRejectsForgedEntries: a disk entry is only believed for the key
// and digest it was written for.
func TestCacheRejectsForgedEntries(t *testing.T) {
	keys := filepath.Join("..", "testdata", "verify", "keys")
	tr, err := NewTrust(TrustConfig{Rules: []Rule{
		{Images: []string{"**"}, Keys: []string{"alice.pub"}, InsecureIgnoreTlog: true},
	}}, keys, "test")
	if err != nil {
		t.Fatal(err)
	}
	r := tr.rules[0]
	da := "sha256:" + strings.Repeat("a", 64)
	db := "sha256:" + strings.Repeat("b", 64)
	dir := t.TempDir()
	c := newVerdictCache(dir)
	ka, kb := cacheKey(da, r), cacheKey(db, r)
	if ka == kb {
		t.Fatal("cache keys of two digests collide")
	}
	if err := c.put(ka, Verdict{Verified: true, Signers: []string{"key:x"}, Digest: da}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ka+".json"))
	if err != nil {
		t.Fatal(err)
	}
	// A's entry copied under B's name.
	if err := os.WriteFile(filepath.Join(dir, kb+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := newVerdictCache(dir).get(kb, db); ok || err != nil {
		t.Fatalf("forged entry accepted: ok=%v err=%v", ok, err)
	}
	if _, ok, err := newVerdictCache(dir).get(ka, da); !ok || err != nil {
		t.Fatalf("genuine entry refused: ok=%v err=%v", ok, err)
	}
	// Negative verdicts are never stored.
	if err := c.put(kb, Verdict{Digest: db, Error: "not signed"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := newVerdictCache(dir).get(kb, db); ok {
		t.Fatal("negative verdict cached")
	}
	// Changing the rule (here: dropping the tlog escape hatch) changes the key.
	tr2, err := NewTrust(TrustConfig{Rules: []Rule{
		{Images: []string{"**"}, Keys: []string{"alice.pub"}, RekorKeys: []string{"bob.pub"}},
	}}, keys, "test")
	if err != nil {
		t.Fatal(err)
	}
	if cacheKey(da, tr2.rules[0]) == ka {
		t.Fatal("cache key ignores the rule's settings")
	}
}

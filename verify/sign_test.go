package verify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/verify"
)

func TestGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	if err := verify.GenerateKeyPair(dir, staticPass("pw")); err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	for p, want := range map[string]os.FileMode{priv: 0o600, pub: 0o644} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	b, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----") {
		t.Errorf("private key is not in cosign's encrypted format:\n%s", b)
	}

	// It signs, and what it signs verifies against the public key.
	img := testImage(t, "generated key")
	d := digestOf(t, img)
	sig, err := verify.Sign(context.Background(), priv, staticPass("pw"), d, "oci:/x:v1")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := verify.TrustForKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	src := layoutWithSignature(t, d, sig)
	if got := mustVerify(t, verify.NewVerifier(tr, ""), verify.Subject{Ref: "oci:/x:v1", Digest: d, Signatures: src}); !got.Verified {
		t.Fatalf("not verified: %s", got.Error)
	}

	// Never overwrites.
	err = verify.GenerateKeyPair(dir, staticPass("pw"))
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second generate: %v, want already exists", err)
	}
}

func TestGenerateKeyPairNeedsPassword(t *testing.T) {
	unsetPassword(t)
	dir := t.TempDir()
	err := verify.GenerateKeyPair(dir, verify.PasswordFromEnv())
	if !errors.Is(err, verify.ErrNoPassword) || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Fatalf("err = %v, want ErrNoPassword naming COSIGN_PASSWORD", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cosign.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cosign.key written despite the error: %v", err)
	}
	t.Setenv("COSIGN_PASSWORD", "")
	if err := verify.GenerateKeyPair(dir, verify.PasswordFromEnv()); err != nil {
		t.Fatalf("empty COSIGN_PASSWORD: %v", err)
	}
	// A key with the empty password signs without COSIGN_PASSWORD.
	unsetPassword(t)
	if _, err := verify.Sign(context.Background(), filepath.Join(dir, "cosign.key"), verify.PasswordFromEnv(), digestOf(t, testImage(t, "x")), ""); err != nil {
		t.Fatalf("sign with empty-password key: %v", err)
	}
}

func unsetPassword(t *testing.T) {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", "restored after the test")
	if err := os.Unsetenv("COSIGN_PASSWORD"); err != nil {
		t.Fatal(err)
	}
}

func TestSignKeyErrors(t *testing.T) {
	ctx := context.Background()
	d := digestOf(t, testImage(t, "key errors"))
	notPEM := filepath.Join(t.TempDir(), "junk.key")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     string
		pass    verify.PassFunc
		env     *string
		wantIs  error
		wantMsg string
	}{
		{name: "encrypted key without password", key: fixture(t, "keys/alice.key"), pass: verify.PasswordFromEnv(), wantIs: verify.ErrNoPassword, wantMsg: "is encrypted and COSIGN_PASSWORD is not set"},
		{name: "wrong password", key: fixture(t, "keys/alice.key"), pass: staticPass("nope"), wantIs: verify.ErrBadPassword, wantMsg: "wrong password"},
		{name: "wrong password from env", key: fixture(t, "keys/alice.key"), pass: verify.PasswordFromEnv(), env: ptr("nope"), wantIs: verify.ErrBadPassword, wantMsg: "COSIGN_PASSWORD"},
		{name: "public key given", key: fixture(t, "keys/alice.pub"), pass: staticPass(fixturePassword), wantMsg: "not a cosign private key"},
		{name: "not PEM", key: notPEM, pass: staticPass(fixturePassword), wantMsg: "is not PEM"},
		{name: "missing", key: filepath.Join(t.TempDir(), "nope.key"), pass: staticPass(fixturePassword), wantIs: os.ErrNotExist, wantMsg: "nope.key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetPassword(t)
			if tc.env != nil {
				t.Setenv("COSIGN_PASSWORD", *tc.env)
			}
			_, err := verify.Sign(ctx, tc.key, tc.pass, d, "oci:/x:v1")
			if err == nil {
				t.Fatal("signed, want an error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
	t.Run("password from env", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", fixturePassword)
		if _, err := verify.Sign(ctx, fixture(t, "keys/alice.key"), nil, d, "oci:/x:v1"); err != nil {
			t.Fatalf("sign with COSIGN_PASSWORD set: %v", err)
		}
	})
	t.Run("bad digest", func(t *testing.T) {
		bad := d
		bad.Hex = "abc"
		if _, err := verify.Sign(ctx, fixture(t, "keys/alice.key"), staticPass(fixturePassword), bad, ""); err == nil {
			t.Fatal("signed a malformed digest")
		}
	})
}

func ptr(s string) *string { return &s }

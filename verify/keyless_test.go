package verify_test

// Keyless (certificate) signatures, offline: a throwaway CA stands in for
// Fulcio, and the trust rule names it in roots.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/secrun/secrun/verify"
)

const testIssuer = "https://issuer.example"

var oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// issue returns a short-lived code-signing certificate for email from
// issuer, as Fulcio would, and its key.
func (ca *testCA) issue(t testing.TB, email, issuer string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		EmailAddresses:  []string{email},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV1, Value: []byte(issuer)}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// keylessSignature signs d with key and attaches cert and the CA chain, the
// way `cosign sign` stores a Fulcio signature.
func keylessSignature(t testing.TB, d v1.Hash, certPEM []byte, key *ecdsa.PrivateKey, ca *testCA) v1.Image {
	t.Helper()
	pl, err := json.Marshal(payload.SimpleContainerImage{Critical: payload.Critical{
		Identity: payload.Identity{DockerReference: "registry.example/prod/app"},
		Image:    payload.Image{DockerManifestDigest: d.String()},
		Type:     payload.CosignSignatureType,
	}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pl)
	raw, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw), static.WithCertChain(certPEM, ca.pem()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := cmutate.AppendSignatures(empty.Signatures(), false, sig)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestKeylessSignatures(t *testing.T) {
	ca := newTestCA(t, "test fulcio")
	rogue := newTestCA(t, "rogue ca")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), ca.pem(), 0o644); err != nil {
		t.Fatal(err)
	}
	alicePub, err := os.ReadFile(fixture(t, "keys/alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), alicePub, 0o644); err != nil {
		t.Fatal(err)
	}
	trustYAML := `rules:
- images: ["registry.example/prod/**"]
  identities:
  - issuer: ` + testIssuer + `
    subjectRegExp: '^.*@example\.com$'
  roots: [root.pem]
  keys: [alice.pub]
  insecureIgnoreTlog: true
  insecureIgnoreSCT: true
`
	tr, err := verify.ParseTrust([]byte(trustYAML), dir, "keyless.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(tr.Warnings(), "\n"); !strings.Contains(w, "insecureIgnoreSCT") {
		t.Errorf("warnings do not name insecureIgnoreSCT: %q", w)
	}
	// A fresh verifier per case: verdicts are cached per digest and rule,
	// and every case here checks the same digest.
	newVerifier := func() verify.Verifier { return verify.NewVerifier(tr, "") }
	ref := "registry.example/prod/app:v1"
	d := digestOf(t, testImage(t, "keyless"))
	subject := func(sig v1.Image) verify.Subject {
		return verify.Subject{Ref: ref, Digest: d, Signatures: layoutWithSignature(t, d, sig)}
	}

	t.Run("trusted identity", func(t *testing.T) {
		cert, key := ca.issue(t, "alice@example.com", testIssuer)
		got := mustVerify(t, newVerifier(), subject(keylessSignature(t, d, cert, key, ca)))
		if !got.Verified {
			t.Fatalf("not verified: %s", got.Error)
		}
		want := "identity:issuer=" + testIssuer + ",subject=alice@example.com"
		if len(got.Signers) != 1 || got.Signers[0] != want {
			t.Fatalf("signers %v, want [%s]", got.Signers, want)
		}
	})
	denials := []struct {
		name, email, issuer string
		ca                  *testCA
		reason              string
	}{
		{"other subject", "mallory@example.com.evil.test", testIssuer, ca, "none of the expected identities matched"},
		{"other issuer", "alice@example.com", "https://evil.test", ca, "none of the expected identities matched"},
		{"untrusted CA", "alice@example.com", testIssuer, rogue, "certificate signed by unknown authority"},
	}
	for _, tc := range denials {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := tc.ca.issue(t, tc.email, tc.issuer)
			wantDenied(t, mustVerify(t, newVerifier(), subject(keylessSignature(t, d, cert, key, tc.ca))), tc.reason)
		})
	}
	t.Run("key signature in a mixed rule", func(t *testing.T) {
		sig, err := verify.Sign(t.Context(), fixture(t, "keys/alice.key"), staticPass(fixturePassword), d, ref)
		if err != nil {
			t.Fatal(err)
		}
		got := mustVerify(t, newVerifier(), subject(sig))
		if !got.Verified || !strings.HasPrefix(got.Signers[0], "key:") {
			t.Fatalf("key signature under a rule with keys and identities: %+v", got)
		}
	})
	t.Run("SCT required", func(t *testing.T) {
		strict := strings.Replace(trustYAML, "  insecureIgnoreSCT: true\n", "  ctlogKeys: [alice.pub]\n", 1)
		tr, err := verify.ParseTrust([]byte(strict), dir, "strict.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cert, key := ca.issue(t, "alice@example.com", testIssuer)
		wantDenied(t, mustVerify(t, verify.NewVerifier(tr, ""), subject(keylessSignature(t, d, cert, key, ca))), "SCT")
	})
	t.Run("roots without identities", func(t *testing.T) {
		_, err := verify.ParseTrust([]byte("rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  roots: [root.pem]\n  insecureIgnoreTlog: true\n"), dir, "t.yaml")
		if err == nil || !strings.Contains(err.Error(), "roots or intermediates without identities") {
			t.Fatalf("err = %v", err)
		}
	})
}

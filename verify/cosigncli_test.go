package verify_test

// Cross-tool tests against the real cosign CLI (v2.6.5), offline: an
// in-process registry on 127.0.0.1, key-based signatures, no Rekor.

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/verify"
)

func cosignSign(t *testing.T, key, password, ref string) {
	t.Helper()
	out, err := runCosign(t, []string{"COSIGN_PASSWORD=" + password},
		"sign", "--key", key, "--tlog-upload=false", "--allow-insecure-registry", "--allow-http-registry", "--yes", ref)
	if err != nil {
		t.Fatalf("cosign sign %s: %v\n%s", ref, err, out)
	}
}

func cosignVerify(t *testing.T, pub, ref string) (string, error) {
	t.Helper()
	return runCosign(t, nil,
		"verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", "--allow-http-registry", ref)
}

// pushTestImage pushes a fresh image to host/team/<repo>:v1 and returns the
// tag reference and the digest reference.
func pushTestImage(t *testing.T, host, repo, content string) (tagRef, digestRef string) {
	t.Helper()
	img := testImage(t, content)
	tagRef = host + "/team/" + repo + ":v1"
	imagetest.Push(t, tagRef, img)
	return tagRef, host + "/team/" + repo + "@" + digestOf(t, img).String()
}

const teamTrust = "rules:\n- images: [\"127.0.0.1:*/team/*\", \"oci:**\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n"

// Signed with secrun, verified with cosign.
func TestCosignVerifiesSecrunSignature(t *testing.T) {
	cosignBinary(t)
	ctx := context.Background()
	host := imagetest.Registry(t)
	tagRef, digestRef := pushTestImage(t, host, "secrun-signed", "secrun signs")
	d := digestOf(t, testImage(t, "secrun signs"))

	// Sign into a store and push, as `secrun sign` does for registry refs.
	s := openStore(t)
	if _, err := verify.SignAndStore(ctx, s, d, verify.SignOptions{
		KeyPath: fixture(t, "keys/alice.key"), Pass: staticPass(fixturePassword), Ref: tagRef, Push: true,
	}); err != nil {
		t.Fatalf("secrun sign: %v", err)
	}
	out, err := cosignVerify(t, fixture(t, "keys/alice.pub"), digestRef)
	if err != nil {
		t.Fatalf("cosign verify of a secrun signature failed: %v\n%s", err, out)
	}
	t.Logf("cosign verify:\n%s", out)
	if !strings.Contains(out, d.String()) {
		t.Errorf("cosign verify output does not name the digest:\n%s", out)
	}
	if out, err := cosignVerify(t, fixture(t, "keys/bob.pub"), digestRef); err == nil {
		t.Fatalf("cosign verify with the wrong key passed:\n%s", out)
	}

	// A second secrun signature is appended, not replacing the first.
	if _, err := verify.SignAndStore(ctx, s, d, verify.SignOptions{
		KeyPath: fixture(t, "keys/bob.key"), Pass: staticPass(fixturePassword), Ref: tagRef, Push: true,
	}); err != nil {
		t.Fatalf("secrun sign by bob: %v", err)
	}
	for _, pub := range []string{"keys/alice.pub", "keys/bob.pub"} {
		if out, err := cosignVerify(t, fixture(t, pub), digestRef); err != nil {
			t.Fatalf("cosign verify --key %s after a second signature: %v\n%s", pub, err, out)
		}
	}
}

// Signed with cosign, verified with secrun: from the registry, from secrun's
// store after import, and from a `cosign save` OCI layout.
func TestSecrunVerifiesCosignSignature(t *testing.T) {
	cosignBinary(t)
	ctx := context.Background()
	host := imagetest.Registry(t)
	tagRef, digestRef := pushTestImage(t, host, "cosign-signed", "cosign signs")
	d := digestOf(t, testImage(t, "cosign signs"))
	cosignSign(t, fixture(t, "keys/alice.key"), fixturePassword, digestRef)

	tr := trustFile(t, teamTrust)
	v := verify.NewVerifier(tr, "")

	t.Run("registry", func(t *testing.T) {
		src, err := verify.RegistrySignatures(tagRef)
		if err != nil {
			t.Fatal(err)
		}
		got := mustVerify(t, v, verify.Subject{Ref: tagRef, Digest: d, Signatures: src})
		if !got.Verified {
			t.Fatalf("cosign signature not verified: %s", got.Error)
		}
	})
	t.Run("store", func(t *testing.T) {
		s := openStore(t)
		img, err := s.Import(ctx, tagRef, image.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img.Digest != d {
			t.Fatalf("imported %s, want %s", img.Digest, d)
		}
		got := mustVerify(t, v, verify.Subject{Ref: tagRef, Digest: img.Digest, Signatures: s})
		if !got.Verified {
			t.Fatalf("cosign signature imported into the store not verified: %s", got.Error)
		}
	})
	t.Run("cosign save layout", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "saved")
		if out, err := runCosign(t, nil, "save", "--allow-insecure-registry", "--allow-http-registry", "--dir", dir, digestRef); err != nil {
			t.Fatalf("cosign save: %v\n%s", err, out)
		}
		got := mustVerify(t, v, verify.Subject{Ref: "oci:" + dir, Digest: d, Signatures: verify.LayoutSignatures(dir)})
		if !got.Verified {
			t.Fatalf("signature in a cosign save layout not verified: %s", got.Error)
		}
		s := openStore(t)
		img, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got = mustVerify(t, v, verify.Subject{Ref: "oci:" + dir, Digest: img.Digest, Signatures: s})
		if !got.Verified {
			t.Fatalf("cosign save layout imported into the store not verified: %s", got.Error)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		src, err := verify.RegistrySignatures(tagRef)
		if err != nil {
			t.Fatal(err)
		}
		bob := trustFile(t, "rules:\n- images: [\"**\"]\n  keys: [bob.pub]\n  insecureIgnoreTlog: true\n")
		wantDenied(t, mustVerify(t, verify.NewVerifier(bob, ""), verify.Subject{Ref: tagRef, Digest: d, Signatures: src}), "not signed by this key")
	})
}

// Keys made by secrun work with cosign, and the reverse (the fixtures were
// made by cosign generate-key-pair and are used by secrun throughout).
func TestSecrunKeyWorksWithCosign(t *testing.T) {
	cosignBinary(t)
	dir := t.TempDir()
	if err := verify.GenerateKeyPair(dir, staticPass("s3cret")); err != nil {
		t.Fatal(err)
	}
	host := imagetest.Registry(t)
	tagRef, digestRef := pushTestImage(t, host, "secrun-key", "secrun key")
	d := digestOf(t, testImage(t, "secrun key"))
	cosignSign(t, filepath.Join(dir, "cosign.key"), "s3cret", digestRef)
	tr, err := verify.TrustForKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := verify.RegistrySignatures(tagRef)
	if err != nil {
		t.Fatal(err)
	}
	got := mustVerify(t, verify.NewVerifier(tr, ""), verify.Subject{Ref: tagRef, Digest: d, Signatures: src})
	if !got.Verified {
		t.Fatalf("cosign signature made with a secrun key not verified: %s", got.Error)
	}
	if out, err := cosignVerify(t, filepath.Join(dir, "cosign.pub"), digestRef); err != nil {
		t.Fatalf("cosign verify with a secrun public key: %v\n%s", err, out)
	}
}

// A signature copied to another image's .sig tag in the registry is refused
// by both tools.
func TestCopiedSignatureRefusedByBothTools(t *testing.T) {
	cosignBinary(t)
	ctx := context.Background()
	host := imagetest.Registry(t)
	_, aRef := pushTestImage(t, host, "copy", "copy A")
	bTag := host + "/team/copy:b"
	b := testImage(t, "copy B")
	imagetest.Push(t, bTag, b)
	da, db := digestOf(t, testImage(t, "copy A")), digestOf(t, b)
	cosignSign(t, fixture(t, "keys/alice.key"), fixturePassword, aRef)

	src, err := verify.RegistrySignatures(bTag)
	if err != nil {
		t.Fatal(err)
	}
	sigA, err := src.Signature(da)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.PushSignature(ctx, bTag, db, sigA); err != nil {
		t.Fatal(err)
	}
	bRef := host + "/team/copy@" + db.String()
	if out, err := cosignVerify(t, fixture(t, "keys/alice.pub"), bRef); err == nil {
		t.Fatalf("cosign accepted a copied signature:\n%s", out)
	}
	v := verify.NewVerifier(trustFile(t, teamTrust), "")
	wantDenied(t, mustVerify(t, v, verify.Subject{Ref: bTag, Digest: db, Signatures: src}), "signature copied from another image")
}

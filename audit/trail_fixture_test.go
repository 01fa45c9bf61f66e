package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/audit"
)

// The committed fixture trail pins the record format: if encoding changes,
// TestFixtureTrailIsReproducible fails. Regenerate deliberately with
// SECRUN_UPDATE_FIXTURES=1 go test ./audit/ and say why in the change.
const fixtureDir = "../testdata/audit"

func updateFixtures() bool { return os.Getenv("SECRUN_UPDATE_FIXTURES") == "1" }

// fixtureKey is derived from a public string: it signs test fixtures only.
func fixtureKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("secrun audit fixture key - public, for tests only"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// writeFixtureTrail records one allowed run and one denied run.
func writeFixtureTrail(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "trail-v1.jsonl")
	tr, err := audit.Open(path, audit.Options{
		SigningKey: fixtureKey(), Host: "node-1", Now: fixedClock(),
		Actor: &audit.Actor{UID: 0, PID: 4321, Command: "secrun run --name web example.com/web:1.4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	web := audit.Container{ID: "9c1e5b3f0a2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f", Name: "web", Runtime: "/usr/local/sbin/runc"}
	img := audit.ImageRef{Name: "example.com/web:1.4", Digest: "sha256:5d41402abc4b2a76b9719d911017c592ae1b2f2a3d7e0b6c8f9a0b1c2d3e4f5a"}
	pol := &audit.PolicyRef{Name: "baseline", Hash: "sha256:0b1c", InputHash: "sha256:77aa"}
	bad := audit.Container{ID: "4f2a0c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f", Name: "rooty"}
	badImg := audit.ImageRef{Name: "example.com/tools:latest", Digest: "sha256:aa11"}
	running := web
	running.PID = 31337
	events := []audit.Event{
		{Kind: audit.KindImageResolved, Outcome: audit.OutcomeSuccess, Container: web, Image: img},
		{Kind: audit.KindSignatureVerdict, Outcome: audit.OutcomeSuccess, Container: web, Image: img,
			Fields: map[string]any{"signature.verified": true, "signature.signers": []string{"release@example.com"}}},
		{Kind: audit.KindSpecCreated, Outcome: audit.OutcomeSuccess, Container: web, Image: img,
			Fields: map[string]any{"spec.hash": "sha256:3e2f"}},
		{Kind: audit.KindPolicyDecision, Outcome: audit.OutcomeAllowed, Container: web, Image: img, Policy: pol},
		{Kind: audit.KindRuntimeInvoked, Outcome: audit.OutcomeSuccess, Container: web, Image: img,
			Fields: map[string]any{"runtime.command": "run"}},
		{Kind: audit.KindContainerStarted, Outcome: audit.OutcomeSuccess, Container: running, Image: img},
		{Kind: audit.KindSeccompDenied, Outcome: audit.OutcomeDenied, Container: running,
			Reason: "seccomp errno on syscall ptrace by pid 31340",
			Fields: map[string]any{"syscall.name": "ptrace", "syscall.nr": 101, "syscall.arch": "amd64",
				"seccomp.action": "errno", "process.pid": 31340, "process.name": "gdb\x1b[31m"}},
		{Kind: audit.KindContainerSignal, Outcome: audit.OutcomeSuccess, Container: running, Image: img,
			Fields: map[string]any{"signal": "SIGTERM"}},
		{Kind: audit.KindContainerExited, Outcome: audit.OutcomeSuccess, Container: running, Image: img,
			Fields: map[string]any{"exit.code": 137, "oom_killed": true}},
		{Kind: audit.KindContainerRemoved, Outcome: audit.OutcomeSuccess, Container: web, Image: img},
		{Kind: audit.KindImageResolved, Outcome: audit.OutcomeSuccess, Container: bad, Image: badImg},
		{Kind: audit.KindSignatureVerdict, Outcome: audit.OutcomeFailure, Reason: "no signature found", Container: bad, Image: badImg,
			Fields: map[string]any{"signature.verified": false}},
		{Kind: audit.KindPolicyDecision, Outcome: audit.OutcomeDenied, Reason: "2 violations", Container: bad, Image: badImg,
			Policy: &audit.PolicyRef{Name: "restricted", Hash: "sha256:9f9f", InputHash: "sha256:1234", Violations: []any{
				map[string]any{"id": "privileged", "msg": "privileged containers are not allowed", "field": "request.privileged", "fix": "drop --privileged"},
				map[string]any{"id": "unsigned-image", "msg": "image signature not verified", "field": "signature.verified", "fix": "sign the image"},
			}}},
		{Kind: audit.KindContainerDenied, Outcome: audit.OutcomeDenied, Reason: "denied by policy", Container: bad, Image: badImg},
	}
	for _, e := range events {
		mustAppend(t, tr, e)
	}
	if err := tr.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFixtureTrailIsReproducible(t *testing.T) {
	if updateFixtures() {
		der, err := x509.MarshalPKIXPublicKey(fixtureKey().Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if err := os.WriteFile(filepath.Join(fixtureDir, "fixture-key.pub"), pubPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := writeFixtureTrail(t, t.TempDir())
	for _, pair := range [][2]string{
		{path, filepath.Join(fixtureDir, "trail-v1.jsonl")},
		{audit.CheckpointPath(path), filepath.Join(fixtureDir, "trail-v1.jsonl.checkpoint")},
	} {
		got, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		if updateFixtures() {
			if err := os.WriteFile(pair[1], got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a freshly written trail: the record format changed.\n"+
				"If that is intended, regenerate with SECRUN_UPDATE_FIXTURES=1 and document the change in docs/audit-fields.md.", pair[1])
		}
	}
}

func TestFixtureTrailVerifiesWithItsPublicKey(t *testing.T) {
	pub, err := audit.LoadPublicKey(filepath.Join(fixtureDir, "fixture-key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(fixtureKey().Public()) {
		t.Fatal("fixture-key.pub is not the fixture key")
	}
	rep := mustVerify(t, []string{filepath.Join(fixtureDir, "trail-v1.jsonl")}, pub)
	if rep.Records != 16 || rep.SignedSeq != 15 || !rep.Trusted || len(rep.Warnings) != 0 {
		t.Errorf("report = %+v", rep)
	}
}

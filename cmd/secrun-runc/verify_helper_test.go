package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/verify"
)

// TestVerifyHelper: secrun-runc-verify prints a verdict when it reached one
// and fails (so secrun-runc refuses) when it could not check.
func TestVerifyHelper(t *testing.T) {
	_, helper := binaries(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	noPassword := func(bool) ([]byte, error) { return []byte{}, nil }
	if err := verify.GenerateKeyPair(keys, noPassword); err != nil {
		t.Fatal(err)
	}
	host := imagetest.Registry(t)
	img := imagetest.BusyboxImage(t)
	imagetest.Push(t, host+"/app:1", img)
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/app@" + h.String()
	trust := filepath.Join(dir, "trust.yaml")
	writeText(t, trust, "rules:\n- images: [\""+host+"/**\", \"127.0.0.1:1/**\"]\n  keys: [keys/cosign.pub]\n  insecureIgnoreTlog: true\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verdict := func(t *testing.T, args ...string) (policy.SignatureInfo, string, error) {
		t.Helper()
		out, err := command(ctx, nil, helper, args...)
		var info policy.SignatureInfo
		if err == nil {
			if jerr := json.Unmarshal([]byte(out), &info); jerr != nil {
				t.Fatalf("verdict %q: %v", out, jerr)
			}
		}
		return info, out, err
	}

	info, out, err := verdict(t, "--trust", trust, "--state", dir, ref, h.String())
	if err != nil || info.Verified || !strings.Contains(info.Error, "is not signed") {
		t.Fatalf("unsigned: %+v %v\n%s", info, err, out)
	}
	sig, err := verify.Sign(ctx, filepath.Join(keys, verify.PrivateKeyFile), noPassword, h, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.PushSignature(ctx, ref, h, sig); err != nil {
		t.Fatal(err)
	}
	info, out, err = verdict(t, "--trust", trust, "--state", dir, ref, h.String())
	if err != nil || !info.Verified || info.Digest != h.String() || len(info.Signers) != 1 {
		t.Fatalf("signed: %+v %v\n%s", info, err, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad digest", []string{"--trust", trust, ref, "sha256:nothex"}, `digest "sha256:nothex"`},
		{"missing trust", []string{"--trust", filepath.Join(dir, "none.yaml"), ref, h.String()}, "read trust file"},
		{"registry down", []string{"--trust", trust, "127.0.0.1:1/app@" + h.String(), h.String()}, "secrun-runc-verify:"},
		{"usage", []string{ref}, "usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, out, err := verdict(t, tc.args...); err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

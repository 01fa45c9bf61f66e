// Command secrun-runc-verify checks the cosign signature of one image
// digest for secrun-runc, which runs it only when its config names a trust
// file (so that secrun-runc itself does not link the sigstore code):
//
//	secrun-runc-verify --trust FILE [--state DIR] REF DIGEST
//
// It reads the signature from REF's registry ("sha256-<hex>.sig"), prints
// the verdict as the policy input's signature object (JSON) and exits 0
// when it reached a verdict, verified or not; 125 when it could not check.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/secrun/secrun/verify"
)

func main() {
	fs := flag.NewFlagSet("secrun-runc-verify", flag.ContinueOnError)
	trust := fs.String("trust", "", "trust config (which keys sign which images)")
	state := fs.String("state", "", "secrun-runc state directory (verdict cache in STATE/verdicts)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *trust == "" || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: secrun-runc-verify --trust FILE [--state DIR] REF DIGEST")
		os.Exit(2)
	}
	if err := run(context.Background(), *trust, *state, fs.Arg(0), fs.Arg(1)); err != nil {
		fmt.Fprintf(os.Stderr, "secrun-runc-verify: %v\n", err)
		os.Exit(125)
	}
}

func run(ctx context.Context, trustFile, state, ref, digest string) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("digest %q: %w", digest, err)
	}
	t, err := verify.LoadTrust(trustFile)
	if err != nil {
		return err
	}
	// Registry credentials, if any, are root's (docker login / podman login).
	src, err := verify.RegistrySignatures(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	cache := ""
	if state != "" {
		cache = filepath.Join(state, "verdicts")
	}
	v, err := verify.NewVerifier(t, cache).Verify(ctx, verify.Subject{Ref: ref, Digest: h, Signatures: src})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(v.PolicyInfo())
}

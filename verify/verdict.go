package verify

import (
	"context"
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/policy"
)

// Verifier decides whether an image digest carries a trusted signature.
//
// Verify returns an error only when it could not check (an unreadable store, a
// broken cache, a cancelled context); the caller must then deny. A clean "not
// signed", "signed by an untrusted key" or "signature is for another image" is
// a Verdict with Verified false and Error saying why.
type Verifier interface {
	Verify(ctx context.Context, s Subject) (Verdict, error)
}

// Subject is the image to check.
type Subject struct {
	// Ref is the image reference as the user named it. It selects the trust
	// rule; it is never resolved again.
	Ref string
	// Digest is the manifest digest that was resolved once and will be
	// unpacked. A signature must cover this digest: its own, or, when
	// Index is set, the index's.
	Digest v1.Hash
	// Signatures reads the cosign signature image stored for a digest.
	Signatures SignatureSource
	// Index is the multi-platform image index Digest was selected from, if
	// any. `cosign sign` of a multi-platform tag signs the index digest
	// only; a signature there covers every manifest the index lists.
	Index *Index
}

// Index is an image index as stored: its digest and its manifest, which
// Verify hashes and reads to check that it lists Subject.Digest.
type Index struct {
	Digest   v1.Hash
	Manifest []byte
}

// SignatureSource reads the cosign signature image ("sha256-<hex>.sig") of a
// manifest digest. *image.Store satisfies it; RegistrySignatures and
// LayoutSignatures read registries and OCI image layouts. When there is no
// signature image the error wraps ErrNoSignature, fs.ErrNotExist or
// image.ErrNotFound.
type SignatureSource interface {
	Signature(digest v1.Hash) (v1.Image, error)
}

// Verdict is the outcome of checking one digest against the trust config.
type Verdict struct {
	// Verified is true when at least one signature on Digest verifies with a
	// key or identity that the matching trust rule names.
	Verified bool `json:"verified"`
	// Signers names who signed: "key:sha256:<hex of the DER public key>" for
	// keys, "identity:issuer=<issuer>,subject=<subject>" for keyless
	// certificates. Sorted, never nil.
	Signers []string `json:"signers"`
	// Digest is the manifest digest that was checked.
	Digest string `json:"digest"`
	// Index is the digest of the image index whose signature verified,
	// when Digest's own signatures did not; the index lists Digest.
	Index string `json:"index,omitempty"`
	// Error says why Verified is false; empty when Verified is true.
	Error string `json:"error,omitempty"`
	// Cached is true when the verdict came from the verdict cache.
	Cached bool `json:"cached,omitempty"`
}

// PolicyInfo is the verdict as the policy input document carries it.
func (v Verdict) PolicyInfo() policy.SignatureInfo {
	signers := make([]string, len(v.Signers))
	copy(signers, v.Signers)
	info := policy.SignatureInfo{
		Verified: v.Verified,
		Signers:  signers,
		Digest:   v.Digest,
		Index:    v.Index,
		Error:    v.Error,
	}
	if !info.Verified && info.Error == "" {
		// A verdict built by hand without a reason must still read as denied.
		info.Error = "signature not verified"
	}
	return info
}

// ErrNoSignature is wrapped by SignatureSource implementations in this
// package when a digest has no signature image.
var ErrNoSignature = errors.New("no signature image")

// Exit statuses of `secrun verify`, as documented for the CLI.
const (
	ExitVerified = 0
	ExitError    = 125 // could not check: fail closed
	ExitDenied   = 126
)

// ExitCode maps the result of Verify to the exit status of `secrun verify`.
func ExitCode(v Verdict, err error) int {
	switch {
	case err != nil:
		return ExitError
	case v.Verified:
		return ExitVerified
	default:
		return ExitDenied
	}
}

// StoredSubject is the Subject for an image in the store: its signatures
// are the store's, and the image index it was selected from, when the
// store holds that index's manifest, is offered for index signatures.
func StoredSubject(st *image.Store, img *image.Image) (Subject, error) {
	s := Subject{Ref: img.Name, Digest: img.Digest, Signatures: st}
	raw, ok, err := st.IndexManifest(img)
	if err != nil {
		return Subject{}, err
	}
	if ok {
		s.Index = &Index{Digest: img.IndexDigest, Manifest: raw}
	}
	return s, nil
}

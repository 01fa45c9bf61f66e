package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/policy"
)

// rawSignature is one layer of a cosign signature image, free of sigstore
// types: the payload bytes and the layer descriptor's annotations.
type rawSignature struct {
	payload     []byte
	mediaType   types.MediaType
	annotations map[string]string
}

// sigChecker checks one signature against one trusted key or one set of
// keyless identities. check returns who signed, or an error saying why the
// signature is not acceptable for digest.
type sigChecker interface {
	check(ctx context.Context, sig rawSignature, digest v1.Hash) (signer string, err error)
}

// maxReasons is how many per-signature reasons a verdict's Error lists.
const maxReasons = 3

type verifier struct {
	trust *Trust
	cache *verdictCache
}

// NewVerifier returns the cosign-backed Verifier for t. Positive verdicts are
// cached in memory and, when cacheDir is not empty (secrun uses
// ROOT/verdicts), on disk.
func NewVerifier(t *Trust, cacheDir string) Verifier {
	return &verifier{trust: t, cache: newVerdictCache(cacheDir)}
}

func (v *verifier) Verify(ctx context.Context, s Subject) (Verdict, error) {
	if err := ctx.Err(); err != nil {
		return Verdict{}, fmt.Errorf("verify %s: %w", s.Ref, err)
	}
	if v.trust == nil {
		return Verdict{}, errors.New("verify: no trust config loaded")
	}
	if s.Digest.Algorithm != "sha256" || len(s.Digest.Hex) != 64 {
		return Verdict{}, fmt.Errorf("verify %s: %q is not a sha256 manifest digest", s.Ref, s.Digest.String())
	}
	digest := s.Digest.String()
	deny := func(format string, args ...any) (Verdict, error) {
		return Verdict{Signers: []string{}, Digest: digest, Error: fmt.Sprintf(format, args...)}, nil
	}
	if s.Ref == "" {
		return deny("image %s has no reference to match against trust rules: unsigned by definition", digest)
	}
	r := v.trust.match(s.Ref)
	if r == nil {
		return deny("image %s matches no rule in trust %s: unsigned by definition (add a rule for it to verify signatures)", s.Ref, v.trust.source)
	}

	key := cacheKey(digest, r)
	cached, ok, err := v.cache.get(key, digest)
	if err != nil {
		return Verdict{}, fmt.Errorf("verify %s: %w", s.Ref, err)
	}
	if ok {
		cached.Cached = true
		cached.Signers = slices.Clone(cached.Signers)
		return cached, nil
	}

	if !haveCosign {
		// The light secrun front answers from the verdict cache only.
		return Verdict{}, fmt.Errorf("verify %s: %w", s.Ref, policy.ErrNoEngine)
	}
	if s.Signatures == nil {
		return Verdict{}, fmt.Errorf("verify %s: no signature source given", s.Ref)
	}
	signers, why, err := v.check(ctx, s.Signatures, r, s.Ref, s.Digest)
	if err != nil {
		return Verdict{}, err
	}
	var index string
	if len(signers) == 0 && s.Index != nil {
		if err := s.Index.lists(s.Digest); err != nil {
			why += "; " + err.Error()
		} else {
			isigners, iwhy, err := v.check(ctx, s.Signatures, r, s.Ref, s.Index.Digest)
			if err != nil {
				return Verdict{}, err
			}
			if len(isigners) > 0 {
				signers, index = isigners, s.Index.Digest.String()
			} else {
				why += "; and for the image index it was selected from: " + iwhy
			}
		}
	}
	if len(signers) == 0 {
		return deny("%s", why)
	}
	verdict := Verdict{Verified: true, Signers: signers, Digest: digest, Index: index}
	if err := v.cache.put(key, verdict); err != nil {
		return Verdict{}, fmt.Errorf("verify %s: %w", s.Ref, err)
	}
	verdict.Signers = slices.Clone(signers)
	return verdict, nil
}

// check verifies the signatures stored for digest under rule r. It returns
// who signed, sorted, or, when nobody did, why not.
func (v *verifier) check(ctx context.Context, src SignatureSource, r *rule, ref string, h v1.Hash) (signers []string, why string, err error) {
	digest := h.String()
	img, err := src.Signature(h)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Sprintf("image %s (%s) is not signed: no %s signature artifact", ref, digest, SignatureTag(h)), nil
		}
		return nil, "", fmt.Errorf("verify %s: read signatures: %w", ref, err)
	}
	sigs, err := readSignatures(img)
	if err != nil {
		if isArtifactError(err) {
			return nil, fmt.Sprintf("image %s (%s): signature artifact is malformed: %v", ref, digest, err), nil
		}
		return nil, "", fmt.Errorf("verify %s: %w", ref, err)
	}
	if len(sigs) == 0 {
		return nil, fmt.Sprintf("image %s (%s) is not signed: its signature artifact holds no signatures", ref, digest), nil
	}

	var reasons []string
	for i, sig := range sigs {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("verify %s: %w", ref, err)
		}
		if err := checkClaim(sig.payload, digest); err != nil {
			reasons = append(reasons, fmt.Sprintf("signature %d: %v", i+1, err))
			continue
		}
		var why []string
		for _, c := range r.checkers {
			signer, err := c.check(ctx, sig, h)
			if err != nil {
				why = append(why, oneLine(err.Error()))
				continue
			}
			if !slices.Contains(signers, signer) {
				signers = append(signers, signer)
			}
		}
		if len(why) == len(r.checkers) {
			reasons = append(reasons, fmt.Sprintf("signature %d: %s", i+1, strings.Join(why, "; ")))
		}
	}
	if len(signers) == 0 {
		if len(reasons) > maxReasons {
			reasons = append(reasons[:maxReasons], fmt.Sprintf("and %d more", len(reasons)-maxReasons))
		}
		return nil, fmt.Sprintf("image %s (%s): no signature verifies under rule %d of trust %s: %s",
			ref, digest, r.index, v.trust.source, strings.Join(reasons, "; ")), nil
	}
	slices.Sort(signers)
	return signers, "", nil
}

// lists checks that the index's manifest is the one its digest names and
// that it lists the image manifest m.
func (ix *Index) lists(m v1.Hash) error {
	got, _, err := v1.SHA256(bytes.NewReader(ix.Manifest))
	if err != nil {
		return fmt.Errorf("image index %s: %w", ix.Digest, err)
	}
	if got != ix.Digest {
		return fmt.Errorf("the image index given as %s hashes to %s: not the index that was signed", ix.Digest, got)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(ix.Manifest))
	if err != nil {
		return fmt.Errorf("image index %s: %w", ix.Digest, err)
	}
	for _, d := range im.Manifests {
		if d.Digest == m && (d.MediaType.IsImage() || d.MediaType == "") {
			return nil
		}
	}
	return fmt.Errorf("image index %s does not list %s: its signature does not cover this image", ix.Digest, m)
}

// checkClaim reads the digest a simple-signing payload names and compares it
// with the digest being verified, for a clear message. cosign's
// SimpleClaimVerifier repeats the same check after the signature verifies.
func checkClaim(p []byte, digest string) error {
	var sci payload.SimpleContainerImage
	if err := json.Unmarshal(p, &sci); err != nil {
		return fmt.Errorf("payload is not a cosign simple-signing document: %w", err)
	}
	claimed := sci.Critical.Image.DockerManifestDigest
	if claimed != digest {
		if claimed == "" {
			return errors.New("payload names no image digest")
		}
		return fmt.Errorf("signs %s, not this image (%s): a signature copied from another image, or a manifest changed after signing", claimed, digest)
	}
	return nil
}

// isNotFound reports whether a SignatureSource error means "no signature".
func isNotFound(err error) bool {
	return errors.Is(err, ErrNoSignature) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, image.ErrNotFound)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

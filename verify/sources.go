package verify

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Annotations cosign's `save` command puts on the entries of an OCI layout.
const (
	annKind     = "kind"
	kindSigs    = "dev.cosignproject.cosign/sigs"
	annRefName  = "org.opencontainers.image.ref.name"
	annRefShort = "io.containerd.image.name"
)

// RegistrySignatures reads signatures the way `cosign verify` does: the
// image tagged "sha256-<hex>.sig" in the repository of ref.
func RegistrySignatures(ref string, opts ...remote.Option) (SignatureSource, error) {
	r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://"))
	if err != nil {
		return nil, fmt.Errorf("signature repository %q: %w", ref, err)
	}
	return &registrySource{repo: r.Context(), opts: opts}, nil
}

type registrySource struct {
	repo name.Repository
	opts []remote.Option
}

func (s *registrySource) Signature(digest v1.Hash) (v1.Image, error) {
	tag := s.repo.Tag(SignatureTag(digest))
	img, err := remote.Image(tag, s.opts...)
	if err != nil {
		if isRemoteNotFound(err) {
			return nil, fmt.Errorf("%s: %w", tag, ErrNoSignature)
		}
		return nil, fmt.Errorf("fetch %s: %w", tag, err)
	}
	return img, nil
}

func isRemoteNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// LayoutSignatures reads signatures from an OCI image layout directory: the
// entry named "sha256-<hex>.sig" (org.opencontainers.image.ref.name, as
// secrun's store and `crane` name it), or, in a layout written by
// `cosign save`, the signatures entry of the saved image when that image is
// the digest asked for.
func LayoutSignatures(path string) SignatureSource {
	return &layoutSource{path: path}
}

type layoutSource struct{ path string }

func (s *layoutSource) Signature(digest v1.Hash) (v1.Image, error) {
	p, err := layout.FromPath(s.path)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", s.path, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", s.path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index of OCI layout %s: %w", s.path, err)
	}
	want := SignatureTag(digest)
	var saved []v1.Hash
	for _, d := range im.Manifests {
		for _, k := range []string{annRefName, annRefShort} {
			n := d.Annotations[k]
			if n == want || strings.HasSuffix(n, ":"+want) {
				return layoutImage(idx, s.path, d.Digest)
			}
		}
		if d.Annotations[annKind] == kindSigs {
			saved = append(saved, d.Digest)
		}
	}
	// `cosign save` gives its signatures entry no name: which image it signs
	// is in the payloads.
	for _, h := range saved {
		img, err := layoutImage(idx, s.path, h)
		if err != nil {
			return nil, err
		}
		sigs, err := readSignatures(img)
		if err != nil {
			return nil, fmt.Errorf("OCI layout %s: %w", s.path, err)
		}
		for _, sig := range sigs {
			if checkClaim(sig.payload, digest.String()) == nil {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("OCI layout %s has no %s: %w", s.path, want, ErrNoSignature)
}

func layoutImage(idx v1.ImageIndex, path string, h v1.Hash) (v1.Image, error) {
	img, err := idx.Image(h)
	if err != nil {
		return nil, fmt.Errorf("read signature image %s from OCI layout %s: %w", h, path, err)
	}
	return img, nil
}

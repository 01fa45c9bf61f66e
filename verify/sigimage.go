package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Limits on a signature image, which is attacker-controlled input. A simple
// signing payload is a few hundred bytes; cosign itself allows 1000 layers.
const (
	maxSignatureLayers = 1000
	maxPayloadSize     = 1 << 20
)

// artifactError marks a signature image that is readable but malformed: a
// reason to deny, not a failure to check.
type artifactError struct{ err error }

func (e *artifactError) Error() string { return e.err.Error() }
func (e *artifactError) Unwrap() error { return e.err }

func badArtifact(format string, args ...any) error {
	return &artifactError{fmt.Errorf(format, args...)}
}

// SignatureTag is the tag (and OCI layout ref name) under which cosign keeps
// the signatures of digest: "sha256-<hex>.sig".
func SignatureTag(digest v1.Hash) string {
	return digest.Algorithm + "-" + digest.Hex + ".sig"
}

// readSignatures reads every signature layer of a cosign signature image and
// checks each layer's bytes against its descriptor digest.
func readSignatures(img v1.Image) ([]rawSignature, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read signature manifest: %w", err)
	}
	if m == nil {
		return nil, badArtifact("signature image has no manifest")
	}
	if len(m.Layers) > maxSignatureLayers {
		return nil, badArtifact("signature image has %d layers, more than %d", len(m.Layers), maxSignatureLayers)
	}
	sigs := make([]rawSignature, 0, len(m.Layers))
	for i, desc := range m.Layers {
		if desc.Size < 0 || desc.Size > maxPayloadSize {
			return nil, badArtifact("signature layer %d is %d bytes, more than %d", i+1, desc.Size, maxPayloadSize)
		}
		if desc.Digest.Algorithm != "sha256" {
			return nil, badArtifact("signature layer %d has digest algorithm %q, want sha256", i+1, desc.Digest.Algorithm)
		}
		payload, err := readLayer(img, desc)
		if err != nil {
			return nil, fmt.Errorf("signature layer %d: %w", i+1, err)
		}
		sigs = append(sigs, rawSignature{
			payload:     payload,
			mediaType:   desc.MediaType,
			annotations: desc.Annotations,
		})
	}
	return sigs, nil
}

func readLayer(img v1.Image, desc v1.Descriptor) ([]byte, error) {
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	// The payload is stored as is; "compressed" is the raw blob.
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, io.LimitReader(rc, maxPayloadSize+1))
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	b := buf.Bytes()
	if len(b) > maxPayloadSize {
		return nil, badArtifact("payload %s is larger than %d bytes", desc.Digest, maxPayloadSize)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != desc.Digest.Hex {
		return nil, badArtifact("payload does not match its digest %s", desc.Digest)
	}
	return b, nil
}

// isArtifactError reports whether err says the signature image is malformed.
func isArtifactError(err error) bool {
	var ae *artifactError
	return errors.As(err, &ae)
}

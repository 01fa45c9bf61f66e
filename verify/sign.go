//go:build !secrun_noengine

package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// PassFunc returns the password of a private key; confirm is true when a new
// key is being created. It has the shape of cosign.PassFunc.
type PassFunc func(confirm bool) ([]byte, error)

// PasswordEnv is the variable cosign and secrun read a key password from.
const PasswordEnv = "COSIGN_PASSWORD"

// Key file names written by GenerateKeyPair, as cosign names them.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

var (
	// ErrNoPassword means COSIGN_PASSWORD is not set.
	ErrNoPassword = errors.New(PasswordEnv + " is not set")
	// ErrBadPassword means a private key did not decrypt with the password.
	ErrBadPassword = errors.New("wrong password or damaged key")
)

// PasswordFromEnv reads the key password from COSIGN_PASSWORD. An empty but
// set variable is the empty password, as with cosign.
func PasswordFromEnv() PassFunc {
	return func(bool) ([]byte, error) {
		pw, ok := os.LookupEnv(PasswordEnv)
		if !ok {
			return nil, ErrNoPassword
		}
		return []byte(pw), nil
	}
}

// GenerateKeyPair writes a new ECDSA P-256 key pair into dir as cosign.key
// (cosign's encrypted "ENCRYPTED SIGSTORE PRIVATE KEY" format, mode 0600) and
// cosign.pub (PEM public key), exactly as `cosign generate-key-pair` does. It
// never overwrites existing files.
func GenerateKeyPair(dir string, pass PassFunc) error {
	if pass == nil {
		pass = PasswordFromEnv()
	}
	priv, pub := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{priv, pub} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists: move it away or generate the key pair in another directory", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	kb, err := cosign.GenerateKeyPair(cosign.PassFunc(pass))
	if err != nil {
		if errors.Is(err, ErrNoPassword) {
			return fmt.Errorf("generate key pair: %w: set it to the password that will encrypt %s (an empty value means no password)", err, PrivateKeyFile)
		}
		return fmt.Errorf("generate key pair: %w", err)
	}
	if err := writeNew(priv, kb.PrivateBytes, 0o600); err != nil {
		return err
	}
	if err := writeNew(pub, kb.PublicBytes, 0o644); err != nil {
		if rerr := os.Remove(priv); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadSigner loads a cosign private key (encrypted cosign or sigstore PEM),
// decrypting it with pass. A key whose password is not set is tried with the
// empty password before failing with ErrNoPassword.
func LoadSigner(keyPath string, pass PassFunc) (signature.SignerVerifier, error) {
	data, err := readLimited(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing key %s is not PEM: use a cosign.key from `secrun generate-key-pair` or `cosign generate-key-pair`", keyPath)
	}
	if block.Type != cosign.SigstorePrivateKeyPemType && block.Type != cosign.CosignPrivateKeyPemType {
		return nil, fmt.Errorf("signing key %s holds %q, not a cosign private key (%s): use a cosign.key from `secrun generate-key-pair` or `cosign import-key-pair`", keyPath, block.Type, cosign.SigstorePrivateKeyPemType)
	}
	if pass == nil {
		pass = PasswordFromEnv()
	}
	pw, err := pass(false)
	missing := errors.Is(err, ErrNoPassword)
	if err != nil && !missing {
		return nil, fmt.Errorf("password for signing key %s: %w", keyPath, err)
	}
	sv, err := cosign.LoadPrivateKey(data, pw, nil)
	if err != nil {
		if missing {
			return nil, fmt.Errorf("signing key %s is encrypted and %w: set it to the key's password", keyPath, ErrNoPassword)
		}
		return nil, fmt.Errorf("decrypt signing key %s with %s: %w: %w", keyPath, PasswordEnv, ErrBadPassword, err)
	}
	return sv, nil
}

// Sign signs digest with the cosign private key at keyPath and returns the
// signature image: one layer holding the cosign simple-signing payload, with
// the base64 signature in the dev.cosignproject.cosign/signature annotation,
// the artifact cosign pushes as "sha256-<hex>.sig". ref names the image in
// the payload's docker-reference (the repository, for registry references).
func Sign(ctx context.Context, keyPath string, pass PassFunc, digest v1.Hash, ref string) (v1.Image, error) {
	if digest.Algorithm != "sha256" || len(digest.Hex) != 64 {
		return nil, fmt.Errorf("sign: %q is not a sha256 manifest digest", digest.String())
	}
	sv, err := LoadSigner(keyPath, pass)
	if err != nil {
		return nil, err
	}
	pl, err := simpleSigningPayload(digest, ref)
	if err != nil {
		return nil, err
	}
	raw, err := sv.SignMessage(bytes.NewReader(pl), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("sign %s with %s: %w", digest, keyPath, err)
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return nil, fmt.Errorf("build signature: %w", err)
	}
	sigs, err := mutate.AppendSignatures(empty.Signatures(), false, sig)
	if err != nil {
		return nil, fmt.Errorf("build signature image: %w", err)
	}
	return sigs, nil
}

// simpleSigningPayload is cosign's payload for digest. Registry references
// claim their repository, as `cosign sign` does; local references (oci:,
// docker-archive:, ...) claim the reference as written.
func simpleSigningPayload(digest v1.Hash, ref string) ([]byte, error) {
	if ref != "" && !isTransportRef(ref) {
		if r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://")); err == nil {
			d, err := name.NewDigest(r.Context().Name() + "@" + digest.String())
			if err != nil {
				return nil, fmt.Errorf("sign %s: %w", ref, err)
			}
			b, err := (payload.Cosign{Image: d}).MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("encode payload: %w", err)
			}
			return b, nil
		}
	}
	b, err := json.Marshal(payload.SimpleContainerImage{
		Critical: payload.Critical{
			Identity: payload.Identity{DockerReference: ref},
			Image:    payload.Image{DockerManifestDigest: digest.String()},
			Type:     payload.CosignSignatureType,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return b, nil
}

func isTransportRef(ref string) bool {
	for _, t := range transports {
		if strings.HasPrefix(ref, t) {
			return true
		}
	}
	return false
}

// AppendSignatures returns a signature image holding the signatures of base
// (which may be nil) followed by those of add that base lacks, as cosign
// does when an image is signed again.
func AppendSignatures(base, add v1.Image) (v1.Image, error) {
	var all []oci.Signature
	seen := map[string]bool{}
	for _, img := range []v1.Image{base, add} {
		if img == nil {
			continue
		}
		raws, err := readSignatures(img)
		if err != nil {
			return nil, fmt.Errorf("merge signatures: %w", err)
		}
		for _, raw := range raws {
			sum := bytesFingerprint(raw.payload) + " " + raw.annotations[annSignature]
			if seen[sum] {
				continue
			}
			seen[sum] = true
			s, err := ociSignature(raw)
			if err != nil {
				return nil, fmt.Errorf("merge signatures: %w", err)
			}
			all = append(all, s)
		}
	}
	sigs, err := mutate.AppendSignatures(empty.Signatures(), false, all...)
	if err != nil {
		return nil, fmt.Errorf("merge signatures: %w", err)
	}
	return sigs, nil
}

// SignatureStore is where `secrun sign` keeps signatures; *image.Store
// satisfies it.
type SignatureStore interface {
	SignatureSource
	PutSignature(digest v1.Hash, sig v1.Image) error
}

// SignOptions are the inputs of `secrun sign`.
type SignOptions struct {
	// KeyPath is the cosign private key.
	KeyPath string
	// Pass returns its password; nil reads COSIGN_PASSWORD.
	Pass PassFunc
	// Ref is the image reference as the user named it.
	Ref string
	// Push also pushes "sha256-<hex>.sig" to Ref's registry repository.
	Push bool
	// Remote are options for the push (auth, transport).
	Remote []remote.Option
}

// SignAndStore signs digest, adds the signature to those already in store
// and, when o.Push is set, to those in Ref's registry repository. It returns
// the signature image now in the store.
func SignAndStore(ctx context.Context, store SignatureStore, digest v1.Hash, o SignOptions) (v1.Image, error) {
	sig, err := Sign(ctx, o.KeyPath, o.Pass, digest, o.Ref)
	if err != nil {
		return nil, err
	}
	existing, err := store.Signature(digest)
	if err != nil {
		if !isNotFound(err) {
			return nil, fmt.Errorf("read existing signatures of %s: %w", digest, err)
		}
		existing = nil
	}
	merged, err := AppendSignatures(existing, sig)
	if err != nil {
		return nil, err
	}
	if err := store.PutSignature(digest, merged); err != nil {
		return nil, fmt.Errorf("store signature of %s: %w", digest, err)
	}
	if o.Push {
		if err := PushSignature(ctx, o.Ref, digest, sig, o.Remote...); err != nil {
			return nil, err
		}
	}
	return merged, nil
}

// PushSignature adds the signatures in sig to "sha256-<hex>.sig" in the
// registry repository of ref, keeping the ones already there.
func PushSignature(ctx context.Context, ref string, digest v1.Hash, sig v1.Image, opts ...remote.Option) error {
	if isTransportRef(ref) {
		return fmt.Errorf("push signature: %s is not a registry reference", ref)
	}
	r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://"))
	if err != nil {
		return fmt.Errorf("push signature: %s is not a registry reference: %w", ref, err)
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts...)
	tag := r.Context().Tag(SignatureTag(digest))
	merged := sig
	existing, err := remote.Image(tag, ropts...)
	switch {
	case err == nil:
		if merged, err = AppendSignatures(existing, sig); err != nil {
			return fmt.Errorf("push signature to %s: %w", tag, err)
		}
	case isRemoteNotFound(err):
		// The first signature of this digest in the repository.
	default:
		return fmt.Errorf("push signature: read %s: %w", tag, err)
	}
	if err := remote.Write(tag, merged, ropts...); err != nil {
		return fmt.Errorf("push signature to %s: %w", tag, err)
	}
	return nil
}

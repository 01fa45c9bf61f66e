package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ImportOptions control Import and Resolve.
type ImportOptions struct {
	// Insecure allows a registry over plain http. Registries on loopback
	// and private addresses use plain http regardless.
	Insecure bool
	// Platform selects the manifest of a multi-platform image, as
	// "os/arch[/variant]"; empty means linux and the host's architecture.
	Platform string
}

// containerdNameAnnotation is how containerd's exports name an image in an
// OCI layout, next to the tag-only ref name.
const containerdNameAnnotation = "io.containerd.image.name"

// source is an image opened from a transport, ready to be copied in.
type source struct {
	img   v1.Image
	index v1.Hash // zero unless img was selected from an index
	// indexRaw is that index's manifest, kept so that a signature on the
	// index can later be shown to cover img (Store.IndexManifest).
	indexRaw []byte
	// sigs holds cosign signature images keyed by the digest they sign.
	sigs    map[v1.Hash]v1.Image
	cleanup func()
}

func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("invalid platform %q: %w", s, err)
	}
	return *p, nil
}

// Import copies the image ref names into the store, with its cosign
// signature when the source has one, and returns it. A registry tag is
// resolved to a digest once; everything after is fetched by digest. On
// failure nothing new is left in the store.
func (s *Store) Import(ctx context.Context, ref string, opts ImportOptions) (*Image, error) {
	r, err := parseReference(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	gl, err := s.gcLock(false)
	if err != nil {
		return nil, err
	}
	d, err := s.importLocked(ctx, r, plat)
	gl.Unlock()
	if err != nil {
		// Blobs written before the failure are unreferenced: collect them.
		if cerr := s.collect(); cerr != nil {
			return nil, fmt.Errorf("%w (and cleaning up failed: %v)", err, cerr)
		}
		return nil, err
	}
	return s.load(d)
}

func (s *Store) importLocked(ctx context.Context, r reference, plat v1.Platform) (v1.Descriptor, error) {
	src, err := s.openSource(ctx, r, plat)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer src.cleanup()
	d, err := s.writeImage(ctx, src.img, fmt.Sprintf("image %q", r.name))
	if err != nil {
		return v1.Descriptor{}, err
	}
	d.Annotations = map[string]string{}
	if src.index != (v1.Hash{}) {
		if err := s.writeBytes(ctx, src.index, src.indexRaw); err != nil {
			return v1.Descriptor{}, fmt.Errorf("image %q: its image index: %w", r.name, err)
		}
		d.Annotations[AnnotationIndexDigest] = src.index.String()
	}
	if cfg, err := src.img.ConfigFile(); err == nil && cfg.OS != "" {
		d.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	}
	sigDescs := map[string]v1.Descriptor{}
	for signed, sig := range src.sigs {
		sd, err := s.writeImage(ctx, sig, fmt.Sprintf("signature of image %q", r.name))
		if err != nil {
			return v1.Descriptor{}, err
		}
		sigDescs[signatureName(signed)] = sd
	}
	err = s.updateIndex(func(idx *v1.IndexManifest) error {
		setEntry(idx, r.name, d)
		for n, sd := range sigDescs {
			setEntry(idx, n, sd)
		}
		return nil
	})
	if err != nil {
		return v1.Descriptor{}, err
	}
	d.Annotations[AnnotationRefName] = r.name
	return d, nil
}

func (s *Store) openSource(ctx context.Context, r reference, plat v1.Platform) (*source, error) {
	switch r.kind {
	case transportDockerArchive:
		return dockerArchiveSource(r)
	case transportOCI:
		return ociLayoutSource(ctx, r.path, r.tag, plat, "oci layout")
	case transportOCIArchive:
		return s.ociArchiveSource(ctx, r, plat)
	default:
		return registrySource(ctx, r.reg, plat)
	}
}

func missingSource(kind, p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &notFoundError{msg: fmt.Sprintf("%s %q does not exist", kind, p)}
	}
	return fmt.Errorf("%s %q: %w", kind, p, err)
}

func dockerArchiveSource(r reference) (*source, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		return nil, missingSource("docker archive", r.path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("docker archive %q is not a regular file", r.path)
	}
	var tag *name.Tag
	if r.tag != "" {
		t, err := name.NewTag(r.tag)
		if err != nil {
			return nil, fmt.Errorf("docker archive %q: image name %q: %w", r.path, r.tag, err)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(r.path, tag)
	if err != nil {
		if r.tag != "" && strings.Contains(err.Error(), "not found in tarball") {
			return nil, &notFoundError{msg: fmt.Sprintf("image %q not found in docker archive %q", r.tag, r.path)}
		}
		return nil, fmt.Errorf("reading docker archive %q: %w", r.path, err)
	}
	return &source{img: img, cleanup: func() {}}, nil
}

func isCosignEntry(d v1.Descriptor) bool {
	if _, ok := signedDigest(d.Annotations[AnnotationRefName]); ok {
		return true
	}
	k := d.Annotations[cosignKindAnnotation]
	return k == cosignSigsKind || k == cosignAttsKind ||
		strings.HasSuffix(d.Annotations[AnnotationRefName], ".att") ||
		strings.HasSuffix(d.Annotations[AnnotationRefName], ".sbom")
}

func ociLayoutSource(ctx context.Context, dir, tag string, plat v1.Platform, kind string) (*source, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, derr := os.Stat(dir); derr != nil {
				return nil, missingSource(kind, dir, derr)
			}
			return nil, fmt.Errorf("%s %q has no index.json: not an OCI image layout", kind, dir)
		}
		return nil, fmt.Errorf("%s %q: %w", kind, dir, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s %q: index.json: %w", kind, dir, err)
	}
	var candidates []v1.Descriptor
	for _, m := range im.Manifests {
		if !isCosignEntry(m) {
			candidates = append(candidates, m)
		}
	}
	var chosen *v1.Descriptor
	switch {
	case tag != "":
		for i, m := range candidates {
			if m.Annotations[AnnotationRefName] == tag || m.Annotations[containerdNameAnnotation] == tag {
				chosen = &candidates[i]
				break
			}
		}
		if chosen == nil {
			return nil, &notFoundError{msg: fmt.Sprintf("image %q not found in %s %q%s", tag, kind, dir, tagList(candidates))}
		}
	case len(candidates) == 1:
		chosen = &candidates[0]
	case len(candidates) == 0:
		return nil, &notFoundError{msg: fmt.Sprintf("%s %q holds no image", kind, dir)}
	default:
		return nil, fmt.Errorf("%s %q holds %d images: name one as %s:TAG%s", kind, dir, len(candidates), dir, tagList(candidates))
	}
	src := &source{sigs: map[v1.Hash]v1.Image{}, cleanup: func() {}}
	switch {
	case chosen.MediaType.IsIndex():
		child, err := ii.ImageIndex(chosen.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s %q: index %s: %w", kind, dir, chosen.Digest, err)
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%s %q: index %s: %w", kind, dir, chosen.Digest, err)
		}
		if src.indexRaw, err = child.RawManifest(); err != nil {
			return nil, fmt.Errorf("%s %q: index %s: %w", kind, dir, chosen.Digest, err)
		}
		pd, err := pickPlatform(cm, plat)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", kind, dir, err)
		}
		if src.img, err = child.Image(pd.Digest); err != nil {
			return nil, fmt.Errorf("%s %q: image %s: %w", kind, dir, pd.Digest, err)
		}
		src.index = chosen.Digest
	case chosen.MediaType.IsImage() || chosen.MediaType == "":
		if src.img, err = ii.Image(chosen.Digest); err != nil {
			return nil, fmt.Errorf("%s %q: image %s: %w", kind, dir, chosen.Digest, err)
		}
	default:
		return nil, fmt.Errorf("%s %q: entry %s has unsupported media type %q", kind, dir, chosen.Digest, chosen.MediaType)
	}
	digest, err := src.img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, dir, err)
	}
	signed := []v1.Hash{digest}
	if src.index != (v1.Hash{}) {
		signed = append(signed, src.index)
	}
	for _, m := range im.Manifests {
		rn := m.Annotations[AnnotationRefName]
		for _, h := range signed {
			if rn == signatureName(h) {
				sig, err := ii.Image(m.Digest)
				if err != nil {
					return nil, fmt.Errorf("%s %q: signature %s: %w", kind, dir, rn, err)
				}
				src.sigs[h] = sig
			}
		}
		if rn == "" && m.Annotations[cosignKindAnnotation] == cosignSigsKind {
			// cosign save: the signature entry carries no ref name; which
			// image it signs is in its payload.
			sig, err := ii.Image(m.Digest)
			if err != nil {
				return nil, fmt.Errorf("%s %q: signature %s: %w", kind, dir, m.Digest, err)
			}
			target, err := signaturePayloadDigest(sig)
			if err != nil {
				return nil, fmt.Errorf("%s %q: signature %s: %w", kind, dir, m.Digest, err)
			}
			for _, h := range signed {
				if target == h {
					src.sigs[h] = sig
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return src, nil
}

func tagList(ds []v1.Descriptor) string {
	var tags []string
	for _, d := range ds {
		if t := d.Annotations[AnnotationRefName]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return ""
	}
	sort.Strings(tags)
	return " (it has: " + strings.Join(tags, ", ") + ")"
}

// signaturePayloadDigest reads the image digest a cosign signature image's
// first simple-signing payload names.
func signaturePayloadDigest(sig v1.Image) (v1.Hash, error) {
	layers, err := sig.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(layers) == 0 {
		return v1.Hash{}, errors.New("signature image has no payload layer")
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return v1.Hash{}, err
	}
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return v1.Hash{}, fmt.Errorf("signature payload: %w", err)
	}
	return v1.NewHash(p.Critical.Image.Digest)
}

func pickPlatform(im *v1.IndexManifest, plat v1.Platform) (v1.Descriptor, error) {
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			continue
		}
		if (m.MediaType.IsImage() || m.MediaType == "") && m.Platform.Satisfies(plat) {
			return m, nil
		}
		have = append(have, m.Platform.String())
	}
	return v1.Descriptor{}, &notFoundError{msg: fmt.Sprintf("no image for platform %s in the image index (it has: %s); choose one with the platform option", plat.String(), strings.Join(have, ", "))}
}

// ociArchiveSource extracts an oci-archive (a tar of an OCI layout) into a
// private temporary directory and reads it as a layout. Only regular files
// and directories are extracted, confined to that directory with os.Root.
func (s *Store) ociArchiveSource(ctx context.Context, r reference, plat v1.Platform) (*source, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, missingSource("oci archive", r.path, err)
	}
	defer f.Close()
	dir, err := os.MkdirTemp(s.tmp, "oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("oci archive %q: %w", r.path, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := extractLayout(ctx, f, dir, DefaultLimits()); err != nil {
		cleanup()
		return nil, fmt.Errorf("oci archive %q: %w", r.path, err)
	}
	src, err := ociLayoutSource(ctx, dir, r.tag, plat, "oci archive")
	if err != nil {
		cleanup()
		// Name the archive, not the temporary directory.
		msg := strings.ReplaceAll(err.Error(), fmt.Sprintf("%q", dir), fmt.Sprintf("%q", r.path))
		if errors.Is(err, ErrNotFound) {
			return nil, &notFoundError{msg: msg}
		}
		return nil, errors.New(msg)
	}
	src.cleanup = cleanup
	return src, nil
}

func extractLayout(ctx context.Context, r io.Reader, dir string, lim Limits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var total int64
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		if n >= lim.MaxEntries {
			return fmt.Errorf("entry %q: %w: more than %d entries", hdr.Name, ErrLimitExceeded, lim.MaxEntries)
		}
		clean, err := cleanName(hdr.Name)
		if err != nil {
			return &UnpackError{Entry: hdr.Name, Err: err}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if clean != "" {
				if err := root.MkdirAll(clean, 0o700); err != nil {
					return fmt.Errorf("entry %q: %w", hdr.Name, err)
				}
			}
		case tar.TypeReg:
			if clean == "" {
				return &UnpackError{Entry: hdr.Name, Err: errors.New("a file cannot name the archive root")}
			}
			total += hdr.Size
			if total > lim.MaxBytes {
				return fmt.Errorf("entry %q: %w: more than %d bytes", hdr.Name, ErrLimitExceeded, lim.MaxBytes)
			}
			if d := path.Dir(clean); d != "." {
				if err := root.MkdirAll(d, 0o700); err != nil {
					return fmt.Errorf("entry %q: %w", hdr.Name, err)
				}
			}
			out, err := root.OpenFile(clean, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeXGlobalHeader:
		default:
			return &UnpackError{Entry: hdr.Name, Err: fmt.Errorf("an OCI archive holds only files and directories, not type %q", string(hdr.Typeflag))}
		}
	}
}

func isRegistryNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == 404 {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

func registrySource(ctx context.Context, ref name.Reference, plat v1.Platform) (*source, error) {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(plat),
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		if isRegistryNotFound(err) {
			return nil, &notFoundError{msg: fmt.Sprintf("image %q not found in registry %s", ref.Name(), ref.Context().RegistryStr())}
		}
		return nil, fmt.Errorf("fetching image %q: %w", ref.Name(), err)
	}
	src := &source{sigs: map[v1.Hash]v1.Image{}, cleanup: func() {}}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", ref.Name(), err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", ref.Name(), err)
		}
		pd, err := pickPlatform(im, plat)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", ref.Name(), err)
		}
		if src.img, err = remote.Image(ref.Context().Digest(pd.Digest.String()), opts...); err != nil {
			return nil, fmt.Errorf("image %q: fetching %s: %w", ref.Name(), pd.Digest, err)
		}
		src.index, src.indexRaw = desc.Digest, desc.Manifest
	case desc.MediaType.IsImage():
		// The manifest was fetched once above; layers are fetched by digest.
		if src.img, err = desc.Image(); err != nil {
			return nil, fmt.Errorf("image %q: %w", ref.Name(), err)
		}
	default:
		return nil, fmt.Errorf("image %q has unsupported manifest media type %q", ref.Name(), desc.MediaType)
	}
	digest, err := src.img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref.Name(), err)
	}
	for _, h := range []v1.Hash{digest, src.index} {
		if h == (v1.Hash{}) {
			continue
		}
		sig, err := remote.Image(ref.Context().Tag(signatureName(h)), opts...)
		if err != nil {
			if isRegistryNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("image %q: fetching its signature: %w", ref.Name(), err)
		}
		src.sigs[h] = sig
	}
	return src, nil
}

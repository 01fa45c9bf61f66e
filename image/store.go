package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on index.json entries.
const (
	// AnnotationRefName holds an image's stored name, or "sha256-<hex>.sig"
	// for a cosign signature of the image with that digest.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationIndexDigest records the digest of the image index an image
	// manifest was selected from, when it came from one.
	AnnotationIndexDigest = "dev.secrun.image.index"

	cosignKindAnnotation = "kind"
	cosignSigsKind       = "dev.cosignproject.cosign/sigs"
	cosignAttsKind       = "dev.cosignproject.cosign/atts"
)

// Store is the content-addressed image store under a secrun root. It is
// safe for concurrent use by goroutines and by several secrun processes.
type Store struct {
	root   string
	images string // OCI image layout
	rootfs string // unpacked root filesystem cache
	tmp    string // temporary files, same filesystem as the above
}

// Image is an image in the store.
type Image struct {
	// Name is the normalized reference the image was imported under, e.g.
	// "oci:/x/layout:v1" or "127.0.0.1:5000/busybox:latest".
	Name string
	// Digest is the manifest digest: what a cosign signature covers.
	Digest v1.Hash
	// IndexDigest is the digest of the image index Digest was selected from
	// for the requested platform; zero when the source named a manifest.
	IndexDigest v1.Hash
	Manifest    *v1.Manifest
	Config      *v1.ConfigFile
	// Size is the stored size: manifest, config and compressed layers.
	Size int64
}

// Open opens (creating if needed) the store under root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("secrun root directory is empty: set --root or SECRUN_ROOT")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("secrun root %q: %w", root, err)
	}
	s := &Store{
		root:   abs,
		images: filepath.Join(abs, "images"),
		rootfs: filepath.Join(abs, "rootfs"),
		tmp:    filepath.Join(abs, "tmp"),
	}
	// rootfs directories must stay traversable by a container's mapped root
	// user, so they are 0711; blobs and temporary files are private.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{abs, 0o711},
		{s.images, 0o700},
		{filepath.Join(s.images, "blobs", "sha256"), 0o700},
		{s.rootfs, 0o711},
		{s.tmp, 0o700},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("creating image store directory: %w", err)
		}
	}
	layoutFile := filepath.Join(s.images, "oci-layout")
	b, err := os.ReadFile(layoutFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := writeFileAtomic(layoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", layoutFile, err)
	default:
		var l struct {
			Version string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(b, &l); err != nil || l.Version != "1.0.0" {
			return nil, fmt.Errorf("%s is not an OCI image layout version 1.0.0; is --root pointing at the right directory?", layoutFile)
		}
	}
	if _, err := os.Stat(s.indexPath()); errors.Is(err, fs.ErrNotExist) {
		if err := s.updateIndex(func(*v1.IndexManifest) error { return nil }); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Root returns the secrun root directory the store lives in.
func (s *Store) Root() string { return s.root }

func (s *Store) indexPath() string { return filepath.Join(s.images, "index.json") }

// gcLock is held shared while blobs are written or read for unpacking, and
// exclusively while garbage is collected, so collection never deletes a blob
// that an import is about to reference or an unpack is reading.
func (s *Store) gcLock(exclusive bool) (*fileLock, error) {
	return lockFile(filepath.Join(s.images, ".gc.lock"), exclusive)
}

func emptyIndex() *v1.IndexManifest {
	return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return emptyIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading image store index: %w", err)
	}
	idx := emptyIndex()
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("image store index %s is corrupted: %w", s.indexPath(), err)
	}
	return idx, nil
}

// updateIndex applies fn to index.json under the index lock and writes the
// result atomically.
func (s *Store) updateIndex(fn func(*v1.IndexManifest) error) error {
	l, err := lockFile(filepath.Join(s.images, ".lock"), true)
	if err != nil {
		return err
	}
	defer l.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding image store index: %w", err)
	}
	return writeFileAtomic(s.indexPath(), append(b, '\n'))
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(name, 0o600)
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return syncDir(dir)
}

func refName(d v1.Descriptor) string { return d.Annotations[AnnotationRefName] }

// signatureName is the cosign tag / ref name of the signature of digest.
func signatureName(digest v1.Hash) string {
	return digest.Algorithm + "-" + digest.Hex + ".sig"
}

// signedDigest returns the digest a signature ref name is for.
func signedDigest(refName string) (v1.Hash, bool) {
	rest, ok := strings.CutSuffix(refName, ".sig")
	if !ok {
		return v1.Hash{}, false
	}
	alg, hx, ok := strings.Cut(rest, "-")
	if !ok {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(alg + ":" + hx)
	if err != nil {
		return v1.Hash{}, false
	}
	return h, true
}

func isImageEntry(d v1.Descriptor) bool {
	if _, ok := signedDigest(refName(d)); ok {
		return false
	}
	return refName(d) != ""
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// findImage finds the index entry ref names: a full digest, a unique digest
// prefix of at least 12 hex digits, or a stored name. byDigest reports that
// ref named a digest rather than a name.
func findImage(idx *v1.IndexManifest, ref string) (d v1.Descriptor, byDigest bool, err error) {
	q := strings.TrimSpace(ref)
	var images []v1.Descriptor
	for _, m := range idx.Manifests {
		if isImageEntry(m) {
			images = append(images, m)
		}
	}
	if h, herr := v1.NewHash(q); herr == nil {
		for _, m := range images {
			if m.Digest == h {
				return m, true, nil
			}
		}
		return v1.Descriptor{}, true, imageNotFound(ref)
	}
	hx, hadAlg := strings.CutPrefix(q, "sha256:")
	if len(hx) >= 12 && len(hx) < 64 && isLowerHex(hx) {
		var found []v1.Descriptor
		for _, m := range images {
			if strings.HasPrefix(m.Digest.Hex, hx) && (len(found) == 0 || found[0].Digest != m.Digest) {
				found = append(found, m)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], true, nil
		case len(found) > 1:
			return v1.Descriptor{}, true, fmt.Errorf("image digest prefix %q is ambiguous: it matches %s and %s; give more digits", ref, found[0].Digest, found[1].Digest)
		case hadAlg:
			return v1.Descriptor{}, true, imageNotFound(ref)
		}
	}
	n := normalizeName(q)
	for _, m := range images {
		if rn := refName(m); rn == n || rn == q {
			return m, false, nil
		}
	}
	return v1.Descriptor{}, false, imageNotFound(ref)
}

// Get returns a stored image by stored name, full "sha256:..." digest, or
// unique digest prefix of at least 12 hex digits. A missing image is an
// error matching ErrNotFound.
func (s *Store) Get(ref string) (*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	d, _, err := findImage(idx, ref)
	if err != nil {
		return nil, err
	}
	return s.load(d)
}

// Resolve returns the stored image ref names, importing it first if the
// store does not have it.
func (s *Store) Resolve(ctx context.Context, ref string, opts ImportOptions) (*Image, error) {
	img, err := s.Get(ref)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return img, err
	}
	return s.Import(ctx, ref, opts)
}

// List returns the stored images sorted by name.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range idx.Manifests {
		if !isImageEntry(d) {
			continue
		}
		img, err := s.load(d)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", refName(d), err)
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// load reads the image an index entry points at, checking every digest.
func (s *Store) load(d v1.Descriptor) (*Image, error) {
	si, err := s.storeImage(d.Digest)
	if err != nil {
		return nil, err
	}
	rawCfg, err := si.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("config %s of image %s: %w", si.manifest.Config.Digest, d.Digest, err)
	}
	img := &Image{
		Name:     refName(d),
		Digest:   d.Digest,
		Manifest: si.manifest,
		Config:   cfg,
		Size:     int64(len(si.raw)) + si.manifest.Config.Size,
	}
	if ix := d.Annotations[AnnotationIndexDigest]; ix != "" {
		h, err := v1.NewHash(ix)
		if err != nil {
			return nil, fmt.Errorf("image %q: malformed index digest annotation: %w", img.Name, err)
		}
		img.IndexDigest = h
	}
	for _, l := range si.manifest.Layers {
		img.Size += l.Size
	}
	return img, nil
}

// IndexManifest returns the manifest of the image index img was selected
// from, checked against img.IndexDigest, and whether the store holds it:
// images imported before secrun kept index manifests have only the digest.
func (s *Store) IndexManifest(img *Image) ([]byte, bool, error) {
	if img.IndexDigest == (v1.Hash{}) {
		return nil, false, nil
	}
	if err := checkHash(img.IndexDigest); err != nil {
		return nil, false, err
	}
	if _, err := os.Lstat(s.blobPath(img.IndexDigest)); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	raw, err := s.readBlob(img.IndexDigest, -1, maxManifestSize)
	if err != nil {
		return nil, false, fmt.Errorf("image %q: its image index: %w", img.Name, err)
	}
	return raw, true, nil
}

// Remove removes the image ref names (a name removes that name; a digest
// removes every name of that digest), then deletes blobs, signatures and
// cached root filesystems no longer referenced.
func (s *Store) Remove(ref string) error {
	gl, err := s.gcLock(true)
	if err != nil {
		return err
	}
	defer gl.Unlock()
	err = s.updateIndex(func(idx *v1.IndexManifest) error {
		d, byDigest, err := findImage(idx, ref)
		if err != nil {
			return err
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			drop := isImageEntry(m) && m.Digest == d.Digest && (byDigest || refName(m) == refName(d))
			if !drop {
				kept = append(kept, m)
			}
		}
		idx.Manifests = kept
		return nil
	})
	if err != nil {
		return err
	}
	return s.collectLocked()
}

// collect runs garbage collection, taking the collection lock.
func (s *Store) collect() error {
	gl, err := s.gcLock(true)
	if err != nil {
		return err
	}
	defer gl.Unlock()
	return s.collectLocked()
}

// collectLocked deletes what no index entry references: signatures of
// images no longer stored, blobs, cached root filesystems, temporary files.
// The caller holds the collection lock exclusively, so no import or unpack
// is under way.
func (s *Store) collectLocked() error {
	imageDigests := map[string]bool{}
	var indexes []string
	err := s.updateIndex(func(idx *v1.IndexManifest) error {
		for _, m := range idx.Manifests {
			if isImageEntry(m) {
				imageDigests[m.Digest.String()] = true
				if ix := m.Annotations[AnnotationIndexDigest]; ix != "" {
					imageDigests[ix] = true
					indexes = append(indexes, ix)
				}
			}
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if h, ok := signedDigest(refName(m)); ok && !imageDigests[h.String()] {
				continue
			}
			kept = append(kept, m)
		}
		idx.Manifests = kept
		return nil
	})
	if err != nil {
		return err
	}
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, m := range idx.Manifests {
		s.markReachable(m.Digest, keep, 0)
	}
	// An image index is kept with the images selected from it, not what
	// else it names: a blob it lists is kept only when stored for its own
	// sake.
	for _, ix := range indexes {
		if h, err := v1.NewHash(ix); err == nil {
			keep[h.Hex] = true
		}
	}
	blobDir := filepath.Join(s.images, "blobs", "sha256")
	entries, err := os.ReadDir(blobDir)
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(blobDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("garbage collection: removing blob: %w", err))
		}
	}
	entries, err = os.ReadDir(s.rootfs)
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		hx := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(n, "."), ".lock"), noOwnerSuffix), keepSetuidSuffix)
		if !strings.HasPrefix(n, ".") && imageDigests["sha256:"+hx] {
			continue
		}
		if strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".lock") && imageDigests["sha256:"+hx] {
			continue
		}
		if err := removeTree(s.rootfs, n); err != nil {
			errs = append(errs, err)
		}
	}
	entries, err = os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("garbage collection: %w", err))
		}
	}
	return errors.Join(errs...)
}

// markReachable marks the blob h and, for manifests and indexes, what they
// reference. A blob that cannot be read or parsed keeps only itself.
func (s *Store) markReachable(h v1.Hash, keep map[string]bool, depth int) {
	if keep[h.Hex] || depth > 8 {
		return
	}
	keep[h.Hex] = true
	raw, err := s.readBlob(h, -1, maxManifestSize)
	if err != nil {
		return
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	if m.Config != nil {
		keep[m.Config.Digest.Hex] = true
	}
	for _, l := range m.Layers {
		keep[l.Digest.Hex] = true
	}
	for _, c := range m.Manifests {
		s.markReachable(c.Digest, keep, depth+1)
	}
}

// removeTree removes dir/name: first renamed aside so it disappears
// atomically, then deleted.
func removeTree(dir, name string) error {
	src := filepath.Join(dir, name)
	trash, err := os.MkdirTemp(dir, ".trash-")
	if err != nil {
		return fmt.Errorf("removing %s: %w", src, err)
	}
	if err := os.Rename(src, filepath.Join(trash, "x")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.Remove(trash)
		return fmt.Errorf("removing %s: %w", src, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing %s: %w", src, err)
	}
	return nil
}

// writeImage stores img's blobs (layers, config, then manifest last) and
// returns the descriptor of its manifest. Every blob is digest-checked as it
// is written; what names the image in errors.
func (s *Store) writeImage(ctx context.Context, img v1.Image, what string) (v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: reading manifest: %w", what, err)
	}
	sum := sha256.Sum256(raw)
	digest := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if want, err := img.Digest(); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: manifest digest: %w", what, err)
	} else if want != digest {
		return v1.Descriptor{}, &DigestError{What: fmt.Sprintf("manifest %s of %s", want, what), Got: digest.String()}
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: manifest %s: %w", what, digest, err)
	}
	mt := m.MediaType
	if mt == "" {
		if mt, err = img.MediaType(); err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w", what, err)
		}
	}
	if !mt.IsImage() {
		return v1.Descriptor{}, fmt.Errorf("%s: manifest %s has media type %q, not an image manifest", what, digest, mt)
	}
	if err := checkHash(m.Config.Digest); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: config: %w", what, err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: reading config: %w", what, err)
	}
	if err := s.writeBytes(ctx, m.Config.Digest, rawCfg); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: config: %w", what, err)
	}
	for _, l := range m.Layers {
		if err := checkHash(l.Digest); err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: layer: %w", what, err)
		}
		if len(l.URLs) > 0 {
			return v1.Descriptor{}, fmt.Errorf("%s: layer %s is a foreign layer fetched from %s; foreign layers are not supported", what, l.Digest, l.URLs[0])
		}
		if fi, err := os.Lstat(s.blobPath(l.Digest)); err == nil && fi.Mode().IsRegular() && fi.Size() == l.Size {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: layer %s: %w", what, l.Digest, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: layer %s: %w", what, l.Digest, err)
		}
		err = s.writeBlob(ctx, l.Digest, l.Size, rc)
		cerr := rc.Close()
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: layer: %w", what, err)
		}
		if cerr != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: layer %s: %w", what, l.Digest, cerr)
		}
	}
	if err := s.writeBytes(ctx, digest, raw); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: manifest: %w", what, err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digest}, nil
}

// setEntry replaces the index entry named name (if any) with d.
func setEntry(idx *v1.IndexManifest, name string, d v1.Descriptor) {
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[AnnotationRefName] = name
	for i, m := range idx.Manifests {
		if refName(m) == name {
			idx.Manifests[i] = d
			return
		}
	}
	idx.Manifests = append(idx.Manifests, d)
}

// Signature returns the cosign signature image stored for digest; an error
// matching ErrNotFound when there is none.
func (s *Store) Signature(digest v1.Hash) (v1.Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	want := signatureName(digest)
	for _, m := range idx.Manifests {
		if refName(m) == want {
			return s.Image(m.Digest)
		}
	}
	return nil, &notFoundError{msg: fmt.Sprintf("no signature stored for image %s: import the image from a source that has one, or sign it with 'secrun sign'", digest)}
}

// PutSignature stores sig as the cosign signature of the image with
// manifest digest digest, replacing any stored before.
func (s *Store) PutSignature(digest v1.Hash, sig v1.Image) error {
	if err := checkHash(digest); err != nil {
		return err
	}
	gl, err := s.gcLock(false)
	if err != nil {
		return err
	}
	d, err := s.writeImage(context.Background(), sig, "signature of "+digest.String())
	if err == nil {
		err = s.updateIndex(func(idx *v1.IndexManifest) error {
			setEntry(idx, signatureName(digest), d)
			return nil
		})
	}
	gl.Unlock()
	if err != nil {
		return errors.Join(err, s.collect())
	}
	return nil
}

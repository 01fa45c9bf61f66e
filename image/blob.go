package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Bounds on blobs that are read whole into memory.
const (
	maxManifestSize = 8 << 20
	maxConfigSize   = 64 << 20
)

func checkHash(h v1.Hash) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm in %q: only sha256 is supported", h.String())
	}
	if len(h.Hex) != 64 {
		return fmt.Errorf("malformed digest %q", h.String())
	}
	if _, err := hex.DecodeString(h.Hex); err != nil {
		return fmt.Errorf("malformed digest %q", h.String())
	}
	return nil
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.images, "blobs", h.Algorithm, h.Hex)
}

// verifyingReader hashes everything read through it and fails the read that
// reaches the end if the content does not match its digest and size. It also
// refuses to read past the expected size, so a blob cannot grow unbounded.
type verifyingReader struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	want v1.Hash
	size int64 // -1: unknown
	n    int64
	what string
	err  error
}

func newVerifyingReader(r io.Reader, c io.Closer, want v1.Hash, size int64, what string) *verifyingReader {
	return &verifyingReader{r: r, c: c, h: sha256.New(), want: want, size: size, what: what}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		p = p[:v.size-v.n+1]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = &DigestError{What: v.what, Size: fmt.Sprintf("larger than the %d bytes its descriptor records", v.size)}
		return n, v.err
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.err = &DigestError{What: v.what, Size: fmt.Sprintf("%d bytes long, but its descriptor records %d", v.n, v.size)}
			return n, v.err
		}
		got := "sha256:" + hex.EncodeToString(v.h.Sum(nil))
		if got != v.want.String() {
			v.err = &DigestError{What: v.what, Got: got}
			return n, v.err
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = fmt.Errorf("reading %s: %w", v.what, err)
		return n, v.err
	}
	return n, v.err
}

func (v *verifyingReader) Close() error {
	if v.c == nil {
		return nil
	}
	return v.c.Close()
}

// openBlob opens a stored blob for a verified read.
func (s *Store) openBlob(h v1.Hash, size int64) (*verifyingReader, error) {
	if err := checkHash(h); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s is missing from the image store %s; remove the image with 'secrun image rm' and import it again", h, s.images)
		}
		return nil, fmt.Errorf("opening blob %s: %w", h, err)
	}
	return newVerifyingReader(f, f, h, size, "blob "+h.String()), nil
}

// readBlob reads a whole (small) stored blob and checks its digest.
func (s *Store) readBlob(h v1.Hash, size, max int64) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("blob %s is %d bytes, more than the %d allowed for manifests and configs", h, size, max)
	}
	rc, err := s.openBlob(h, size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, max+1))
}

// writeBlob stores the content of r under want, checking digest and size
// (size < 0: unknown). The blob is written to a temporary file, synced and
// renamed into place, so a reader never sees a partial blob.
func (s *Store) writeBlob(ctx context.Context, want v1.Hash, size int64, r io.Reader) error {
	if err := checkHash(want); err != nil {
		return err
	}
	dst := s.blobPath(want)
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size) {
		return nil
	}
	tmp, err := os.CreateTemp(s.tmp, "blob-*")
	if err != nil {
		return fmt.Errorf("creating temporary blob in %s: %w", s.tmp, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	vr := newVerifyingReader(&ctxReader{ctx: ctx, r: r}, nil, want, size, "blob "+want.String())
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(writerOnly{tmp}, vr, buf); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing blob %s: %w", want, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing blob %s: %w", want, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("storing blob %s: %w", want, err)
	}
	tmp = nil
	return syncDir(filepath.Dir(dst))
}

// writeBytes stores a small blob held in memory.
func (s *Store) writeBytes(ctx context.Context, want v1.Hash, b []byte) error {
	return s.writeBlob(ctx, want, int64(len(b)), bytes.NewReader(b))
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writerOnly hides ReadFrom so io.CopyBuffer uses the given buffer.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// storeImage is a v1.Image backed by the store; every blob it reads is
// digest-checked.
type storeImage struct {
	s        *Store
	digest   v1.Hash
	raw      []byte
	manifest *v1.Manifest
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

// Image returns the stored image with manifest digest digest as a v1.Image
// whose every blob read is checked against its digest.
func (s *Store) Image(digest v1.Hash) (v1.Image, error) {
	si, err := s.storeImage(digest)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(si)
}

func (s *Store) storeImage(digest v1.Hash) (*storeImage, error) {
	if err := checkHash(digest); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(s.blobPath(digest)); errors.Is(err, fs.ErrNotExist) {
		return nil, imageNotFound(digest.String())
	}
	raw, err := s.readBlob(digest, -1, maxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, err)
	}
	if m.MediaType != "" && !m.MediaType.IsImage() {
		return nil, fmt.Errorf("manifest %s has media type %s, not an image manifest", digest, m.MediaType)
	}
	return &storeImage{s: s, digest: digest, raw: raw, manifest: m}, nil
}

func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *storeImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return i.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (i *storeImage) RawConfigFile() ([]byte, error) {
	c := i.manifest.Config
	return i.s.readBlob(c.Digest, c.Size, maxConfigSize)
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &storeLayer{s: i.s, desc: i.manifest.Config}, nil
	}
	for _, l := range i.manifest.Layers {
		if l.Digest == h {
			return &storeLayer{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer %s", i.digest, h)
}

type storeLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Descriptor() (*v1.Descriptor, error) { d := l.desc; return &d, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	return l.s.openBlob(l.desc.Digest, l.desc.Size)
}

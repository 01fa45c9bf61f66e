package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	keepSetuidSuffix = "-keepsetuid"
	// noOwnerSuffix marks a tree a root process unpacked with IgnoreOwner;
	// unpacked by anyone else, the tree is the same with or without it.
	noOwnerSuffix = "-noowner"
)

// Rootfs returns the directory holding img unpacked, unpacking it on first
// use. The unpack goes to a temporary directory that is synced and renamed
// into place, so the directory returned is always complete; concurrent
// callers (goroutines or processes) wait for one unpack and share it. Every
// layer's compressed digest and diffID are checked while unpacking, and any
// failure leaves nothing behind. Limits apply when the rootfs is unpacked,
// not to a cached one; KeepSetuid gives a separate cached rootfs, and so
// does IgnoreOwner when unpacking as root.
func (s *Store) Rootfs(ctx context.Context, img *Image, opts UnpackOptions) (string, error) {
	if img == nil {
		return "", errors.New("no image given to unpack")
	}
	if err := checkHash(img.Digest); err != nil {
		return "", err
	}
	key := img.Digest.Hex
	if opts.KeepSetuid {
		key += keepSetuidSuffix
	}
	if opts.IgnoreOwner && os.Geteuid() == 0 {
		key += noOwnerSuffix
	}
	final := filepath.Join(s.rootfs, key)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	gl, err := s.gcLock(false)
	if err != nil {
		return "", err
	}
	defer gl.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return "", err
	}
	if _, _, err := findImage(idx, img.Digest.String()); err != nil {
		return "", err
	}
	kl, err := lockFile(filepath.Join(s.rootfs, "."+key+".lock"), true)
	if err != nil {
		return "", err
	}
	defer kl.Unlock()
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	// Only the holder of the key lock writes these: any left are from a
	// crashed unpack.
	stale, err := filepath.Glob(filepath.Join(s.rootfs, ".tmp-"+key+"-*"))
	if err != nil {
		return "", err
	}
	for _, d := range stale {
		if err := removeTree(s.rootfs, filepath.Base(d)); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(s.rootfs, ".tmp-"+key+"-")
	if err != nil {
		return "", fmt.Errorf("unpacking image %s: %w", img.Digest, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := s.unpackImage(ctx, img.Digest, tmp, opts); err != nil {
		who := img.Name
		if who == "" {
			who = img.Digest.String()
		}
		return "", fmt.Errorf("image %q: %w", who, err)
	}
	if err := syncFS(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("unpacking image %s: %w", img.Digest, err)
	}
	done = true
	if err := syncDir(s.rootfs); err != nil {
		return "", err
	}
	return final, nil
}

func (s *Store) unpackImage(ctx context.Context, digest v1.Hash, dest string, opts UnpackOptions) error {
	si, err := s.storeImage(digest)
	if err != nil {
		return err
	}
	rawCfg, err := si.RawConfigFile()
	if err != nil {
		return err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return fmt.Errorf("config %s: %w", si.manifest.Config.Digest, err)
	}
	layers := si.manifest.Layers
	diffIDs := cfg.RootFS.DiffIDs
	if len(layers) != len(diffIDs) {
		return fmt.Errorf("manifest %s lists %d layers but its config lists %d diffIDs", digest, len(layers), len(diffIDs))
	}
	_, err = unpackLayers(ctx, dest, opts, len(layers), func(i int) (io.ReadCloser, v1.Hash, error) {
		if err := checkHash(diffIDs[i]); err != nil {
			return nil, v1.Hash{}, fmt.Errorf("layer %d: diffID: %w", i+1, err)
		}
		rc, err := s.openBlob(layers[i].Digest, layers[i].Size)
		return rc, diffIDs[i], err
	})
	return err
}

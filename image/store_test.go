package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
)

var ctx = context.Background()

func openStore(t testing.TB) *image.Store {
	t.Helper()
	s, err := image.Open(filepath.Join(t.TempDir(), "root"))
	must(t, err)
	return s
}

func digestOf(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	must(t, err)
	return h
}

// sigImage builds a cosign-style signature image whose payload names digest.
func sigImage(t testing.TB, digest v1.Hash) v1.Image {
	t.Helper()
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, digest)
	l := static.NewLayer([]byte(payload), "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       l,
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQ=="},
	})
	must(t, err)
	return img
}

// storeFiles lists the blobs, rootfs entries and temporary files of a store.
func storeFiles(t testing.TB, s *image.Store) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"images/blobs/sha256", "rootfs", "tmp"} {
		es, err := os.ReadDir(filepath.Join(s.Root(), d))
		must(t, err)
		for _, e := range es {
			out = append(out, d+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func checkBusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "bin/busybox"))
	if err != nil || fi.Mode() != 0o755 {
		t.Fatalf("bin/busybox: %v %v", fi, err)
	}
	want, err := os.Stat(imagetest.BusyboxPath)
	must(t, err)
	if fi.Size() != want.Size() {
		t.Errorf("bin/busybox is %d bytes, want %d", fi.Size(), want.Size())
	}
	for _, a := range []string{"sh", "ls", "cat", "echo", "id", "sleep"} {
		if l, err := os.Readlink(filepath.Join(dir, "bin", a)); err != nil || l != "busybox" {
			t.Errorf("bin/%s -> %q, %v; want busybox", a, l, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode() != os.ModeDir|os.ModeSticky|0o777 {
		t.Errorf("tmp: %v %v", fi, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil || !strings.Contains(string(b), "user:x:1000:1000:") {
		t.Errorf("etc/passwd: %q %v", b, err)
	}
}

func TestImportTransports(t *testing.T) {
	img := imagetest.BusyboxImage(t)
	dg := digestOf(t, img)
	cfgName, err := img.ConfigName()
	must(t, err)
	host := imagetest.Registry(t)

	cases := []struct {
		name       string
		setup      func(t *testing.T, dir string) string // returns the ref
		wantName   func(dir string) string
		sameDigest bool
	}{
		{
			name: "docker-archive",
			setup: func(t *testing.T, dir string) string {
				imagetest.WriteDockerArchive(t, filepath.Join(dir, "bb.tar"), img, "busybox:latest")
				return "docker-archive:" + filepath.Join(dir, "bb.tar")
			},
			wantName: func(dir string) string { return "docker-archive:" + filepath.Join(dir, "bb.tar") },
		},
		{
			name: "docker-archive with name",
			setup: func(t *testing.T, dir string) string {
				imagetest.WriteDockerArchive(t, filepath.Join(dir, "bb.tar"), img, "busybox:1.36")
				return "docker-archive:" + filepath.Join(dir, "bb.tar") + ":busybox:1.36"
			},
			wantName: func(dir string) string { return "docker-archive:" + filepath.Join(dir, "bb.tar") + ":busybox:1.36" },
		},
		{
			name: "oci layout with tag",
			setup: func(t *testing.T, dir string) string {
				imagetest.WriteOCILayout(t, filepath.Join(dir, "layout"), random1(t), "other")
				imagetest.WriteOCILayout(t, filepath.Join(dir, "layout"), img, "v1")
				return "oci:" + filepath.Join(dir, "layout") + ":v1"
			},
			wantName:   func(dir string) string { return "oci:" + filepath.Join(dir, "layout") + ":v1" },
			sameDigest: true,
		},
		{
			name: "oci layout single image",
			setup: func(t *testing.T, dir string) string {
				imagetest.WriteOCILayout(t, filepath.Join(dir, "layout"), img, "")
				return "oci:" + filepath.Join(dir, "layout")
			},
			wantName:   func(dir string) string { return "oci:" + filepath.Join(dir, "layout") },
			sameDigest: true,
		},
		{
			name: "oci-archive",
			setup: func(t *testing.T, dir string) string {
				imagetest.WriteOCIArchive(t, filepath.Join(dir, "bb.oci.tar"), img, "v1")
				return "oci-archive:" + filepath.Join(dir, "bb.oci.tar") + ":v1"
			},
			wantName:   func(dir string) string { return "oci-archive:" + filepath.Join(dir, "bb.oci.tar") + ":v1" },
			sameDigest: true,
		},
		{
			name: "registry",
			setup: func(t *testing.T, dir string) string {
				imagetest.Push(t, host+"/busybox:latest", img)
				return host + "/busybox"
			},
			wantName:   func(string) string { return host + "/busybox:latest" },
			sameDigest: true,
		},
		{
			name: "registry docker:// and digest",
			setup: func(t *testing.T, dir string) string {
				imagetest.Push(t, host+"/bydigest:x", img)
				return "docker://" + host + "/bydigest@" + dg.String()
			},
			wantName:   func(string) string { return host + "/bydigest@" + dg.String() },
			sameDigest: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ref := tc.setup(t, dir)
			s := openStore(t)
			got, err := s.Import(ctx, ref, image.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.wantName(dir) {
				t.Errorf("Name = %q, want %q", got.Name, tc.wantName(dir))
			}
			if tc.sameDigest && got.Digest != dg {
				t.Errorf("Digest = %s, want %s", got.Digest, dg)
			}
			if got.Manifest.Config.Digest != cfgName {
				t.Errorf("config = %s, want %s", got.Manifest.Config.Digest, cfgName)
			}
			if !reflect.DeepEqual(got.Config.Config.Cmd, []string{"/bin/sh"}) {
				t.Errorf("Cmd = %q", got.Config.Config.Cmd)
			}
			if got.Size <= 0 {
				t.Errorf("Size = %d", got.Size)
			}
			for _, q := range []string{ref, got.Name, got.Digest.String(), got.Digest.Hex[:12], "sha256:" + got.Digest.Hex[:16]} {
				g, err := s.Get(q)
				if err != nil {
					t.Errorf("Get(%q): %v", q, err)
				} else if g.Digest != got.Digest {
					t.Errorf("Get(%q) = %s", q, g.Digest)
				}
			}
			list, err := s.List()
			must(t, err)
			if len(list) != 1 || list[0].Name != got.Name {
				t.Errorf("List = %v", list)
			}
			r, err := s.Resolve(ctx, ref, image.ImportOptions{})
			if err != nil || r.Digest != got.Digest {
				t.Errorf("Resolve = %v, %v", r, err)
			}
			dir2, err := s.Rootfs(ctx, got, image.UnpackOptions{})
			must(t, err)
			checkBusyboxRootfs(t, dir2)
			// The stored image reads back as a v1.Image with the same layers.
			vi, err := s.Image(got.Digest)
			must(t, err)
			if d := digestOf(t, vi); d != got.Digest {
				t.Errorf("Image().Digest = %s", d)
			}
			if tmp := storeFiles(t, s); strings.Contains(strings.Join(tmp, " "), "tmp/") {
				t.Errorf("temporary files left: %q", tmp)
			}
		})
	}
}

func random1(t testing.TB) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	must(t, err)
	return img
}

func TestStoreLayoutIsOCI(t *testing.T) {
	s := openStore(t)
	img := imagetest.BusyboxImage(t)
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, img, "v1")
	got, err := s.Import(ctx, "oci:"+dir+":v1", image.ImportOptions{})
	must(t, err)
	// Another OCI tool (go-containerregistry's layout) can read the store.
	p, err := layout.FromPath(filepath.Join(s.Root(), "images"))
	must(t, err)
	li, err := p.Image(got.Digest)
	must(t, err)
	if d := digestOf(t, li); d != got.Digest {
		t.Errorf("layout image digest %s, want %s", d, got.Digest)
	}
}

func TestImportSignatures(t *testing.T) {
	img := imagetest.BusyboxImage(t)
	dg := digestOf(t, img)
	sig := sigImage(t, dg)
	sigDigest := digestOf(t, sig)
	host := imagetest.Registry(t)

	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string
	}{
		{"registry .sig tag", func(t *testing.T, dir string) string {
			imagetest.Push(t, host+"/signed:v1", img)
			imagetest.Push(t, host+"/signed:sha256-"+dg.Hex+".sig", sig)
			return host + "/signed:v1"
		}},
		{"oci layout ref name", func(t *testing.T, dir string) string {
			imagetest.WriteOCILayout(t, dir, img, "v1")
			imagetest.WriteOCILayout(t, dir, sig, "sha256-"+dg.Hex+".sig")
			return "oci:" + dir + ":v1"
		}},
		{"cosign save layout", func(t *testing.T, dir string) string {
			p, err := layout.Write(dir, empty.Index)
			must(t, err)
			must(t, p.AppendImage(img, layout.WithAnnotations(map[string]string{"kind": "dev.cosignproject.cosign/image"})))
			must(t, p.AppendImage(sig, layout.WithAnnotations(map[string]string{"kind": "dev.cosignproject.cosign/sigs"})))
			return "oci:" + dir
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.setup(t, t.TempDir())
			s := openStore(t)
			got, err := s.Import(ctx, ref, image.ImportOptions{})
			must(t, err)
			if got.Digest != dg {
				t.Fatalf("digest %s, want %s", got.Digest, dg)
			}
			si, err := s.Signature(dg)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOf(t, si); d != sigDigest {
				t.Errorf("signature digest %s, want %s", d, sigDigest)
			}
			ls, err := si.Layers()
			must(t, err)
			if len(ls) != 1 {
				t.Errorf("signature has %d layers", len(ls))
			}
			list, err := s.List()
			must(t, err)
			if len(list) != 1 {
				t.Errorf("List shows signatures as images: %d entries", len(list))
			}
		})
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	s := openStore(t)
	img := imagetest.BusyboxImage(t)
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, img, "")
	got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
	must(t, err)
	_, err = s.Signature(got.Digest)
	if !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("Signature before Put: %v, want ErrNotFound", err)
	}
	if want := "no signature stored for image " + got.Digest.String() + ": import the image from a source that has one, or sign it with 'secrun sign'"; err.Error() != want {
		t.Errorf("error %q\nwant %q", err, want)
	}
	sig := sigImage(t, got.Digest)
	must(t, s.PutSignature(got.Digest, sig))
	si, err := s.Signature(got.Digest)
	must(t, err)
	if digestOf(t, si) != digestOf(t, sig) {
		t.Error("stored signature differs")
	}
	// Replacing keeps one entry.
	sig2 := sigImage(t, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)})
	must(t, s.PutSignature(got.Digest, sig2))
	si, err = s.Signature(got.Digest)
	must(t, err)
	if digestOf(t, si) != digestOf(t, sig2) {
		t.Error("signature was not replaced")
	}
	// Removing the image drops its signature and every blob.
	must(t, s.Remove(got.Name))
	if _, err := s.Signature(got.Digest); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("signature survived image removal: %v", err)
	}
	if f := storeFiles(t, s); len(f) != 0 {
		t.Errorf("left behind: %q", f)
	}
}

func TestBadInput(t *testing.T) {
	host := imagetest.Registry(t)
	dir := t.TempDir()
	notLayout := filepath.Join(dir, "empty")
	must(t, os.Mkdir(notLayout, 0o755))
	two := filepath.Join(dir, "two")
	imagetest.WriteOCILayout(t, two, random1(t), "a")
	imagetest.WriteOCILayout(t, two, random1(t), "b")

	cases := []struct {
		ref      string
		want     string
		notFound bool
	}{
		{"", `invalid image reference "": empty`, false},
		{"oci:", `invalid image reference "oci:": missing path after "oci:"`, false},
		{"Bad/Name:x", `invalid image reference "Bad/Name:x": could not parse reference: Bad/Name:x`, false},
		{"docker-archive:/nonexistent/x.tar", `docker archive "/nonexistent/x.tar" does not exist`, true},
		{"oci-archive:/nonexistent/x.tar", `oci archive "/nonexistent/x.tar" does not exist`, true},
		{"oci:/nonexistent/layout", `oci layout "/nonexistent/layout" does not exist`, true},
		{"oci:" + notLayout, fmt.Sprintf("oci layout %q has no index.json: not an OCI image layout", notLayout), false},
		{"oci:" + two, fmt.Sprintf("oci layout %q holds 2 images: name one as %s:TAG (it has: a, b)", two, two), false},
		{"oci:" + two + ":c", fmt.Sprintf("image \"c\" not found in oci layout %q (it has: a, b)", two), true},
		{host + "/nope:v1", fmt.Sprintf("image %q not found in registry %s", host+"/nope:v1", host), true},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Import(ctx, tc.ref, image.ImportOptions{})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			if errors.Is(err, image.ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v", !tc.notFound, tc.notFound)
			}
			if f := storeFiles(t, s); len(f) != 0 {
				t.Errorf("left behind: %q", f)
			}
		})
	}
	t.Run("unknown image", func(t *testing.T) {
		s := openStore(t)
		for _, ref := range []string{"busybox", "sha256:" + strings.Repeat("0", 64), "0123456789ab"} {
			_, err := s.Get(ref)
			want := fmt.Sprintf("image %q not found: import it with 'secrun image import %s'", ref, ref)
			if err == nil || err.Error() != want || !errors.Is(err, image.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want %q", ref, err, want)
			}
			if err := s.Remove(ref); err == nil || err.Error() != want {
				t.Errorf("Remove(%q) = %v, want %q", ref, err, want)
			}
		}
	})
}

func corrupt(t testing.TB, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(p, b, 0o600))
}

func TestCorruptedBlob(t *testing.T) {
	img := imagetest.BusyboxImage(t)
	m, err := img.Manifest()
	must(t, err)
	layer := m.Layers[0].Digest
	cfg := m.Config.Digest

	t.Run("stored layer", func(t *testing.T) {
		s := openStore(t)
		dir := t.TempDir()
		imagetest.WriteOCILayout(t, dir, img, "")
		got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
		must(t, err)
		corrupt(t, filepath.Join(s.Root(), "images/blobs/sha256", layer.Hex))
		_, err = s.Rootfs(ctx, got, image.UnpackOptions{})
		var de *image.DigestError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "blob "+layer.String()+" is corrupted: content hashes to sha256:") {
			t.Fatalf("Rootfs error %v; want a digest error naming blob %s", err, layer)
		}
		es, err := os.ReadDir(filepath.Join(s.Root(), "rootfs"))
		must(t, err)
		for _, e := range es {
			if !strings.HasSuffix(e.Name(), ".lock") {
				t.Errorf("left in rootfs/: %s", e.Name())
			}
		}
		// Reading the layer through Image() fails the same way.
		vi, err := s.Image(got.Digest)
		must(t, err)
		ls, err := vi.Layers()
		must(t, err)
		rc, err := ls[0].Compressed()
		must(t, err)
		_, err = readAll(rc)
		if !errors.As(err, &de) {
			t.Errorf("Image() layer read: %v, want digest error", err)
		}
	})
	t.Run("stored config", func(t *testing.T) {
		s := openStore(t)
		dir := t.TempDir()
		imagetest.WriteOCILayout(t, dir, img, "")
		got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
		must(t, err)
		corrupt(t, filepath.Join(s.Root(), "images/blobs/sha256", cfg.Hex))
		_, err = s.Get(got.Name)
		if err == nil || !strings.HasPrefix(err.Error(), "blob "+cfg.String()+" is corrupted") {
			t.Errorf("Get: %v", err)
		}
	})
	t.Run("source layout", func(t *testing.T) {
		s := openStore(t)
		dir := t.TempDir()
		imagetest.WriteOCILayout(t, dir, img, "")
		corrupt(t, filepath.Join(dir, "blobs/sha256", layer.Hex))
		_, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
		want := `image "oci:` + dir + `": layer: blob ` + layer.String() + ` is corrupted: content hashes to sha256:`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Import: %v\nwant prefix %s", err, want)
		}
		if f := storeFiles(t, s); len(f) != 0 {
			t.Errorf("left behind: %q", f)
		}
	})
	t.Run("diffID", func(t *testing.T) {
		// The config claims a different uncompressed layer than the blob holds.
		cf, err := img.ConfigFile()
		must(t, err)
		cf = cf.DeepCopy()
		bad := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
		cf.RootFS.DiffIDs = []v1.Hash{bad}
		lie, err := mutate.ConfigFile(img, cf)
		must(t, err)
		s := openStore(t)
		dir := t.TempDir()
		imagetest.WriteOCILayout(t, dir, lie, "")
		got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
		must(t, err)
		_, err = s.Rootfs(ctx, got, image.UnpackOptions{})
		want := `image "oci:` + dir + `": layer 1 (` + bad.String() + `): uncompressed layer ` + bad.String() + ` is corrupted: content hashes to sha256:`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Rootfs: %v\nwant prefix %s", err, want)
		}
	})
}

func readAll(rc interface {
	Read([]byte) (int, error)
	Close() error
}) ([]byte, error) {
	defer rc.Close()
	var out []byte
	buf := make([]byte, 1<<16)
	for {
		n, err := rc.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
	}
}

func TestRootfsLimits(t *testing.T) {
	// A tiny tar followed by zeros: the diffID check drains the stream,
	// and the byte limit stops it.
	b, err := imagetest.LayerTar([]imagetest.Entry{{Name: "x", Type: tar.TypeReg, Mode: 0o644, Body: []byte("x")}})
	must(t, err)
	img, err := imagetest.Image(v1.Config{}, append(b, make([]byte, 32<<20)...))
	must(t, err)
	s := openStore(t)
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, img, "")
	got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
	must(t, err)
	_, err = s.Rootfs(ctx, got, image.UnpackOptions{Limits: image.Limits{MaxBytes: 1 << 20}})
	if !errors.Is(err, image.ErrLimitExceeded) || !strings.Contains(err.Error(), `layer entry "x": unpack limit exceeded: more than 1048576 bytes of decompressed data`) {
		t.Errorf("Rootfs: %v", err)
	}
	p, err := s.Rootfs(ctx, got, image.UnpackOptions{})
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(p, "x")); err != nil || string(b) != "x" {
		t.Errorf("x = %q, %v", b, err)
	}
}

func TestRootfsConcurrent(t *testing.T) {
	s := openStore(t)
	img := imagetest.BusyboxImage(t)
	dir := t.TempDir()
	imagetest.WriteOCILayout(t, dir, img, "")
	got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
	must(t, err)
	// A second Store value on the same root behaves like another process.
	s2, err := image.Open(s.Root())
	must(t, err)
	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			paths[i], errs[i] = st.Rootfs(ctx, got, image.UnpackOptions{})
		}(i)
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, paths[i], paths[0])
		}
	}
	checkBusyboxRootfs(t, paths[0])
	es, err := os.ReadDir(filepath.Join(s.Root(), "rootfs"))
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	want := []string{"." + got.Digest.Hex + ".lock", got.Digest.Hex}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("rootfs/ holds %q, want %q", names, want)
	}
	// KeepSetuid is a separate cache entry.
	p2, err := s.Rootfs(ctx, got, image.UnpackOptions{KeepSetuid: true})
	must(t, err)
	if p2 == paths[0] {
		t.Error("KeepSetuid shares the stripped rootfs")
	}
	// Unpacked by root without owners, the tree differs: a separate entry,
	// kept by garbage collection while the image is stored.
	p3, err := s.Rootfs(ctx, got, image.UnpackOptions{IgnoreOwner: true})
	must(t, err)
	if (p3 == paths[0]) != (os.Geteuid() != 0) {
		t.Errorf("IgnoreOwner rootfs %s, default %s: want separate entries only as root", p3, paths[0])
	}
	other := t.TempDir()
	imagetest.WriteOCILayout(t, other, random1(t), "")
	oimg, err := s.Import(ctx, "oci:"+other, image.ImportOptions{})
	must(t, err)
	must(t, s.Remove(oimg.Digest.String()))
	for _, p := range []string{paths[0], p2, p3} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("garbage collection removed the rootfs of a stored image: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(p3, "bin")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Errorf("IgnoreOwner rootfs: bin/ not owned by the unpacking user: %v", err)
	}
}

func TestConcurrentImports(t *testing.T) {
	s := openStore(t)
	const n = 6
	refs := make([]string, n)
	for i := range refs {
		dir := t.TempDir()
		imagetest.WriteOCILayout(t, dir, random1(t), "")
		refs[i] = "oci:" + dir
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range refs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := image.Open(s.Root())
			if err == nil {
				_, err = st.Import(ctx, refs[i], image.ImportOptions{})
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	list, err := s.List()
	must(t, err)
	if len(list) != n {
		t.Errorf("List has %d images, want %d", len(list), n)
	}
}

func TestRemoveCollectsGarbage(t *testing.T) {
	s := openStore(t)
	bb := imagetest.BusyboxImage(t)
	other := random1(t)
	d1, d2 := t.TempDir(), t.TempDir()
	imagetest.WriteOCILayout(t, d1, bb, "")
	imagetest.WriteOCILayout(t, d2, other, "")
	a, err := s.Import(ctx, "oci:"+d1, image.ImportOptions{})
	must(t, err)
	afterOther := func() []string {
		s2 := openStore(t)
		_, err := s2.Import(ctx, "oci:"+d2, image.ImportOptions{})
		must(t, err)
		return storeFiles(t, s2)
	}()
	b, err := s.Import(ctx, "oci:"+d2, image.ImportOptions{})
	must(t, err)
	// A second name for the busybox digest.
	imagetest.WriteOCILayout(t, d1, bb, "again")
	a2, err := s.Import(ctx, "oci:"+d1+":again", image.ImportOptions{})
	must(t, err)
	if a2.Digest != a.Digest {
		t.Fatal("same image, different digest")
	}
	_, err = s.Rootfs(ctx, a, image.UnpackOptions{})
	must(t, err)
	must(t, s.PutSignature(a.Digest, sigImage(t, a.Digest)))

	// Removing one name keeps the image.
	must(t, s.Remove(a.Name))
	if _, err := s.Get(a2.Name); err != nil {
		t.Fatalf("second name gone: %v", err)
	}
	if _, err := s.Signature(a.Digest); err != nil {
		t.Fatalf("signature gone while the image is still named: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "rootfs", a.Digest.Hex)); err != nil {
		t.Fatalf("rootfs gone while the image is still named: %v", err)
	}
	// Removing by digest prefix removes the rest of it.
	must(t, s.Remove(a.Digest.Hex[:12]))
	if got := storeFiles(t, s); !reflect.DeepEqual(got, afterOther) {
		t.Errorf("after removal the store holds\n%q\nwant what importing only the other image gives\n%q", got, afterOther)
	}
	if _, err := s.Get(b.Name); err != nil {
		t.Errorf("other image damaged: %v", err)
	}
	_, err = s.Get(a.Digest.String())
	if !errors.Is(err, image.ErrNotFound) {
		t.Errorf("removed image still found: %v", err)
	}
}

func TestImportPlatformFromIndex(t *testing.T) {
	bb := imagetest.BusyboxImage(t)
	arm, err := random.Image(128, 1)
	must(t, err)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: bb, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	idxDigest, err := idx.Digest()
	must(t, err)
	host := imagetest.Registry(t)
	ref, err := name.ParseReference(host + "/multi:v1")
	must(t, err)
	must(t, remote.WriteIndex(ref, idx))
	// A signature over the index digest is copied too.
	imagetest.Push(t, host+"/multi:sha256-"+idxDigest.Hex+".sig", sigImage(t, idxDigest))

	s := openStore(t)
	got, err := s.Import(ctx, host+"/multi:v1", image.ImportOptions{Platform: "linux/amd64"})
	must(t, err)
	if got.Digest != digestOf(t, bb) || got.IndexDigest != idxDigest {
		t.Errorf("digest %s index %s; want %s %s", got.Digest, got.IndexDigest, digestOf(t, bb), idxDigest)
	}
	if _, err := s.Signature(idxDigest); err != nil {
		t.Errorf("index signature: %v", err)
	}
	// The index manifest is kept, so that its signature can be shown to
	// cover the image; a copy that no longer hashes to it is an error.
	raw, ok, err := s.IndexManifest(got)
	if err != nil || !ok {
		t.Fatalf("index manifest: ok=%v err=%v", ok, err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(raw)); h != idxDigest {
		t.Errorf("stored index manifest hashes to %s, want %s", h, idxDigest)
	}
	corrupt(t, filepath.Join(s.Root(), "images", "blobs", "sha256", idxDigest.Hex))
	if _, _, err := s.IndexManifest(got); err == nil || !strings.Contains(err.Error(), idxDigest.String()) {
		t.Errorf("a corrupted index manifest was read back: %v", err)
	}
	_, err = s.Import(ctx, host+"/multi:v1", image.ImportOptions{Platform: "linux/s390x"})
	want := fmt.Sprintf("image %q: no image for platform linux/s390x in the image index (it has: linux/arm64, linux/amd64); choose one with the platform option", host+"/multi:v1")
	if err == nil || err.Error() != want {
		t.Errorf("wrong platform: %v\nwant %s", err, want)
	}
}

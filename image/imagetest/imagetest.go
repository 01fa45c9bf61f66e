// Package imagetest builds small real images for tests: a busybox image
// made from the host's busybox-static, written as an OCI layout, a docker
// archive or an oci-archive, or pushed to an in-process registry.
package imagetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// Users in the busybox image's /etc/passwd.
const (
	UserUID = 1000
	UserGID = 1000
)

// Epoch is the timestamp of every file in images built here, so their
// digests are reproducible.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var busybox struct {
	once sync.Once
	img  v1.Image
	err  error
}

// BusyboxImage returns a single-layer linux image holding /bin/busybox (the
// host's static busybox) with a symlink per applet (sh, ls, cat, echo, id,
// sleep, ...), /etc/passwd with root, nobody and user (1000), /etc/group,
// /tmp (1777), and empty /dev, /proc, /sys mount points. Its config runs
// /bin/sh with PATH set. Built once per process.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	busybox.once.Do(func() { busybox.img, busybox.err = buildBusybox() })
	if busybox.err != nil {
		t.Fatalf("building the busybox test image: %v", busybox.err)
	}
	return busybox.img
}

// Entry is one file of a layer built by Layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, ...
	Mode     int64
	Uid, Gid int
	Linkname string
	Body     []byte
	// PAXRecords, e.g. "SCHILY.xattr.security.capability".
	PAXRecords map[string]string
}

// LayerTar serializes entries, in order, into an uncompressed tar.
func LayerTar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:       e.Name,
			Typeflag:   e.Type,
			Mode:       e.Mode,
			Uid:        e.Uid,
			Gid:        e.Gid,
			Linkname:   e.Linkname,
			ModTime:    Epoch,
			PAXRecords: e.PAXRecords,
			Format:     tar.FormatPAX,
		}
		if e.Type == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Name, err)
		}
		if e.Type == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Gzip compresses b reproducibly.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// Image builds a linux image (OCI media types) from layers, each given as
// an uncompressed tar, with the given config (OS and architecture are set
// to linux and the host's).
func Image(cfg v1.Config, layers ...[]byte) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		gz := Gzip(l)
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gz)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

func buildBusybox() (v1.Image, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%w: install Debian's busybox-static", err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", BusyboxPath, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked: install Debian's busybox-static", BusyboxPath)
		}
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	entries := []Entry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Type: tar.TypeReg, Mode: 0o755, Body: bin},
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		entries = append(entries, Entry{Name: "bin/" + a, Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"})
	}
	entries = append(entries,
		Entry{Name: "dev/", Type: tar.TypeDir, Mode: 0o755},
		Entry{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		Entry{Name: "etc/group", Type: tar.TypeReg, Mode: 0o644, Body: []byte(
			"root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n")},
		Entry{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, Body: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
				"user:x:1000:1000:user:/home/user:/bin/sh\n")},
		Entry{Name: "home/", Type: tar.TypeDir, Mode: 0o755},
		Entry{Name: "home/user/", Type: tar.TypeDir, Mode: 0o755, Uid: UserUID, Gid: UserGID},
		Entry{Name: "proc/", Type: tar.TypeDir, Mode: 0o755},
		Entry{Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		Entry{Name: "sys/", Type: tar.TypeDir, Mode: 0o755},
		Entry{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	)
	layer, err := LayerTar(entries)
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, layer)
}

// WriteOCILayout adds img to the OCI image layout in dir (created if
// needed), under ref name tag when tag is not empty.
func WriteOCILayout(t testing.TB, dir string, img v1.Image, tag string) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatalf("creating OCI layout %s: %v", dir, err)
		}
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatalf("writing image to OCI layout %s: %v", dir, err)
	}
}

// WriteDockerArchive writes img as `docker save` would, tagged tag (for
// example "busybox:latest"), to path.
func WriteDockerArchive(t testing.TB, path string, img v1.Image, tag string) {
	t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatalf("docker archive tag %q: %v", tag, err)
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatalf("writing docker archive %s: %v", path, err)
	}
}

// WriteOCIArchive writes img as an oci-archive (a tar of an OCI layout)
// to path, under ref name tag when tag is not empty.
func WriteOCIArchive(t testing.TB, path string, img v1.Image, tag string) {
	t.Helper()
	dir := t.TempDir()
	WriteOCILayout(t, dir, img, tag)
	if err := TarDir(dir, path); err != nil {
		t.Fatalf("writing oci archive %s: %v", path, err)
	}
}

// TarDir writes the regular files and directories under dir to a tar at
// path, with names relative to dir.
func TarDir(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Registry starts an in-process registry on 127.0.0.1 for the test and
// returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push writes img to the registry reference ref (e.g. HOST/busybox:latest).
func Push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("reference %q: %v", ref, err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

package image_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
)

// benchLayer builds a deterministic ~100 MB layer shaped like a distro
// image: many small files, some large ones, directories and symlinks, with
// content that compresses about as well as binaries and text do.
func benchLayer(tb testing.TB) []byte {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 1<<15)
	content := func(n int) []byte {
		b := make([]byte, n)
		half := n / 2
		rng.Read(b[:half])
		copy(b[half:], text)
		return b
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = imagetest.Epoch
		h.Format = tar.FormatPAX
		if body != nil {
			h.Size = int64(len(body))
		}
		must(tb, tw.WriteHeader(h))
		if body != nil {
			_, err := tw.Write(body)
			must(tb, err)
		}
	}
	total := 0
	for d := 0; d < 200; d++ {
		dir := fmt.Sprintf("usr/share/pkg%03d/", d)
		add(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		for f := 0; f < 20; f++ {
			n := 1024 + rng.Intn(40<<10)
			add(&tar.Header{Name: fmt.Sprintf("%sfile%02d", dir, f), Typeflag: tar.TypeReg, Mode: 0o644}, content(n))
			total += n
		}
		for l := 0; l < 3; l++ {
			add(&tar.Header{Name: fmt.Sprintf("%slink%d", dir, l), Typeflag: tar.TypeSymlink, Mode: 0o777, Linkname: "file00"}, nil)
		}
	}
	add(&tar.Header{Name: "usr/lib/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	for i := 0; total < 100<<20; i++ {
		n := 4 << 20
		add(&tar.Header{Name: fmt.Sprintf("usr/lib/big%02d.so", i), Typeflag: tar.TypeReg, Mode: 0o755}, content(n))
		total += n
	}
	must(tb, tw.Close())
	return buf.Bytes()
}

func tarExtract(tb testing.TB, layer, dest string) time.Duration {
	start := time.Now()
	out, err := exec.Command("tar", "-xzpf", layer, "-C", dest).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		tb.Fatalf("tar -x: %v: %s", err, out)
	}
	return d
}

// BenchmarkUnpackVsTar unpacks the same gzipped 100 MB layer with Unpack
// and with GNU tar -xzpf in each iteration, and reports both and their ratio.
func BenchmarkUnpackVsTar(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("tar not installed")
	}
	raw := benchLayer(b)
	work := b.TempDir()
	layer := filepath.Join(work, "layer.tar.gz")
	must(b, os.WriteFile(layer, imagetest.Gzip(raw), 0o644))
	b.SetBytes(int64(len(raw)))
	var ours, theirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d1 := filepath.Join(work, fmt.Sprintf("ours%d", i))
		d2 := filepath.Join(work, fmt.Sprintf("tar%d", i))
		must(b, os.Mkdir(d1, 0o755))
		must(b, os.Mkdir(d2, 0o755))
		run := func() {
			f, err := os.Open(layer)
			must(b, err)
			start := time.Now()
			_, err = image.Unpack(ctx, f, d1, image.UnpackOptions{})
			ours += time.Since(start)
			f.Close()
			must(b, err)
		}
		// Alternate the order so neither side always meets a cold cache.
		if i%2 == 0 {
			run()
			theirs += tarExtract(b, layer, d2)
		} else {
			theirs += tarExtract(b, layer, d2)
			run()
		}
		b.StopTimer()
		must(b, os.RemoveAll(d1))
		must(b, os.RemoveAll(d2))
		b.StartTimer()
	}
	report(b, ours, theirs)
}

// BenchmarkRootfsVsTar times Store.Rootfs (digest and diffID checks, syncfs,
// atomic rename) against tar -xzpf followed by sync(1) of the result.
func BenchmarkRootfsVsTar(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("tar not installed")
	}
	raw := benchLayer(b)
	img, err := imagetest.Image(v1.Config{}, raw)
	must(b, err)
	s := openStore(b)
	dir := b.TempDir()
	imagetest.WriteOCILayout(b, dir, img, "")
	got, err := s.Import(ctx, "oci:"+dir, image.ImportOptions{})
	must(b, err)
	layer := filepath.Join(dir, "blobs/sha256", got.Manifest.Layers[0].Digest.Hex)
	b.SetBytes(int64(len(raw)))
	var ours, theirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d2 := filepath.Join(dir, fmt.Sprintf("tar%d", i))
		must(b, os.Mkdir(d2, 0o755))
		run := func() {
			start := time.Now()
			p, err := s.Rootfs(ctx, got, image.UnpackOptions{})
			ours += time.Since(start)
			must(b, err)
			b.StopTimer()
			must(b, os.RemoveAll(p))
			b.StartTimer()
		}
		tarSync := func() {
			d := tarExtract(b, layer, d2)
			start := time.Now()
			out, err := exec.Command("sync", "-f", d2).CombinedOutput()
			if err != nil {
				b.Fatalf("sync: %v: %s", err, out)
			}
			theirs += d + time.Since(start)
		}
		if i%2 == 0 {
			run()
			tarSync()
		} else {
			tarSync()
			run()
		}
		b.StopTimer()
		must(b, os.RemoveAll(d2))
		b.StartTimer()
	}
	report(b, ours, theirs)
}

func report(b *testing.B, ours, theirs time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(ours.Milliseconds())/n, "secrun-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/n, "tar-ms/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "x-tar")
}

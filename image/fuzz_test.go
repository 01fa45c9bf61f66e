package image_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
)

// FuzzUnpack feeds arbitrary layer streams to Unpack. Whatever the input,
// nothing outside the destination may change and any error is one line.
// The seeds (every fixture, plain and gzipped, and a multi-kind layer) run
// as part of the ordinary test suite.
func FuzzUnpack(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join(fixtureDir, "*.tar"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(imagetest.Gzip(b))
	}
	f.Add(layerOf(f,
		dir("a/"), file("a/f", "f"), symlink("a/l", "../.."), hardlink("a/h", "a/f"),
		imagetest.Entry{Name: "a/.wh..wh..opq", Type: tar.TypeReg},
		imagetest.Entry{Name: ".wh.a", Type: tar.TypeReg},
		imagetest.Entry{Name: "p", Type: tar.TypeFifo, Mode: 0o600},
	))
	f.Fuzz(func(t *testing.T, layer []byte) {
		sb := newSandbox(t)
		_, err := image.Unpack(ctx, bytes.NewReader(layer), sb.dest, image.UnpackOptions{
			Limits: image.Limits{MaxBytes: 4 << 20, MaxEntries: 2000},
		})
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line error: %q", err)
		}
		sb.checkOutside(t)
	})
}

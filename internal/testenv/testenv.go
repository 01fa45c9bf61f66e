// Package testenv holds what secrun's kernel-level tests share: finding the
// pinned runc, a state directory the containers' mapped ids can traverse, and
// a test image with a static probe binary.
package testenv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/secrun/secrun/image/imagetest"
)

// RequireRoot skips a test that needs root when not root. CI runs as root,
// so these tests always run there.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// ModuleRoot is the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Runc returns the runc to test with: $SECRUN_RUNC, else the pinned one
// `make deps` builds into bin/, else runc on PATH. A missing runc fails the
// test: CI must never silently skip kernel tests.
func Runc(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SECRUN_RUNC"); p != "" {
		return p
	}
	if p := filepath.Join(ModuleRoot(t), "bin", "runc"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal("runc not found: run 'make deps' (it builds the pinned runc into bin/)")
	}
	return p
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// StateDir returns a fresh secrun root. A container's mapped root must be
// able to traverse every directory above its bundle, so the directory and
// its parent are made 0711, as secrun does for its real root.
func StateDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// BuildProbe compiles testdata/probe statically, once per test binary, and
// returns its path.
func BuildProbe(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "secrun-probe-")
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probePath, "./testdata/probe")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building the probe: %w\n%s", err, b)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

// ProbeImage is the busybox test image with /bin/probe added as a layer.
func ProbeImage(t testing.TB) v1.Image {
	t.Helper()
	bin, err := os.ReadFile(BuildProbe(t))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := LayerFromFiles(map[string][]byte{"bin/probe": bin}, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(imagetest.BusyboxImage(t), layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// LayerFromFiles makes an uncompressed layer of regular files.
func LayerFromFiles(files map[string][]byte, mode int64) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

var (
	secrunOnce sync.Once
	secrunPath string
	secrunErr  error
)

// SecrunBinary builds cmd/secrun once per test binary, as it is installed,
// and returns the path of secrun: the light front (the secrun_noengine
// tag), with the full build beside it as secrun-engine, which the front
// hands requests to, and the static secrun-init, which loads containers'
// seccomp filters (and Landlock rules).
func SecrunBinary(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	secrunOnce.Do(func() {
		dir, err := os.MkdirTemp("", "secrun-bin-")
		if err != nil {
			secrunErr = err
			return
		}
		secrunPath = filepath.Join(dir, "secrun")
		for _, b := range []struct{ out, tags, pkg, cgo string }{
			{secrunPath, "secrun_noengine", "./cmd/secrun", "1"},
			{filepath.Join(dir, "secrun-engine"), "", "./cmd/secrun", "1"},
			{filepath.Join(dir, "secrun-init"), "", "./cmd/secrun-init", "0"},
		} {
			cmd := exec.Command("go", "build", "-tags", b.tags, "-o", b.out, b.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
			if out, err := cmd.CombinedOutput(); err != nil {
				secrunErr = fmt.Errorf("building %s: %w\n%s", filepath.Base(b.out), err, out)
				return
			}
		}
	})
	if secrunErr != nil {
		t.Fatal(secrunErr)
	}
	return secrunPath
}

var (
	initOnce sync.Once
	initPath string
	initErr  error
)

// InitBinary builds the static cmd/secrun-init once per test binary.
func InitBinary(t testing.TB) string {
	t.Helper()
	root := ModuleRoot(t)
	initOnce.Do(func() {
		dir, err := os.MkdirTemp("", "secrun-init-")
		if err != nil {
			initErr = err
			return
		}
		initPath = filepath.Join(dir, "secrun-init")
		cmd := exec.Command("go", "build", "-o", initPath, "./cmd/secrun-init")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			initErr = fmt.Errorf("building secrun-init: %w\n%s", err, b)
		}
	})
	if initErr != nil {
		t.Fatal(initErr)
	}
	return initPath
}

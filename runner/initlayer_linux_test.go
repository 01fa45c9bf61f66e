package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/internal/testenv"
)

// TestPruneInitLayers: a new secrun-init layer removes the old ones no
// mounted overlay uses, and keeps the one in use, a recent one and itself.
func TestPruneInitLayers(t *testing.T) {
	testenv.RequireRoot(t)
	parent := filepath.Join(t.TempDir(), "init layers") // mountinfo escapes the space
	old := time.Now().Add(-2 * initLayerGrace)
	mk := func(name string, mtime time.Time) string {
		d := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Join(d, ".secrun"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	unused, used, recent, keep := mk("unused", old), mk("used", old), mk("recent", time.Now()), mk("keep", old)
	scratch := t.TempDir()
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(scratch, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+used+",upperdir="+filepath.Join(scratch, "upper")+",workdir="+filepath.Join(scratch, "work")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })

	pruneInitLayers(parent, keep, time.Now().Add(-initLayerGrace))
	for d, want := range map[string]bool{unused: false, used: true, recent: true, keep: true} {
		_, err := os.Stat(d)
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v after pruning, want %v", filepath.Base(d), got, want)
		}
	}
}

package runner_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/runner"
)

// What a host restart leaves of a foreground --rm container (its record
// was on a tmpfs) is reclaimed by `secrun ps` and by a run that wants its
// name; a container being created, or whose tmpfs is still mounted, is not.
func TestReclaimLeftByRestart(t *testing.T) {
	e := newEnv(t, allowAll)
	var warned bytes.Buffer
	e.r.Warn = &warned
	ctx := context.Background()
	before := time.Now().Add(-365 * 24 * time.Hour) // before any boot of this host
	id := func(c byte) string { return strings.Repeat(string(c), 64) }
	path := func(p ...string) string { return filepath.Join(append([]string{e.root}, p...)...) }
	write := func(p, data string, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(p, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	// a: a --rm container named web, running when the host went down.
	mkdir(path("containers", id('a')), before)
	write(path("names", "web"), id('a'), before)
	write(path("userns", "5"), id('a'), before)
	// b: a directory made since boot, its record not written yet.
	mkdir(path("containers", id('b')), time.Now())
	write(path("names", "busy"), id('b'), time.Now())
	// c: a name reserved before the host went down, no directory yet.
	write(path("names", "api"), id('c'), before)
	// d: an old directory with its tmpfs still mounted (and empty), the
	// tmpfs's own times old too.
	mkdir(path("containers", id('d')), before)
	if err := unix.Mount("tmpfs", path("containers", id('d')), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(path("containers", id('d')), unix.MNT_DETACH) })
	mkdir(path("containers", id('d')), before)

	if _, err := e.r.List(ctx); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{path("containers", id('a')), path("names", "web"), path("userns", "5")} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("ps left %s of the container a restart left", gone)
		}
	}
	for _, kept := range []string{path("containers", id('b')), path("names", "busy"), path("names", "api"), path("containers", id('d'))} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("ps removed %s: %v", kept, err)
		}
	}
	if !strings.Contains(warned.String(), "removed container aaaaaaaaaaaa (web): its record did not survive a host restart") {
		t.Errorf("ps did not say what it removed: %q", warned.String())
	}

	// A run takes the name of a container that never got a directory, but
	// not the name of one being created.
	if code, out, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Name: "api", Args: sh("echo named")}); err != nil || code != 0 || !strings.Contains(out, "named") {
		t.Fatalf("run --name api: code %d err %v %s", code, err, out)
	}
	if _, err := os.Lstat(path("names", "api")); err == nil {
		t.Error("the --rm run kept its name")
	}
	if _, _, err := e.run(t, runner.RunOptions{ReadOnly: true, Remove: true, Name: "busy", Args: sh("true")}); err == nil || !strings.Contains(err.Error(), `the name "busy" is already in use`) {
		t.Errorf("run --name busy: %v", err)
	}

	var trail bytes.Buffer
	if err := audit.Show(&trail, []string{e.trail}, audit.Filter{}, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []byte{'a', 'c'} {
		if !strings.Contains(trail.String(), `"container":{"id":"`+id(c)+`"`) {
			t.Errorf("the reclaim of %s is not in the audit trail:\n%s", id(c)[:12], trail.String())
		}
	}
	if n := strings.Count(trail.String(), "its record did not survive a host restart"); n != 2 {
		t.Errorf("%d reclaim records, want 2:\n%s", n, trail.String())
	}
}

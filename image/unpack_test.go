package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/image/imagetest"
)

const fixtureDir = "../testdata/image"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("fixture %s: %v (regenerate with: cd testdata/image && go run gen.go)", name, err)
	}
	return b
}

// sandbox is a destination directory nested inside a tree whose every
// other file is recorded, so a test can prove nothing outside changed.
type sandbox struct {
	top, dest   string
	before      map[string]string
	passwdNlink uint64
}

// hostMarkers are where an escaping fixture would land on the host.
var hostMarkers = []string{"/tmp/secrun-escape-marker", "/tmp/secrun-escape-marker2", "/secrun-escape-marker"}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	top := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(top, "outside", "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(top, "outside", "sentinel"), []byte("sentinel\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(top, "outside", "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644))
	dest := filepath.Join(top, "a", "b", "c", "d", "dest")
	must(t, os.MkdirAll(dest, 0o755))
	s := &sandbox{top: top, dest: dest}
	// Without root, read-only directories from a layer would keep TempDir
	// from cleaning up; this runs before its RemoveAll.
	t.Cleanup(func() {
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	s.before = s.snapshot(t)
	s.passwdNlink = nlink(t, "/etc/passwd")
	for _, m := range hostMarkers {
		if _, err := os.Lstat(m); err == nil {
			t.Fatalf("%s exists before the test; remove it", m)
		}
	}
	return s
}

func nlink(t testing.TB, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st.Nlink
}

func (s *sandbox) snapshot(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(s.top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.dest {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkOutside fails the test if anything outside dest changed.
func (s *sandbox) checkOutside(t testing.TB) {
	t.Helper()
	after := s.snapshot(t)
	if !reflect.DeepEqual(s.before, after) {
		for p, v := range after {
			if s.before[p] != v {
				t.Errorf("outside dest changed: %s: %q -> %q", p, s.before[p], v)
			}
		}
		for p := range s.before {
			if _, ok := after[p]; !ok {
				t.Errorf("outside dest removed: %s", p)
			}
		}
	}
	for _, m := range hostMarkers {
		if _, err := os.Lstat(m); err == nil {
			os.Remove(m)
			t.Errorf("an entry escaped to %s", m)
		}
	}
	if n := nlink(t, "/etc/passwd"); n != s.passwdNlink {
		t.Errorf("/etc/passwd link count changed from %d to %d", s.passwdNlink, n)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func unpack(t testing.TB, dest string, layer []byte, opts image.UnpackOptions) (image.UnpackReport, error) {
	t.Helper()
	return image.Unpack(context.Background(), bytes.NewReader(layer), dest, opts)
}

func TestUnpackHostileFixtures(t *testing.T) {
	cases := []struct {
		fixture string
		want    string
	}{
		{"escape-dotdot.tar", `layer entry "../secrun-escape-marker": name contains "..": it would escape the image root`},
		{"escape-nested-dotdot.tar", `layer entry "a/../../secrun-escape-marker": name contains "..": it would escape the image root`},
		{"absolute-name.tar", `layer entry "/tmp/secrun-escape-marker": absolute name: layer entries must be relative to the image root`},
		{"symlink-abs-write-through.tar", `layer entry "evil/secrun-escape-marker": it goes through the symlink "evil" created earlier in the same layer`},
		{"symlink-rel-write-through.tar", `layer entry "evil/secrun-escape-marker": it goes through the symlink "evil" created earlier in the same layer`},
		{"symlink-dir-write-through.tar", `layer entry "d/evil/tmp/secrun-escape-marker": it goes through the symlink "d/evil" created earlier in the same layer`},
		{"hardlink-outside.tar", `layer entry "h": hardlink target "../../../../../../../../../../etc/passwd": name contains "..": it would escape the image root`},
		{"hardlink-host-absolute.tar", `layer entry "h": hardlink target "/etc/passwd" does not exist in the image`},
		{"hardlink-through-symlink.tar", `layer entry "h": hardlink target "s/passwd": it goes through the symlink "s" created earlier in the same layer`},
		{"whiteout-dot.tar", `layer entry ".wh..": invalid whiteout: it would delete "."`},
		{"whiteout-dotdot.tar", `layer entry ".wh...": invalid whiteout: it would delete ".."`},
		{"whiteout-nested-dotdot.tar", `layer entry "a/.wh...": invalid whiteout: it would delete ".."`},
		{"whiteout-empty.tar", `layer entry "a/.wh.": invalid whiteout: it would delete ""`},
		{"whiteout-meta.tar", `layer entry ".wh..wh.plnk": unsupported whiteout metadata name ".wh..wh.plnk"`},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			layer := fixture(t, tc.fixture)
			for _, compress := range []string{"tar", "gzip", "zstd", "tar+IgnoreOwner"} {
				sb := newSandbox(t)
				// Rootless unpacking (IgnoreOwner) refuses the same entries.
				how, ignoreOwner := strings.CutSuffix(compress, "+IgnoreOwner")
				_, err := unpack(t, sb.dest, compressed(t, how, layer), image.UnpackOptions{IgnoreOwner: ignoreOwner})
				if err == nil {
					t.Fatalf("%s: unpack succeeded; want error %q", compress, tc.want)
				}
				if err.Error() != tc.want {
					t.Errorf("%s: error\n got: %s\nwant: %s", compress, err, tc.want)
				}
				var ue *image.UnpackError
				if !errors.As(err, &ue) {
					t.Errorf("%s: error is not an *image.UnpackError: %T", compress, err)
				}
				sb.checkOutside(t)
			}
		})
	}
}

func compressed(t testing.TB, how string, b []byte) []byte {
	t.Helper()
	switch how {
	case "gzip":
		return imagetest.Gzip(b)
	case "zstd":
		var buf bytes.Buffer
		zw, err := zstd.NewWriter(&buf)
		must(t, err)
		_, err = zw.Write(b)
		must(t, err)
		must(t, zw.Close())
		return buf.Bytes()
	}
	return b
}

func TestUnpackWriteThroughLowerLayerSymlinkIsConfined(t *testing.T) {
	sb := newSandbox(t)
	if _, err := unpack(t, sb.dest, fixture(t, "symlink-layer1.tar"), image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := unpack(t, sb.dest, fixture(t, "write-through-layer2.tar"), image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	sb.checkOutside(t)
	for name, want := range map[string]string{
		"tmp/secrun-escape-marker":  "relative\n",
		"tmp/secrun-escape-marker2": "absolute\n",
	} {
		b, err := os.ReadFile(filepath.Join(sb.dest, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: got %q, %v; want %q inside dest", name, b, err, want)
		}
	}
}

func TestUnpackDevicesDropped(t *testing.T) {
	sb := newSandbox(t)
	rep, err := unpack(t, sb.dest, fixture(t, "device.tar"), image.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb.checkOutside(t)
	want := []string{"dev/evil-null", "dev/evil-sda", "dev/evil-link"}
	if !reflect.DeepEqual(rep.DroppedDevices, want) {
		t.Errorf("DroppedDevices = %q, want %q", rep.DroppedDevices, want)
	}
	for _, n := range want {
		if _, err := os.Lstat(filepath.Join(sb.dest, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: want absent, got %v", n, err)
		}
	}
	fi, err := os.Lstat(filepath.Join(sb.dest, "dev/fifo"))
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("dev/fifo: want a fifo, got %v, %v", fi, err)
	}
	if rep.Entries != 6 {
		t.Errorf("Entries = %d, want 6", rep.Entries)
	}
}

func TestUnpackSetuidAndCaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners and file capabilities")
	}
	type file struct {
		mode     fs.FileMode
		uid, gid int
		hasCap   bool
	}
	cases := []struct {
		name        string
		keep        bool
		ignoreOwner bool
		stripped    []string
		caps        []string
		files       map[string]file
		droppedXat  []string
	}{
		{
			name:     "stripped",
			stripped: []string{"bin/su", "bin/sg"},
			caps:     []string{"bin/ping"},
			files: map[string]file{
				"bin/su":    {mode: 0o755},
				"bin/sg":    {mode: 0o755, gid: 42},
				"bin/ping":  {mode: 0o755},
				"bin/plain": {mode: 0o750, uid: 1000, gid: 1000},
				"shared":    {mode: fs.ModeDir | fs.ModeSetgid | 0o775, gid: 50},
			},
			droppedXat: []string{"bin/plain: trusted.overlay.opaque"},
		},
		{
			// Rootless unpacking: every file is the unpacking user's (root
			// here), setuid bits and file capabilities are still stripped,
			// and group bits narrow to the other bits.
			name:        "owners ignored",
			ignoreOwner: true,
			stripped:    []string{"bin/su", "bin/sg"},
			caps:        []string{"bin/ping"},
			files: map[string]file{
				"bin/su":    {mode: 0o755},
				"bin/sg":    {mode: 0o755},
				"bin/ping":  {mode: 0o755},
				"bin/plain": {mode: 0o700},
				"shared":    {mode: fs.ModeDir | fs.ModeSetgid | 0o755},
			},
			droppedXat: []string{"bin/plain: trusted.overlay.opaque"},
		},
		{
			name: "kept",
			keep: true,
			files: map[string]file{
				"bin/su":    {mode: fs.ModeSetuid | 0o755},
				"bin/sg":    {mode: fs.ModeSetgid | 0o755, gid: 42},
				"bin/ping":  {mode: 0o755, hasCap: true},
				"bin/plain": {mode: 0o750, uid: 1000, gid: 1000},
				"shared":    {mode: fs.ModeDir | fs.ModeSetgid | 0o775, gid: 50},
			},
			droppedXat: []string{"bin/plain: trusted.overlay.opaque"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			rep, err := unpack(t, sb.dest, fixture(t, "setuid.tar"), image.UnpackOptions{KeepSetuid: tc.keep, IgnoreOwner: tc.ignoreOwner})
			if err != nil {
				t.Fatal(err)
			}
			sb.checkOutside(t)
			if !reflect.DeepEqual(rep.StrippedSetuid, tc.stripped) {
				t.Errorf("StrippedSetuid = %q, want %q", rep.StrippedSetuid, tc.stripped)
			}
			if !reflect.DeepEqual(rep.StrippedCaps, tc.caps) {
				t.Errorf("StrippedCaps = %q, want %q", rep.StrippedCaps, tc.caps)
			}
			if !reflect.DeepEqual(rep.DroppedXattrs, tc.droppedXat) {
				t.Errorf("DroppedXattrs = %q, want %q", rep.DroppedXattrs, tc.droppedXat)
			}
			for n, want := range tc.files {
				p := filepath.Join(sb.dest, n)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if fi.Mode() != want.mode || int(st.Uid) != want.uid || int(st.Gid) != want.gid {
					t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", n, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
				}
				_, err = unix.Lgetxattr(p, "security.capability", nil)
				if has := err == nil; has != want.hasCap {
					t.Errorf("%s: has security.capability = %v, want %v", n, has, want.hasCap)
				}
			}
			buf := make([]byte, 16)
			n, err := unix.Lgetxattr(filepath.Join(sb.dest, "bin/plain"), "user.note", buf)
			if err != nil || string(buf[:n]) != "kept" {
				t.Errorf("bin/plain user.note = %q, %v; want kept", buf[:n], err)
			}
		})
	}
}

func TestUnpackHardlinkAbsoluteInside(t *testing.T) {
	sb := newSandbox(t)
	if _, err := unpack(t, sb.dest, fixture(t, "hardlink-absolute-inside.tar"), image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	sb.checkOutside(t)
	a, err1 := os.Stat(filepath.Join(sb.dest, "etc/target"))
	b, err2 := os.Stat(filepath.Join(sb.dest, "link"))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("link is not a hardlink of etc/target: %v %v", err1, err2)
	}
}

func TestUnpackBombs(t *testing.T) {
	big := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		must(t, tw.WriteHeader(&tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Mode: 0o644, Size: 64 << 20}))
		zero := make([]byte, 1<<20)
		for i := 0; i < 64; i++ {
			_, err := tw.Write(zero)
			must(t, err)
		}
		must(t, tw.Close())
		return buf.Bytes()
	}
	many := func(n, size int) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := make([]byte, size)
		for i := 0; i < n; i++ {
			must(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%04d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}))
			_, err := tw.Write(body)
			must(t, err)
		}
		must(t, tw.Close())
		return buf.Bytes()
	}
	cases := []struct {
		name   string
		layer  []byte
		limits image.Limits
		want   string // exact, or prefix when ending in "*"
	}{
		{"one huge file", big(), image.Limits{MaxBytes: 1 << 20},
			`layer entry "bomb": unpack limit exceeded: its 67108864 bytes would take the image past 1048576 bytes`},
		{"many files", many(2000, 1024), image.Limits{MaxBytes: 1 << 20},
			`layer entry "f0*`},
		{"many entries", many(2000, 0), image.Limits{MaxEntries: 1000},
			`layer entry "f1000": unpack limit exceeded: the image has more than 1000 entries`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gz := imagetest.Gzip(tc.layer)
			if len(gz) > len(tc.layer)/10 {
				t.Fatalf("bomb compresses to %d of %d bytes; not a bomb", len(gz), len(tc.layer))
			}
			sb := newSandbox(t)
			_, err := unpack(t, sb.dest, gz, image.UnpackOptions{Limits: tc.limits})
			sb.checkOutside(t)
			if err == nil {
				t.Fatal("unpack succeeded")
			}
			if !errors.Is(err, image.ErrLimitExceeded) {
				t.Errorf("error does not match ErrLimitExceeded: %v", err)
			}
			if p, ok := strings.CutSuffix(tc.want, "*"); ok {
				if !strings.HasPrefix(err.Error(), p) || !strings.Contains(err.Error(), "more than 1048576 bytes of decompressed data") {
					t.Errorf("error %q, want prefix %q and the byte limit", err, p)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// layerOf builds an uncompressed layer from entries.
func layerOf(t testing.TB, entries ...imagetest.Entry) []byte {
	t.Helper()
	b, err := imagetest.LayerTar(entries)
	must(t, err)
	return b
}

func dir(n string) imagetest.Entry { return imagetest.Entry{Name: n, Type: tar.TypeDir, Mode: 0o755} }
func file(n, body string) imagetest.Entry {
	return imagetest.Entry{Name: n, Type: tar.TypeReg, Mode: 0o644, Body: []byte(body)}
}
func symlink(n, target string) imagetest.Entry {
	return imagetest.Entry{Name: n, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}
func hardlink(n, target string) imagetest.Entry {
	return imagetest.Entry{Name: n, Type: tar.TypeLink, Linkname: target}
}

// tree lists dest as "path type[:content|->target]" lines.
func tree(t testing.TB, dest string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" -> "+l)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" = "+string(b))
		}
		return nil
	})
	must(t, err)
	return out
}

func TestUnpackLayerSemantics(t *testing.T) {
	cases := []struct {
		name   string
		layers [][]imagetest.Entry
		want   []string
	}{
		{
			name: "whiteouts",
			layers: [][]imagetest.Entry{
				{dir("a/"), file("a/x", "x"), file("a/y", "y"), dir("b/"), file("b/z", "z"), dir("c/"), file("c/old", "old"), dir("c/sub/"), file("c/sub/old2", "o")},
				{imagetest.Entry{Name: "a/.wh.x", Type: tar.TypeReg}, imagetest.Entry{Name: ".wh.b", Type: tar.TypeReg},
					imagetest.Entry{Name: "c/.wh..wh..opq", Type: tar.TypeReg}, file("c/new", "new"),
					imagetest.Entry{Name: "missing/.wh.nothing", Type: tar.TypeReg}},
			},
			want: []string{"a/", "a/y = y", "c/", "c/new = new"},
		},
		{
			name: "opaque after same-layer entries keeps them",
			layers: [][]imagetest.Entry{
				{dir("c/"), file("c/old", "old")},
				{file("c/sub/new", "new"), imagetest.Entry{Name: "c/.wh..wh..opq", Type: tar.TypeReg}},
			},
			want: []string{"c/", "c/sub/", "c/sub/new = new"},
		},
		{
			name: "replacements",
			layers: [][]imagetest.Entry{
				{dir("d/"), file("d/f", "f"), file("f", "file"), symlink("l", "/etc"), dir("s/"), file("s/k", "k")},
				{file("d", "now a file"), dir("f/"), dir("l/"), symlink("s", "d")},
			},
			want: []string{"d = now a file", "f/", "l/", "s -> d"},
		},
		{
			name: "overwrite does not write through a hardlink",
			layers: [][]imagetest.Entry{
				{file("f", "orig"), hardlink("g", "f")},
				{file("g", "new")},
			},
			want: []string{"f = orig", "g = new"},
		},
		{
			name: "overwrite replaces a symlink instead of following it",
			layers: [][]imagetest.Entry{
				{dir("etc/"), file("etc/passwd", "image passwd"), symlink("link", "/etc/passwd")},
				{file("link", "replaced")},
			},
			want: []string{"etc/", "etc/passwd = image passwd", "link = replaced"},
		},
		{
			name: "read-only directory can be filled",
			layers: [][]imagetest.Entry{
				{imagetest.Entry{Name: "ro/", Type: tar.TypeDir, Mode: 0o555}, file("ro/f", "f"), file("implied/deep/f", "g")},
			},
			want: []string{"implied/", "implied/deep/", "implied/deep/f = g", "ro/", "ro/f = f"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			for _, l := range tc.layers {
				if _, err := unpack(t, sb.dest, imagetest.Gzip(layerOf(t, l...)), image.UnpackOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			sb.checkOutside(t)
			if got := tree(t, sb.dest); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tree:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestUnpackMetadata(t *testing.T) {
	sb := newSandbox(t)
	layer := layerOf(t,
		imagetest.Entry{Name: "./", Type: tar.TypeDir, Mode: 0o750},
		imagetest.Entry{Name: "ro/", Type: tar.TypeDir, Mode: 0o555},
		imagetest.Entry{Name: "ro/f", Type: tar.TypeReg, Mode: 0o600, Body: []byte("f")},
		imagetest.Entry{Name: "fifo", Type: tar.TypeFifo, Mode: 0o640},
	)
	if _, err := unpack(t, sb.dest, layer, image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]fs.FileMode{
		".":    fs.ModeDir | 0o750,
		"ro":   fs.ModeDir | 0o555,
		"ro/f": 0o600,
		"fifo": fs.ModeNamedPipe | 0o640,
	} {
		fi, err := os.Lstat(filepath.Join(sb.dest, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", n, fi.Mode(), want)
		}
		if !fi.ModTime().Equal(imagetest.Epoch) {
			t.Errorf("%s: mtime %v, want %v", n, fi.ModTime(), imagetest.Epoch)
		}
	}
}

func TestUnpackMalformed(t *testing.T) {
	cases := []struct {
		name  string
		layer []byte
		want  string
	}{
		{"not a tar", []byte("hello, this is not a tar archive at all; definitely not 512 bytes"), "layer is not a valid tar stream: unexpected EOF"},
		{"truncated gzip", imagetest.Gzip(fixture(t, "setuid.tar"))[:100], `layer is not a valid tar stream*`},
		{"root as file", layerOf(t, imagetest.Entry{Name: ".", Type: tar.TypeReg}), `layer entry ".": only a directory can name the image root`},
		{"empty symlink", layerOf(t, symlink("l", "")), `layer entry "l": symlink with an empty target`},
		{"long name", layerOf(t, file(strings.Repeat("d/", 2100)+"f", "")), `layer entry "` + strings.Repeat("d/", 2100) + `f": name longer than 4096 bytes`},
		{"hardlink to root", layerOf(t, hardlink("h", "/")), `layer entry "h": hardlink target "/" names the image root`},
		{"hardlink to directory", layerOf(t, dir("d/"), hardlink("h", "d")), `layer entry "h": creating hardlink to "d": operation not permitted`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			_, err := unpack(t, sb.dest, tc.layer, image.UnpackOptions{})
			sb.checkOutside(t)
			if err == nil {
				t.Fatal("unpack succeeded")
			}
			if p, ok := strings.CutSuffix(tc.want, "*"); ok {
				if !strings.HasPrefix(err.Error(), p) {
					t.Errorf("error %q, want prefix %q", err, p)
				}
			} else if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}

func TestUnpackThroughDanglingSymlink(t *testing.T) {
	sb := newSandbox(t)
	if _, err := unpack(t, sb.dest, layerOf(t, symlink("l", "/nonexistent")), image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := unpack(t, sb.dest, layerOf(t, file("l/f", "x")), image.UnpackOptions{})
	sb.checkOutside(t)
	if err == nil || !strings.HasPrefix(err.Error(), `layer entry "l/f": parent directory "l": `) || !strings.HasSuffix(err.Error(), "not a directory") {
		t.Errorf("error %v", err)
	}
}

// Without owners every entry belongs to the unpacking user, whose groups a
// rootless container's processes keep: the group bits narrow to the other
// bits, so a file the image kept from "other" (a 0640 /etc/shadow) stays
// unreadable to the container's non-root user. With owners, modes are kept.
func TestUnpackWithoutOwnersNarrowsGroupBits(t *testing.T) {
	layer := layerOf(t,
		imagetest.Entry{Name: "etc", Type: tar.TypeDir, Mode: 0o750},
		imagetest.Entry{Name: "etc/shadow", Type: tar.TypeReg, Mode: 0o640, Gid: 42, Body: []byte("root:x")},
		imagetest.Entry{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o664, Body: []byte("root")},
		imagetest.Entry{Name: "run", Type: tar.TypeDir, Mode: 0o1777},
	)
	for _, tc := range []struct {
		ignoreOwner bool
		want        map[string]os.FileMode
	}{
		{false, map[string]os.FileMode{"etc": 0o750, "etc/shadow": 0o640, "etc/passwd": 0o664, "run": 0o777 | os.ModeSticky}},
		{true, map[string]os.FileMode{"etc": 0o700, "etc/shadow": 0o600, "etc/passwd": 0o644, "run": 0o777 | os.ModeSticky}},
	} {
		if !tc.ignoreOwner && os.Geteuid() != 0 {
			continue // without root, owners are never applied
		}
		sb := newSandbox(t)
		if _, err := unpack(t, sb.dest, layer, image.UnpackOptions{IgnoreOwner: tc.ignoreOwner}); err != nil {
			t.Fatal(err)
		}
		for name, want := range tc.want {
			fi, err := os.Lstat(filepath.Join(sb.dest, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (os.ModePerm | os.ModeSticky); got != want {
				t.Errorf("IgnoreOwner=%v: %s has mode %v, want %v", tc.ignoreOwner, name, got, want)
			}
		}
	}
}

package profiles_test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/profiles"
)

func TestParseLandlock(t *testing.T) {
	ro := func(p string) profiles.LandlockRule {
		return profiles.LandlockRule{Path: p, Access: profiles.LandlockRO}
	}
	rw := func(p string) profiles.LandlockRule {
		return profiles.LandlockRule{Path: p, Access: profiles.LandlockRW}
	}
	opt := func(r profiles.LandlockRule) profiles.LandlockRule { r.Optional = true; return r }
	defaults := []profiles.LandlockRule{
		ro("/"), opt(rw("/dev/full")), opt(rw("/dev/null")), opt(rw("/dev/ptmx")), opt(rw("/dev/pts")),
		opt(rw("/dev/shm")), opt(rw("/dev/tty")), opt(rw("/dev/zero")), opt(rw("/tmp")), opt(rw("/var/tmp")),
	}
	for _, tc := range []struct {
		name    string
		opts    []string
		want    []profiles.LandlockRule
		wantErr string
	}{
		{name: "ro list", opts: []string{"ro=/usr:/etc"}, want: []profiles.LandlockRule{ro("/etc"), ro("/usr")}},
		{name: "ro and rw", opts: []string{"ro=/usr", "rw=/tmp:/data"}, want: []profiles.LandlockRule{rw("/data"), rw("/tmp"), ro("/usr")}},
		{name: "rw wins over ro", opts: []string{"rw=/data", "ro=/data"}, want: []profiles.LandlockRule{rw("/data")}},
		{name: "duplicates merge", opts: []string{"ro=/usr:/usr", "ro=/usr"}, want: []profiles.LandlockRule{ro("/usr")}},
		{name: "default", opts: []string{"default"}, want: defaults},
		{name: "default twice", opts: []string{"default", "default"}, want: defaults},
		{name: "explicit makes a default path required", opts: []string{"default", "rw=/tmp"},
			want: slices.Concat(defaults[:8], []profiles.LandlockRule{rw("/tmp")}, defaults[9:])},
		{name: "explicit ro on a default rw path stays rw", opts: []string{"default", "ro=/tmp"},
			want: slices.Concat(defaults[:8], []profiles.LandlockRule{rw("/tmp")}, defaults[9:])},
		{name: "path with spaces and commas", opts: []string{"ro=/my data,1"}, want: []profiles.LandlockRule{ro("/my data,1")}},

		{name: "unknown keyword", opts: []string{"none"}, wantErr: `bad landlock option "none"`},
		{name: "unknown access", opts: []string{"rx=/usr"}, wantErr: `bad landlock option "rx=/usr"`},
		{name: "no path", opts: []string{"ro="}, wantErr: "no path given"},
		{name: "empty element", opts: []string{"ro=/usr::/etc"}, wantErr: "empty path"},
		{name: "relative", opts: []string{"rw=tmp"}, wantErr: `path "tmp" is not absolute`},
		{name: "dotdot", opts: []string{"ro=/usr/../etc"}, wantErr: `is not clean (want "/etc")`},
		{name: "trailing slash", opts: []string{"ro=/usr/"}, wantErr: "is not clean"},
		{name: "NUL", opts: []string{"ro=/a\x00b"}, wantErr: "NUL"},
		{name: "too long", opts: []string{"ro=/" + strings.Repeat("a", 4096)}, wantErr: "longer than 4096"},
		{name: "too many", opts: []string{"ro=" + manyLandlockPaths(257)}, wantErr: "more than the 256 allowed"},
		{name: "label style", opts: []string{"landlock=ro=/usr"}, wantErr: `bad landlock option "landlock=ro=/usr"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := profiles.ParseLandlock(tc.opts)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted %q as %+v", tc.opts, got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Rules, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got.Rules, tc.want)
			}
		})
	}
	if got, err := profiles.ParseLandlock(nil); got != nil || err != nil {
		t.Errorf("no options: got %v, %v; want nil, nil", got, err)
	}
}

func manyLandlockPaths(n int) string {
	var ps []string
	for i := range n {
		ps = append(ps, "/p"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
	}
	return strings.Join(ps, ":")
}

func TestLandlockInitArgs(t *testing.T) {
	rules, err := profiles.ParseLandlock([]string{"ro=/usr:/bin", "rw=/tmp", "default"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/.secrun/init",
		"--ro=/", "--ro=/bin",
		"--rw-optional=/dev/full", "--rw-optional=/dev/null", "--rw-optional=/dev/ptmx", "--rw-optional=/dev/pts",
		"--rw-optional=/dev/shm", "--rw-optional=/dev/tty", "--rw-optional=/dev/zero",
		"--rw=/tmp", "--ro=/usr", "--rw-optional=/var/tmp",
		"--",
	}
	if got := rules.InitArgs(); !slices.Equal(got, want) {
		t.Fatalf("InitArgs:\n got %q\nwant %q", got, want)
	}
	if s := rules.String(); !strings.Contains(s, "rw=/tmp ") || !strings.Contains(s, "rw=/var/tmp?") {
		t.Errorf("String() = %q", s)
	}
}

// FuzzParseLandlock: whatever is accepted becomes a bounded argv of
// well-formed flags, one per clean absolute path.
func FuzzParseLandlock(f *testing.F) {
	for _, seed := range []string{
		"default", "ro=/usr:/etc", "rw=/tmp", "ro=", "rw=/a/../b", "ro=/a::/b",
		"ro=/a\x00", "rx=/a", "ro=//a", "ro=/a/", "rw=/-- ", "ro=/--",
	} {
		f.Add(seed, "rw=/tmp")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		rules, err := profiles.ParseLandlock([]string{a, b})
		if err != nil {
			return
		}
		args := rules.InitArgs()
		if args[0] != profiles.LandlockInitPath || args[len(args)-1] != "--" || len(args) != len(rules.Rules)+2 {
			t.Fatalf("bad argv %q", args)
		}
		for _, arg := range args[1 : len(args)-1] {
			_, p, ok := strings.Cut(arg, "=")
			if !ok || !strings.HasPrefix(arg, "--r") || path.Clean(p) != p || !path.IsAbs(p) {
				t.Fatalf("bad flag %q in %q", arg, args)
			}
		}
	})
}

// lsmGoBuild builds a static binary of pkg (relative to the module root)
// into dir.
func lsmGoBuild(t testing.TB, pkg, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Dir = testenv.ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func TestFindInitBinary(t *testing.T) {
	dir := t.TempDir()
	init := lsmGoBuild(t, "./cmd/secrun-init", dir)

	t.Setenv(profiles.InitBinaryEnv, init)
	got, err := profiles.FindInitBinary()
	if err != nil || got != init {
		t.Fatalf("FindInitBinary = %q, %v; want %q", got, err, init)
	}

	// A dynamically linked executable would not run inside a foreign rootfs.
	dynamic := ""
	for _, c := range []string{"/bin/ls", "/usr/bin/env", "/bin/sh"} {
		if b, err := os.ReadFile(c); err == nil && strings.Contains(string(b), "ld-linux") {
			dynamic = c
			break
		}
	}
	if dynamic != "" {
		t.Setenv(profiles.InitBinaryEnv, dynamic)
		if _, err := profiles.FindInitBinary(); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("dynamic %s: got %v, want a 'dynamically linked' error", dynamic, err)
		}
	}

	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{notExec, filepath.Join(dir, "missing"), dir} {
		t.Setenv(profiles.InitBinaryEnv, bad)
		if _, err := profiles.FindInitBinary(); err == nil || !strings.Contains(err.Error(), "$SECRUN_INIT") {
			t.Errorf("%s: got %v, want an error naming $SECRUN_INIT", bad, err)
		}
	}
}

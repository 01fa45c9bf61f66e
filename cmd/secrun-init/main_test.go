package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secrun/secrun/profiles"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantRules []rule
		wantArgv  []string
		// wantSeccomp is "file flags" when a filter is expected.
		wantSeccomp string
		wantErr     string
	}{
		{
			name:        "seccomp only",
			args:        []string{"--seccomp=/.secrun/seccomp.bpf", "--seccomp-flags=2", "--", "true"},
			wantArgv:    []string{"true"},
			wantSeccomp: "/.secrun/seccomp.bpf 2",
		},
		{
			name:        "landlock and seccomp",
			args:        []string{"--ro=/", "--seccomp=/f", "--", "true"},
			wantRules:   []rule{{path: "/"}},
			wantArgv:    []string{"true"},
			wantSeccomp: "/f 0",
		},
		{name: "seccomp relative", args: []string{"--seccomp=f", "--", "x"}, wantErr: "must be absolute"},
		{name: "seccomp twice", args: []string{"--seccomp=/f", "--seccomp=/g", "--", "x"}, wantErr: "twice"},
		{name: "seccomp flags alone", args: []string{"--ro=/", "--seccomp-flags=2", "--", "x"}, wantErr: "without --seccomp"},
		{name: "seccomp flag TSYNC refused", args: []string{"--seccomp=/f", "--seccomp-flags=1", "--", "x"}, wantErr: "SECCOMP_FILTER_FLAG_LOG"},
		{name: "seccomp flags not a number", args: []string{"--seccomp=/f", "--seccomp-flags=log", "--", "x"}, wantErr: "SECCOMP_FILTER_FLAG_LOG"},
		{
			name:      "all flags",
			args:      []string{"--ro=/usr", "--rw=/tmp", "--ro-optional=/opt", "--rw-optional=/dev/null", "--", "/bin/sh", "-c", "echo hi"},
			wantRules: []rule{{path: "/usr"}, {path: "/tmp", write: true}, {path: "/opt", optional: true}, {path: "/dev/null", write: true, optional: true}},
			wantArgv:  []string{"/bin/sh", "-c", "echo hi"},
		},
		{
			name:      "command that looks like a flag",
			args:      []string{"--ro=/", "--", "--ro=/x", "--"},
			wantRules: []rule{{path: "/"}},
			wantArgv:  []string{"--ro=/x", "--"},
		},
		{
			name:      "path with = and spaces",
			args:      []string{"--rw=/a=b c", "--", "x"},
			wantRules: []rule{{path: "/a=b c", write: true}},
			wantArgv:  []string{"x"},
		},
		{name: "no separator", args: []string{"--ro=/usr", "/bin/sh"}, wantErr: `unknown argument "/bin/sh"`},
		{name: "no separator at all", args: []string{"--ro=/usr"}, wantErr: "missing -- before the command"},
		{name: "no command", args: []string{"--ro=/usr", "--"}, wantErr: "no command after --"},
		{name: "no rules", args: []string{"--", "/bin/sh"}, wantErr: "no landlock rule and no seccomp filter given"},
		{name: "relative path", args: []string{"--ro=usr", "--", "x"}, wantErr: "must be absolute"},
		{name: "empty path", args: []string{"--rw=", "--", "x"}, wantErr: "must be absolute"},
		{name: "unknown flag", args: []string{"--rx=/usr", "--", "x"}, wantErr: `unknown argument "--rx=/usr"`},
		{name: "flag without =", args: []string{"--ro", "/usr", "--", "x"}, wantErr: `unknown argument "--ro"`},
		{name: "empty", args: nil, wantErr: "missing --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseArgs(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", c, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.rules, tc.wantRules) || !slices.Equal(c.argv, tc.wantArgv) {
				t.Fatalf("got %+v, want rules %+v argv %q", c, tc.wantRules, tc.wantArgv)
			}
			gotSeccomp := ""
			if c.seccomp != "" {
				gotSeccomp = fmt.Sprintf("%s %d", c.seccomp, c.seccompFlags)
			}
			if gotSeccomp != tc.wantSeccomp {
				t.Fatalf("seccomp %q, want %q", gotSeccomp, tc.wantSeccomp)
			}
		})
	}
	many := []string{}
	for range maxRules + 1 {
		many = append(many, "--ro=/x")
	}
	if _, err := parseArgs(append(many, "--", "x")); err == nil {
		t.Error("accepted more than maxRules rules")
	}
}

// TestInitArgsRoundTrip keeps profiles.InitArgs and this parser in step:
// every rule secrun renders comes back with the same path, access and
// optionality.
func TestInitArgsRoundTrip(t *testing.T) {
	rules, err := profiles.ParseLandlock([]string{"default", "ro=/usr:/etc", "rw=/data:/my dir=x"})
	if err != nil {
		t.Fatal(err)
	}
	args := append(rules.InitArgs(), "/bin/app", "--flag")
	if args[0] != profiles.LandlockInitPath {
		t.Fatalf("argv[0] = %q", args[0])
	}
	c, err := parseArgs(args[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.argv, []string{"/bin/app", "--flag"}) {
		t.Fatalf("argv = %q", c.argv)
	}
	if len(c.rules) != len(rules.Rules) {
		t.Fatalf("%d rules, want %d", len(c.rules), len(rules.Rules))
	}
	for i, r := range rules.Rules {
		want := rule{path: r.Path, write: r.Access == profiles.LandlockRW, optional: r.Optional}
		if c.rules[i] != want {
			t.Errorf("rule %d: got %+v, want %+v", i, c.rules[i], want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("--ro=/usr", "--", "/bin/sh")
	f.Add("--rw=/tmp", "--rx=/x", "--")
	f.Add("--ro-optional=/a", "--rw-optional=b", "--")
	f.Add("--", "--", "--")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		cfg, err := parseArgs([]string{a, b, c, "cmd"})
		if err != nil {
			return
		}
		if len(cfg.rules) == 0 || len(cfg.argv) == 0 {
			t.Fatalf("accepted %q with %d rules and argv %q", []string{a, b, c}, len(cfg.rules), cfg.argv)
		}
		for _, r := range cfg.rules {
			if !strings.HasPrefix(r.path, "/") {
				t.Fatalf("relative path %q accepted", r.path)
			}
		}
	})
}

// TestConfineFailsClosed: when the kernel reports no Landlock, confine
// errors before changing anything, so run never executes the command.
func TestConfineFailsClosed(t *testing.T) {
	saved := kernelABI
	t.Cleanup(func() { kernelABI = saved })
	for _, tc := range []struct {
		name string
		abi  func() (int, error)
	}{
		{"ENOSYS", func() (int, error) { return 0, errors.New("function not implemented") }},
		{"ABI 0", func() (int, error) { return 0, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kernelABI = tc.abi
			if err := confine([]rule{{path: "/"}}); err == nil || !strings.Contains(err.Error(), "landlock is not available") {
				t.Fatalf("got %v, want a 'landlock is not available' error", err)
			}
			marker := filepath.Join(t.TempDir(), "ran")
			code := run([]string{"--ro=/", "--", "/bin/sh", "-c", "touch " + marker})
			if code != exitInitFailed {
				t.Errorf("run returned %d, want %d", code, exitInitFailed)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran without Landlock")
			}
		})
	}
}

// goBin is the go command: from PATH, else the toolchain's usual place.
func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func buildInit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "secrun-init")
	cmd := exec.Command(goBin(), "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// TestBinaryIsStaticAndSmall: secrun-init runs inside arbitrary root file
// systems, so it must not need a dynamic loader, and it must stay a tiny
// program: only the standard library, x/sys, go-landlock and psx.
func TestBinaryIsStaticAndSmall(t *testing.T) {
	bin := buildInit(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("secrun-init is dynamically linked")
		}
	}
	out, err := exec.Command(goBin(), "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/secrun/secrun/cmd/secrun-init",
			strings.HasPrefix(dep, "golang.org/x/sys/"),
			strings.HasPrefix(dep, "github.com/landlock-lsm/go-landlock/"),
			strings.HasPrefix(dep, "kernel.org/pub/linux/libs/security/libcap/psx"):
		default:
			t.Errorf("secrun-init depends on %s", dep)
		}
	}
}

// TestBinaryConfinesOnHost runs the built binary directly on the host (no
// container): the kernel enforces the ruleset on the executed command.
func TestBinaryConfinesOnHost(t *testing.T) {
	abi, err := kernelABI()
	if err != nil || abi < 1 {
		t.Fatalf("this kernel has no Landlock (%v); the test needs it", err)
	}
	bin := buildInit(t)
	sh, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox (busybox-static) is needed: %v", err)
	}
	sh, err = filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	rw := t.TempDir()
	other := t.TempDir()
	secret := filepath.Join(other, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo ok > ` + rw + `/file && echo wrote-rw
echo no > ` + other + `/file && echo wrote-other
cat ` + secret + ` && echo read-other
true`
	cmd := exec.Command(bin, "--ro="+sh, "--rw="+rw, "--rw-optional=/nonexistent", "--", sh, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, "wrote-rw") {
		t.Errorf("write under --rw failed: %s", got)
	}
	if strings.Contains(got, "wrote-other") || !strings.Contains(got, "Permission denied") {
		t.Errorf("write outside the ruleset was not denied: %s", got)
	}
	if strings.Contains(got, "read-other") {
		t.Errorf("read outside the ruleset was not denied: %s", got)
	}

	// Exit statuses when the command cannot start.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--ro=/", "--", "/nonexistent/cmd"}, exitNotFound},
		{[]string{"--ro=" + rw, "--", sh, "true"}, exitCannotExecute},
		{[]string{"--ro=/missing-required", "--", sh, "true"}, exitInitFailed},
		{[]string{"--", sh}, exitInitFailed},
	} {
		err := exec.Command(bin, tc.args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("%q: got %v, want exit %d", tc.args, err, tc.code)
		}
	}
}

// BenchmarkExec compares starting a command directly with starting it under
// secrun-init with the default ruleset: the cost Landlock adds per process.
func BenchmarkExec(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "secrun-init")
	cmd := exec.Command(goBin(), "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	sh, err := exec.LookPath("busybox")
	if err != nil {
		b.Fatal(err)
	}
	rules, err := profiles.ParseLandlock([]string{"default"})
	if err != nil {
		b.Fatal(err)
	}
	initArgs := rules.InitArgs()[1:]
	for _, bc := range []struct {
		name string
		argv []string
	}{
		{"direct", []string{sh, "true"}},
		{"secrun-init", append(append([]string{bin}, initArgs...), sh, "true")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if out, err := exec.Command(bc.argv[0], bc.argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}

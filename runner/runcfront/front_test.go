package runcfront_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/runner/runcfront"
)

// execCall is what the front asked to exec.
type execCall struct {
	path string
	argv []string
}

// site is a directory holding a front, a runc beside it and a config.
type site struct {
	dir, self, runc, config string
}

func newSite(t *testing.T) site {
	t.Helper()
	dir := t.TempDir()
	s := site{dir: dir, self: filepath.Join(dir, "secrun-runc"), runc: filepath.Join(dir, "runc"), config: filepath.Join(dir, "runtime.yaml")}
	for _, p := range []string{s.self, s.runc} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s site) main(t *testing.T, env map[string]string, execErr error, args ...string) (int, []execCall, string) {
	t.Helper()
	var calls []execCall
	var stderr bytes.Buffer
	code := runcfront.Main(args, runcfront.System{
		Getenv:  func(k string) string { return env[k] },
		Environ: []string{"PATH=/nonexistent"},
		Stderr:  &stderr,
		Self:    s.self,
		Exec: func(path string, argv, _ []string) error {
			calls = append(calls, execCall{path, argv})
			return execErr
		},
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	})
	return code, calls, stderr.String()
}

func TestFrontPassesThroughWhatStartsNothing(t *testing.T) {
	s := newSite(t)
	env := map[string]string{runcfront.ConfigEnv: s.config}
	for _, args := range [][]string{
		{"--root", "/run/x", "state", "abc"},
		{"--root", "/run/x", "--log", "/tmp/l.json", "kill", "abc", "KILL"},
		{"delete", "--force", "abc"},
		{"start", "abc"},
		{"--version"},
		{"create", "--help"},
	} {
		code, calls, stderr := s.main(t, env, nil, args...)
		if code != 0 || len(calls) != 1 || calls[0].path != s.runc || !slices.Equal(calls[0].argv, append([]string{s.runc}, args...)) {
			t.Errorf("%q: exit %d, exec %+v, stderr %q; want runc beside the front with the same arguments", args, code, calls, stderr)
		}
	}
	// --secrun-config is the front's, not runc's.
	_, calls, _ := s.main(t, nil, nil, "--secrun-config", s.config, "state", "abc")
	if len(calls) != 1 || !slices.Equal(calls[0].argv, []string{s.runc, "state", "abc"}) {
		t.Errorf("--secrun-config reached runc: %+v", calls)
	}
}

func TestFrontHandsStartsToAdmit(t *testing.T) {
	s := newSite(t)
	admit := filepath.Join(s.dir, runcfront.AdmitName)
	for _, args := range [][]string{
		{"--root", "/run/x", "create", "--bundle", "/b", "abc"},
		{"run", "-d", "--bundle", "/b", "abc"},
		{"exec", "--process", "/p.json", "abc"},
		{"checkpoint", "abc"},
		{"--secrun-config", s.config, "create", "abc"},
		{"--no-such-flag", "create", "abc"}, // unreadable: admit reports it
	} {
		code, calls, _ := s.main(t, nil, nil, args...)
		if code != 0 || len(calls) != 1 || calls[0].path != admit || !slices.Equal(calls[0].argv, append([]string{s.self}, args...)) {
			t.Errorf("%q: exit %d, exec %+v; want %s with argv[0] the front and the arguments unchanged", args, code, calls, admit)
		}
	}
}

// Without its policy half the front refuses to start anything, in one
// line on stderr and in runc's log, where engines look.
func TestFrontFailsClosedWithoutAdmit(t *testing.T) {
	s := newSite(t)
	logPath := filepath.Join(s.dir, "log.json")
	code, _, stderr := s.main(t, nil, errors.New("no such file or directory"), "--log", logPath, "--log-format", "json", "create", "--bundle", "/b", "abc")
	if code != runcfront.ExitError || !strings.Contains(stderr, "refusing runc create") || !strings.Contains(stderr, runcfront.AdmitName) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	data, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(data), `"level":"error"`) || !strings.Contains(string(data), "refusing runc create") {
		t.Errorf("runc log: %v %s", err, data)
	}
}

func TestFrontRuntimeFromConfig(t *testing.T) {
	s := newSite(t)
	other := filepath.Join(s.dir, "other-runc")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{runcfront.ConfigEnv: s.config}
	for _, tc := range []struct {
		config, want string
	}{
		{"runtime: " + other + "\npolicy: baseline\n", other},
		{"policy: baseline\n", s.runc},       // none configured: beside the front
		{"runtime: [not, a, path\n", s.runc}, // unreadable: an engine must still stop containers
		{"", s.runc},                         // empty file
	} {
		if err := os.WriteFile(s.config, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		_, calls, stderr := s.main(t, env, nil, "state", "abc")
		if len(calls) != 1 || calls[0].path != tc.want {
			t.Errorf("config %q: exec %+v (%s), want %s", tc.config, calls, stderr, tc.want)
		}
	}
	// A configured runtime that is the front itself would loop.
	if err := os.WriteFile(s.config, []byte("runtime: "+s.self+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, calls, stderr := s.main(t, env, nil, "state", "abc")
	if code != runcfront.ExitError || len(calls) != 0 || !strings.Contains(stderr, "is secrun-runc itself") {
		t.Errorf("runtime: the front itself: exit %d, exec %+v, stderr %q", code, calls, stderr)
	}
}

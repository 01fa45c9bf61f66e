package runcfront_test

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/runner/runcfront"
)

// fakeResident listens on a socket in dir and answers every call with
// answer(request); a nil answer closes the connection without one, as a
// server that died mid-call would.
func fakeResident(t *testing.T, dir string, answer func(*runcfront.ResidentRequest, []int) []byte) string {
	t.Helper()
	sock := filepath.Join(dir, "admit.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 1<<20), make([]byte, 128)
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			var fds []int
			if scms, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil && err == nil {
				for _, scm := range scms {
					got, _ := unix.ParseUnixRights(&scm)
					fds = append(fds, got...)
				}
			}
			rest, _ := io.ReadAll(conn)
			var req runcfront.ResidentRequest
			if json.Unmarshal(append(buf[:n], rest...), &req) == nil {
				if b := answer(&req, fds); b != nil {
					conn.Write(b)
				}
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
			conn.Close()
		}
	}()
	return sock
}

// mainWithFile runs the front with a real stderr file (the front passes
// its descriptor to the server) and returns the exit status, the execs it
// asked for and what it wrote to stderr.
func (s site) mainWithFile(t *testing.T, env map[string]string, args ...string) (int, []execCall, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []execCall
	code := runcfront.Main(args, runcfront.System{
		Getenv:  func(k string) string { return env[k] },
		Environ: []string{"PATH=/nonexistent", "A=1"},
		Stderr:  f,
		Self:    s.self,
		Exec: func(path string, argv, _ []string) error {
			calls = append(calls, execCall{path, argv})
			return nil
		},
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	})
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, calls, string(out)
}

func TestFrontAsksTheResidentServer(t *testing.T) {
	s := newSite(t)
	admit := filepath.Join(s.dir, runcfront.AdmitName)
	if err := os.WriteFile(admit, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	admitID, err := runcfront.StatID(admit)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--root", "/run/x", "create", "--bundle", "b", "abc"}
	plan := runcfront.ExecPlan{Path: s.runc, Argv: []string{s.runc, "--root", "/run/x", "create", "--bundle", "b", "abc"}, Env: []string{"A=1"}}

	t.Run("allowed: the front execs what the server says", func(t *testing.T) {
		type call struct {
			req *runcfront.ResidentRequest
			fds int
		}
		calls := make(chan call, 1)
		sock := fakeResident(t, t.TempDir(), func(r *runcfront.ResidentRequest, fds []int) []byte {
			calls <- call{r, len(fds)}
			b, _ := json.Marshal(runcfront.ResidentReply{Exec: &plan})
			return b
		})
		code, execs, stderr := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: sock}, args...)
		if code != 0 || len(execs) != 1 || execs[0].path != plan.Path || !slices.Equal(execs[0].argv, plan.Argv) {
			t.Fatalf("exit %d, exec %+v, stderr %q; want the server's plan", code, execs, stderr)
		}
		c := <-calls
		got, gotFDs := c.req, c.fds
		if got == nil || !slices.Equal(got.Args, args) || got.Self != s.self || got.Admit != admitID || got.Version != runcfront.ResidentVersion || !slices.Contains(got.Env, "A=1") {
			t.Fatalf("request %+v", got)
		}
		if gotFDs != 2 {
			t.Fatalf("%d descriptors with the request, want the working directory and stderr", gotFDs)
		}
	})

	t.Run("refused: the server's exit status, no exec", func(t *testing.T) {
		sock := fakeResident(t, t.TempDir(), func(*runcfront.ResidentRequest, []int) []byte {
			return []byte(`{"exit":126}`)
		})
		code, calls, _ := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: sock}, args...)
		if code != 126 || len(calls) != 0 {
			t.Fatalf("exit %d, exec %+v; want 126 and nothing started", code, calls)
		}
	})

	t.Run("fallback: the front execs secrun-runc-admit", func(t *testing.T) {
		sock := fakeResident(t, t.TempDir(), func(*runcfront.ResidentRequest, []int) []byte {
			return []byte(`{"fallback":"another build"}`)
		})
		code, calls, _ := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: sock}, args...)
		if code != 0 || len(calls) != 1 || calls[0].path != admit || !slices.Equal(calls[0].argv, append([]string{s.self}, args...)) {
			t.Fatalf("exit %d, exec %+v; want %s", code, calls, admit)
		}
	})

	t.Run("no server: the front execs secrun-runc-admit", func(t *testing.T) {
		code, calls, _ := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: filepath.Join(t.TempDir(), "none.sock")}, args...)
		if code != 0 || len(calls) != 1 || calls[0].path != admit {
			t.Fatalf("exit %d, exec %+v; want %s", code, calls, admit)
		}
	})

	// A server that was asked and gave no answer may have recorded or
	// rewritten something: the call is refused, not retried.
	for name, answer := range map[string][]byte{"no answer": nil, "garbage": []byte("{"), "empty": []byte("{}")} {
		t.Run("broken server, "+name+": refused", func(t *testing.T) {
			sock := fakeResident(t, t.TempDir(), func(*runcfront.ResidentRequest, []int) []byte { return answer })
			logPath := filepath.Join(t.TempDir(), "log.json")
			code, calls, stderr := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: sock}, append([]string{"--log", logPath, "--log-format", "json"}, args...)...)
			if code != runcfront.ExitDenied || len(calls) != 0 || !strings.Contains(stderr, "refusing runc create") || !strings.Contains(stderr, sock) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, exec %+v, stderr %q; want a one-line refusal naming the socket", code, calls, stderr)
			}
			if data, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(data), "refusing runc create") {
				t.Errorf("runc log: %v %s", err, data)
			}
		})
	}

	t.Run("commands that start nothing never ask", func(t *testing.T) {
		var asked atomic.Bool
		sock := fakeResident(t, t.TempDir(), func(*runcfront.ResidentRequest, []int) []byte {
			asked.Store(true)
			return []byte(`{"exit":126}`)
		})
		code, calls, _ := s.mainWithFile(t, map[string]string{runcfront.AdmitSocketEnv: sock}, "state", "abc")
		if code != 0 || len(calls) != 1 || calls[0].path != s.runc || asked.Load() {
			t.Fatalf("exit %d, exec %+v, asked %v", code, calls, asked.Load())
		}
	})
}

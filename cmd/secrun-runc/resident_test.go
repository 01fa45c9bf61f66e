package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/internal/testenv"
)

// deciders lists, per container id, the runtime.decider field of its
// policy.decision records ("" when secrun-runc-admit decided in the call's
// own process).
func deciders(t testing.TB, s *site) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range find(s.records(t), audit.KindPolicyDecision, "", "") {
		d, _ := r.Fields["runtime.decider"].(string)
		out[r.Container.ID] = append(out[r.Container.ID], d)
	}
	return out
}

// runToFile runs cmd with its output in a file, not a pipe (a created
// container's init inherits it and keeps it open), and returns the output.
func runToFile(t testing.TB, cmd *exec.Cmd) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	return string(out), err
}

// TestResidentAdmission: with `secrun-runc-admit serve` running, secrun-runc
// asks it instead of starting secrun-runc-admit. It decides what a fresh
// process would (an allowed container starts with the hardening applied, a
// denied one does not start and the engine sees the reason), follows an
// edited policy at once, and records the front's call as the actor. A front
// it cannot stand in for (another mount namespace) decides for itself.
func TestResidentAdmission(t *testing.T) {
	testenv.RequireRoot(t)
	front, _ := binaries(t)
	dir := shortTempDir(t, "srra-")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	var d *daemon
	s.socket, d = startResident(t, front, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := fmt.Sprintf("secrun-runc-admit serve (pid %d)", d.cmd.Process.Pid)

	b := bundle(t, dir, []string{"sleep", "300"}, nil)
	t.Cleanup(func() { wrapperCmd(context.Background(), s, "delete", "--force", "c1").Run() })
	// A relative --bundle: the server resolves it in the front's directory.
	cmd := wrapperCmd(ctx, s, "create", "--bundle", filepath.Base(b), "c1")
	cmd.Dir = filepath.Dir(b)
	if out, err := runToFile(t, cmd); err != nil {
		t.Fatalf("create through the resident server: %v\n%s", err, out)
	}
	out, err := wrapperCmd(ctx, s, "state", "c1").Output()
	var st struct{ Status, Bundle string }
	if err != nil || json.Unmarshal(out, &st) != nil || st.Status != "created" || st.Bundle != b {
		t.Fatalf("state: %v %s", err, out)
	}
	var spec specs.Spec
	if data, err := os.ReadFile(filepath.Join(b, "config.json")); err != nil || json.Unmarshal(data, &spec) != nil || spec.Linux.Seccomp == nil {
		t.Fatalf("config.json after create has no seccomp profile: %v", err)
	}
	if got := deciders(t, s)["c1"]; len(got) != 1 || got[0] != server {
		t.Fatalf("c1 decided by %q, want %q", got, server)
	}
	inv := find(s.records(t), audit.KindRuntimeInvoked, "", "")
	if len(inv) != 1 || !strings.Contains(inv[0].Actor.Command, "create --bundle bundle c1") || inv[0].Actor.PID == d.cmd.Process.Pid {
		t.Fatalf("runtime.invoked actor: %+v, want the secrun-runc call", inv)
	}

	// A denial: the reason on the front's stderr and in runc's log.
	denied := bundle(t, filepath.Join(dir, "denied"), []string{"true"}, func(sp *specs.Spec) {
		sp.Process.Capabilities.Bounding = append(sp.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	})
	logFile := filepath.Join(dir, "log.json")
	cmd = wrapperCmd(ctx, s, "--log", logFile, "--log-format", "json", "create", "--bundle", denied, "c2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd.Run()); code != 126 || !strings.Contains(stderr.String(), "secrun: denied by policy baseline") || !strings.Contains(stderr.String(), "CAP_SYS_ADMIN") {
		t.Fatalf("denied create: exit %d, stderr %q", code, stderr.String())
	}
	if data, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(data), "CAP_SYS_ADMIN") {
		t.Errorf("runc log %s: %v", data, err)
	}
	if out, err := wrapperCmd(ctx, s, "state", "c2").CombinedOutput(); err == nil {
		t.Fatalf("a denied container exists:\n%s", out)
	}

	// The config and policy are read per call: an edited policy decides
	// the next call, although the server has the old one compiled.
	pol := filepath.Join(dir, "deny-all.rego")
	if err := os.WriteFile(pol, []byte("package secrun\n\ndeny contains \"edited policy denies everything\" if true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.config, []byte(fmt.Sprintf("runtime: %s\nauditLog: %s\npolicy: %s\n", testenv.Runc(t), s.audit, pol)), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	cmd = wrapperCmd(ctx, s, "create", "--bundle", b, "c3")
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd.Run()); code != 126 || !strings.Contains(stderr.String(), "edited policy denies everything") {
		t.Fatalf("create after the policy was edited: exit %d, stderr %q", code, stderr.String())
	}
	if got := deciders(t, s)["c3"]; len(got) != 1 || got[0] != server {
		t.Fatalf("c3 decided by %q, want %q", got, server)
	}

	// Another mount namespace: the server declines, the front decides the
	// slow way, with the same result.
	stderr.Reset()
	cmd = wrapperCmd(ctx, s, "create", "--bundle", b, "c4")
	cmd.Args = append([]string{"unshare", "--mount", "--propagation", "unchanged", "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path, err = exec.LookPath("unshare")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &stderr
	if code := exitCode(t, cmd.Run()); code != 126 || !strings.Contains(stderr.String(), "edited policy denies everything") {
		t.Fatalf("create from another mount namespace: exit %d, stderr %q", code, stderr.String())
	}
	if got := deciders(t, s)["c4"]; len(got) != 1 || got[0] != "" {
		t.Fatalf("c4 decided by %q, want the call's own process", got)
	}
	if log, _ := os.ReadFile(d.log); !strings.Contains(string(log), "another mount namespace") {
		t.Errorf("the server did not say why it declined:\n%s", log)
	}
}

// TestResidentRestartsAfterReinstall: when secrun-runc-admit is replaced on
// disk, the running server no longer decides (its code is not what is
// installed): the call in flight is decided by the new secrun-runc-admit in
// process, and the server execs the new binary and answers the next call.
func TestResidentRestartsAfterReinstall(t *testing.T) {
	testenv.RequireRoot(t)
	binaries(t)
	dir := shortTempDir(t, "srri-")
	// A private install: front, policy half and runc, as make install lays
	// them out.
	inst := filepath.Join(dir, "bin")
	if err := os.Mkdir(inst, 0o755); err != nil {
		t.Fatal(err)
	}
	install := func(name string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(filepath.Dir(wrapperBin), name))
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(inst, "."+name+".new")
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(inst, name)); err != nil {
			t.Fatal(err)
		}
	}
	install("secrun-runc")
	install("secrun-runc-admit")
	front := filepath.Join(inst, "secrun-runc")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	var d *daemon
	s.socket, d = startResident(t, front, dir)
	server := fmt.Sprintf("secrun-runc-admit serve (pid %d)", d.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	create := func(id string) {
		t.Helper()
		b := bundle(t, filepath.Join(dir, id), []string{"true"}, nil)
		t.Cleanup(func() { wrapperCmd(context.Background(), s, "delete", "--force", id).Run() })
		cmd := wrapperCmd(ctx, s, "create", "--bundle", b, id)
		cmd.Path, cmd.Args[0] = front, front
		if out, err := runToFile(t, cmd); err != nil {
			t.Fatalf("create %s: %v\n%s", id, err, out)
		}
	}
	create("r1")
	install("secrun-runc-admit") // same code, a new file: a reinstall
	create("r2")
	// The server restarts itself (same pid, new code) and answers again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(d.log)
		if strings.Count(string(log), "deciding for secrun-runc on") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not restart:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	create("r3")
	got := deciders(t, s)
	if want := map[string]string{"r1": server, "r2": "", "r3": server}; len(got) != 3 || got["r1"][0] != want["r1"] || got["r2"][0] != want["r2"] || got["r3"][0] != want["r3"] {
		t.Fatalf("deciders %q, want %q", got, want)
	}
}

package audit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestUserPlaces(t *testing.T) {
	run := t.TempDir()
	for _, d := range []string{"1000", "1001", "0", "lost+found"} {
		if err := os.Mkdir(filepath.Join(run, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	homes := map[string]string{"1000": "/home/alice"}
	c := UserPlaces(run, func(uid string) (string, error) {
		if h, ok := homes[uid]; ok {
			return h, nil
		}
		return "", errors.New("unknown user")
	})
	for _, want := range []string{run + "/1000/runc", run + "/1000/secrun/runc", run + "/1001/runc", run + "/1001/secrun/runc"} {
		if !slices.Contains(c.RuncRoots, want) {
			t.Errorf("runc roots %q lack %s", c.RuncRoots, want)
		}
	}
	if len(c.RuncRoots) != 4 || len(c.CrunRoots) != 2 {
		t.Errorf("uid 0 and non-uid directories must be skipped: %+v", c)
	}
	if !slices.Equal(c.SecrunRoots, []string{"/home/alice/.local/share/secrun"}) ||
		!slices.Equal(c.Podman, []PodmanStorage{{Root: "/home/alice/.local/share/containers/storage", RunRoot: run + "/1000/containers"}}) {
		t.Errorf("home-based places: %+v", c)
	}
	if c := UserPlaces(filepath.Join(run, "missing"), HomeOf); len(c.RuncRoots) != 0 {
		t.Errorf("a missing /run/user gave places: %+v", c)
	}
}

// A state file an unprivileged user owns may only name that user's
// processes (its uid or a subordinate uid); root's state is trusted.
func TestUserStateClaims(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files and run processes as other uids")
	}
	const owner, sub = 54321, 300000
	dir := t.TempDir()
	subuid := filepath.Join(dir, "subuid")
	if err := os.WriteFile(subuid, []byte("# ranges\n54321:300000:65536\nother:100:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := subUIDFile
	subUIDFile = subuid
	t.Cleanup(func() { subUIDFile = old })

	state := func(uid int) string {
		p := filepath.Join(dir, "state-"+strconv.Itoa(uid))
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sleeper := func(uid uint32) int {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	self := os.Getpid()
	if err := userStateClaims(state(0), self); err != nil {
		t.Errorf("root's state: %v", err)
	}
	userState := state(owner)
	if err := userStateClaims(userState, self); err == nil || !strings.Contains(err.Error(), "runs as uid 0") {
		t.Errorf("a user's state naming a root process: %v", err)
	}
	if err := userStateClaims(userState, sleeper(owner)); err != nil {
		t.Errorf("a user's state naming its own process: %v", err)
	}
	if err := userStateClaims(userState, sleeper(sub+999)); err != nil {
		t.Errorf("a user's state naming a process in its subordinate range: %v", err)
	}
	if err := userStateClaims(userState, sleeper(sub+65536)); err == nil {
		t.Error("a user's state naming a process just past its subordinate range was accepted")
	}
	if err := userStateClaims(userState, sleeper(owner+1)); err == nil {
		t.Error("a user's state naming another user's process was accepted")
	}
	// A link the user planted is the user's, whatever it points at.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(state(0), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, owner, owner); err != nil {
		t.Fatal(err)
	}
	if err := userStateClaims(link, self); err == nil {
		t.Error("a user's symlink to root's state was trusted")
	}
}

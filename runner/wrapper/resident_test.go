package wrapper_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/runner/runcfront"
	"github.com/secrun/secrun/runner/wrapper"
)

func TestListenResident(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "admit.sock")
	ln, err := wrapper.ListenResident(sock)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, sock: os.ModeSocket | 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode()&(os.ModeType|os.ModePerm) != want {
			t.Errorf("%s: %v %v, want mode %v", path, fi.Mode(), err, want)
		}
	}
	// A live server is not replaced.
	if _, err := wrapper.ListenResident(sock); err == nil || !strings.Contains(err.Error(), "already answers") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	// A socket file nobody answers on (a server that was killed) is.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln, err = wrapper.ListenResident(sock)
	if err != nil {
		t.Fatalf("replacing a dead server's socket: %v", err)
	}
	ln.Close()
	// Not a socket: left alone.
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := wrapper.ListenResident(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("a regular file at the socket's path: %v", err)
	}
	// A directory others can write to would let them put their own socket
	// in the server's place.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := wrapper.ListenResident(filepath.Join(open, "admit.sock")); err == nil || !strings.Contains(err.Error(), "writable by it alone") {
		t.Fatalf("a world-writable socket directory: %v", err)
	}
}

// A server whose executable was replaced declines every call (the front
// then decides in process) and stops serving, so that its caller can exec
// the new binary.
func TestResidentStopsWhenReinstalled(t *testing.T) {
	dir := t.TempDir()
	// The server "was started from" exe, which now holds other code than
	// this process runs.
	exe := filepath.Join(dir, "secrun-runc-admit")
	if err := os.WriteFile(exe, []byte("new build"), 0o755); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	r, err := wrapper.NewResident(exe, &log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := wrapper.ListenResident(filepath.Join(dir, "run", "admit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(context.Background(), ln) }()

	// A front beside the new build: its secrun-runc-admit is exe.
	self := filepath.Join(dir, "secrun-runc")
	if err := os.WriteFile(self, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(dir, "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var execs []string
	code := runcfront.Main([]string{"create", "--bundle", dir, "c"}, runcfront.System{
		Getenv:  func(k string) string { return map[string]string{runcfront.AdmitSocketEnv: ln.Addr().String()}[k] },
		Environ: []string{},
		Stderr:  stderr,
		Self:    self,
		Exec:    func(path string, _, _ []string) error { execs = append(execs, path); return nil },
	})
	if code != 0 || len(execs) != 1 || execs[0] != exe {
		t.Fatalf("exit %d, execs %q: want the front to run %s itself", code, execs, exe)
	}
	select {
	case err := <-served:
		if !errors.Is(err, wrapper.ErrReinstalled) {
			t.Fatalf("Serve returned %v, want ErrReinstalled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept serving after a reinstall")
	}
	if !strings.Contains(log.String(), "another build") {
		t.Errorf("server log %q does not say why it declined", log.String())
	}
	if c, err := net.Dial("unix", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the socket still answers")
	}
}

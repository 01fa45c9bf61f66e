package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner/runcfront"
)

// Resident is the resident admission server, `secrun-runc-admit serve`:
// the same decision secrun-runc-admit makes for one call, made for every
// call by one long-lived process that keeps compiled policies in memory.
// Config, policy files, trust and bundle are still read on every call, so a
// change applies to the next container as it does without the server.
//
// A call is decided exactly as in a fresh secrun-runc-admit, with the
// front's command line, environment, working directory and stderr: the
// front passes the last two as file descriptors. Calls are decided one at a
// time, since each changes the server's working directory to the front's.
type Resident struct {
	// Exe is the path the server was started from; after a reinstall
	// replaces it, the server execs it again.
	Exe string
	// Log receives the server's own messages.
	Log io.Writer
	// Host reports the host facts for the policy input; nil is HostInfo.
	Host func() policy.HostInfo

	running runcfront.FileID // the code this process runs (/proc/self/exe)
	mnt     runcfront.FileID // this process's mount namespace and root
	root    runcfront.FileID
	memo    policy.Memo
	mu      sync.Mutex
	stale   chan struct{}
	once    sync.Once
}

// ErrReinstalled is what Serve returns when the server's executable has
// been replaced on disk: the caller execs the new one.
var ErrReinstalled = errors.New("secrun-runc-admit was reinstalled")

// NewResident prepares a server started from exe.
func NewResident(exe string, log io.Writer) (*Resident, error) {
	r := &Resident{Exe: exe, Log: log, stale: make(chan struct{})}
	var err error
	if r.running, err = runcfront.StatID("/proc/self/exe"); err != nil {
		return nil, err
	}
	if r.mnt, err = runcfront.StatID("/proc/self/ns/mnt"); err != nil {
		return nil, err
	}
	if r.root, err = runcfront.StatID("/proc/self/root"); err != nil {
		return nil, err
	}
	return r, nil
}

// ListenResident binds the server's socket at path, mode 0600 in a
// directory only this user can write (created 0700 when missing). A socket
// file no server answers on is replaced; a live server is an error.
func ListenResident(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("the socket's directory %s must belong to uid %d and be writable by it alone (it is uid %d, mode %#o)", dir, os.Geteuid(), st.Uid, st.Mode&0o7777)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("a server already answers on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers calls on ln until ctx is done (it returns nil) or the
// server's executable is replaced (ErrReinstalled). It closes ln and waits
// for the calls under way.
func (r *Resident) Serve(ctx context.Context, ln *net.UnixListener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		select {
		case <-ctx.Done():
		case <-r.stale:
		}
		ln.Close()
	}()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			select {
			case <-r.stale:
				return ErrReinstalled
			case <-ctx.Done():
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			r.handle(ctx, conn)
		}()
	}
}

// handle answers one call.
func (r *Resident) handle(ctx context.Context, conn *net.UnixConn) {
	cred, err := peerCred(conn)
	if err != nil || int(cred.Uid) != os.Geteuid() {
		return // the socket's mode already keeps others out
	}
	req, cwd, stderr, err := readRequest(conn)
	if err != nil {
		fmt.Fprintf(r.Log, "secrun-runc-admit: call from pid %d: %v\n", cred.Pid, err)
		return
	}
	defer cwd.Close()
	defer stderr.Close()
	rep := r.decide(ctx, cred, req, cwd, stderr)
	if rep.Fallback != "" {
		fmt.Fprintf(r.Log, "secrun-runc-admit: pid %d decides for itself: %s\n", cred.Pid, rep.Fallback)
	}
	b, err := json.Marshal(rep)
	if err == nil {
		_, err = conn.Write(b)
	}
	if err != nil {
		fmt.Fprintf(r.Log, "secrun-runc-admit: answering pid %d: %v\n", cred.Pid, err)
	}
}

// readRequest reads a call: the JSON request and, with its first bytes,
// the front's working directory and stderr.
func readRequest(conn *net.UnixConn) (*runcfront.ResidentRequest, *os.File, *os.File, error) {
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, nil, nil, err
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, nil, err
	}
	var fds []int
	if scms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, scm := range scms {
			if got, err := unix.ParseUnixRights(&scm); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if flags&unix.MSG_CTRUNC != 0 || len(fds) != 2 {
		closeAll()
		return nil, nil, nil, fmt.Errorf("expected 2 file descriptors with the request, got %d", len(fds))
	}
	cwd, stderr := os.NewFile(uintptr(fds[0]), "cwd"), os.NewFile(uintptr(fds[1]), "stderr")
	fail := func(err error) (*runcfront.ResidentRequest, *os.File, *os.File, error) {
		cwd.Close()
		stderr.Close()
		return nil, nil, nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(conn, 4<<20))
	if err != nil {
		return fail(err)
	}
	var req runcfront.ResidentRequest
	dec := json.NewDecoder(bytes.NewReader(append(buf[:n], rest...)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail(fmt.Errorf("malformed request: %w", err))
	}
	return &req, cwd, stderr, nil
}

// decide makes the decision secrun-runc-admit would make for req, or asks
// the front to fall back when this server cannot stand in for it.
func (r *Resident) decide(ctx context.Context, cred *unix.Ucred, req *runcfront.ResidentRequest, cwd, stderr *os.File) *runcfront.ResidentReply {
	if req.Version != runcfront.ResidentVersion {
		return &runcfront.ResidentReply{Fallback: fmt.Sprintf("request version %d, server version %d", req.Version, runcfront.ResidentVersion)}
	}
	if req.Admit != r.running {
		if r.reinstalled() {
			r.once.Do(func() { close(r.stale) })
		}
		return &runcfront.ResidentReply{Fallback: "the front's secrun-runc-admit is another build than this server's"}
	}
	if !filepath.IsAbs(req.Self) {
		return &runcfront.ResidentReply{Fallback: "the front's path is not absolute"}
	}
	// Paths on the command line and in the config mean what they mean to
	// the front: decide only for a front that sees the same files.
	pid := strconv.Itoa(int(cred.Pid))
	if id, err := runcfront.StatID("/proc/" + pid + "/ns/mnt"); err != nil || !sameInode(id, r.mnt) {
		return &runcfront.ResidentReply{Fallback: "the front is in another mount namespace"}
	}
	if id, err := runcfront.StatID("/proc/" + pid + "/root"); err != nil || !sameInode(id, r.root) {
		return &runcfront.ResidentReply{Fallback: "the front has another root directory"}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := unix.Fchdir(int(cwd.Fd())); err != nil {
		return &runcfront.ResidentReply{Fallback: "cannot enter the front's working directory: " + err.Error()}
	}
	var plan *runcfront.ExecPlan
	sys := System{
		Getenv:  envLookup(req.Env),
		Environ: req.Env,
		Stderr:  stderr,
		Self:    req.Self,
		Exec: func(path string, argv, env []string) error {
			plan = &runcfront.ExecPlan{Path: path, Argv: argv, Env: env}
			return nil
		},
		Host:    r.Host,
		Memo:    &r.memo,
		Actor:   &audit.Actor{UID: int(cred.Uid), PID: int(cred.Pid), Command: strings.Join(append([]string{req.Self}, req.Args...), " ")},
		Decider: fmt.Sprintf("secrun-runc-admit serve (pid %d)", os.Getpid()),
	}
	code := run(ctx, req.Args, sys, false)
	if code == 0 && plan != nil {
		return &runcfront.ResidentReply{Exec: plan}
	}
	if code == 0 {
		code = ExitError // Run returned without handing off: cannot happen
	}
	return &runcfront.ResidentReply{Exit: code}
}

// sameInode compares device and inode only: a namespace's nsfs inode has
// no stable times.
func sameInode(a, b runcfront.FileID) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// peerCred is the credentials (pid, uid, gid) of conn's peer at connect
// time.
func peerCred(conn *net.UnixConn) (*unix.Ucred, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, serr
}

// reinstalled reports whether the server's executable path now holds
// other code than the process runs.
func (r *Resident) reinstalled() bool {
	id, err := runcfront.StatID(r.Exe)
	return err == nil && id != r.running
}

// envLookup is os.Getenv over env: the first NAME= wins, as in Go's
// process environment.
func envLookup(env []string) func(string) string {
	return func(key string) string {
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
		return ""
	}
}

// ServeMain is `secrun-runc-admit serve [--socket PATH]`: it serves until
// SIGTERM or SIGINT, and execs itself again when reinstalled.
func ServeMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("secrun-runc-admit serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", runcfront.AdmitSocket(os.Getenv), "the socket secrun-runc asks ($"+runcfront.AdmitSocketEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "secrun-runc-admit serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "secrun-runc-admit serve: %v\n", err)
		return ExitError
	}
	r, err := NewResident(exe, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "secrun-runc-admit serve: %v\n", err)
		return ExitError
	}
	ln, err := ListenResident(*sock)
	if err != nil {
		fmt.Fprintf(stderr, "secrun-runc-admit serve: cannot listen on %s: %v\n", *sock, err)
		return ExitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(stderr, "secrun-runc-admit: deciding for secrun-runc on %s (pid %d)\n", *sock, os.Getpid())
	err = r.Serve(ctx, ln)
	if errors.Is(err, ErrReinstalled) {
		fmt.Fprintf(stderr, "secrun-runc-admit: %s was reinstalled: restarting it\n", exe)
		stop()
		err = syscall.Exec(exe, os.Args, os.Environ())
		fmt.Fprintf(stderr, "secrun-runc-admit serve: restarting %s: %v\n", exe, err)
		return ExitError
	}
	if err != nil {
		fmt.Fprintf(stderr, "secrun-runc-admit serve: %v\n", err)
		return ExitError
	}
	return 0
}

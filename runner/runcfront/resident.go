package runcfront

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The resident admission server (`secrun-runc-admit serve`) decides for the
// front without a process start or a policy compilation per call: it keeps
// compiled policies in memory and answers on a unix socket that only root
// can reach. The front asks it first; when no server listens, the front
// execs secrun-runc-admit as before, which decides the same way in a fresh
// process. Either way nothing starts without a recorded decision.
const (
	DefaultAdmitSocket = "/run/secrun/admit.sock"
	AdmitSocketEnv     = "SECRUN_ADMIT_SOCKET"
)

// AdmitSocket is $SECRUN_ADMIT_SOCKET, else DefaultAdmitSocket.
func AdmitSocket(getenv func(string) string) string {
	if p := getenv(AdmitSocketEnv); p != "" {
		return p
	}
	return DefaultAdmitSocket
}

// ResidentVersion is the request format's version; a server answers only
// requests of its own version (and asks the front to fall back otherwise).
const ResidentVersion = 1

// ResidentRequest is one front call, sent with two file descriptors
// (SCM_RIGHTS): the front's working directory (O_PATH), against which the
// server resolves relative paths on the command line, and its stderr, where
// the server writes what the front would have.
type ResidentRequest struct {
	Version int      `json:"v"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	// Self is the front's executable.
	Self string `json:"self"`
	// Admit identifies the secrun-runc-admit beside Self: a server running
	// another build falls back rather than decide with other code.
	Admit FileID `json:"admit"`
}

// FileID identifies a file's content cheaply: a reinstall changes it.
type FileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
}

// StatID is path's FileID.
func StatID(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return FileID{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano()}, nil
}

// ResidentReply is the server's answer: exactly one of Fallback (the
// server cannot decide this call: the front runs secrun-runc-admit), Exec
// (allowed: the front replaces itself with it) or neither (refused or
// failed: the front exits with Exit; the reason is on its stderr already).
type ResidentReply struct {
	Fallback string    `json:"fallback,omitempty"`
	Exit     int       `json:"exit,omitempty"`
	Exec     *ExecPlan `json:"exec,omitempty"`
}

// ExecPlan is the execve the front makes.
type ExecPlan struct {
	Path string   `json:"path"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

// errNoResident means no server listens: the front decides the slow way.
var errNoResident = errors.New("no resident admission server")

// maxResidentMessage bounds a request or a reply.
const maxResidentMessage = 4 << 20

// askResident sends one call to the server at sock and returns its reply,
// errNoResident when there is no server to ask, or another error when one
// was asked and failed: that call is refused, since the server may have
// recorded or rewritten something already. It uses the socket system calls
// directly: the net package would make the front pay for its poller and
// resolver at every start, also for calls that never ask.
func askResident(sock string, req *ResidentRequest, stderr *os.File) (*ResidentReply, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating a socket to ask the resident admission server: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		return nil, errNoResident
	}
	// Only a server running as this user (root) may decide: a socket
	// someone else could bind would otherwise be a way to forge decisions.
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("the resident admission socket %s: reading its server's credentials: %w", sock, err)
	}
	if int(cred.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("the resident admission socket %s is served by uid %d, not %d", sock, cred.Uid, os.Geteuid())
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cwd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the working directory: %w", err)
	}
	defer unix.Close(cwd)
	// The descriptors travel with the first bytes.
	n, err := unix.SendmsgN(fd, payload, unix.UnixRights(cwd, int(stderr.Fd())), nil, unix.MSG_NOSIGNAL)
	for err == nil && n < len(payload) {
		var m int
		m, err = unix.SendmsgN(fd, payload[n:], nil, nil, unix.MSG_NOSIGNAL)
		n += m
	}
	if err == nil {
		err = unix.Shutdown(fd, unix.SHUT_WR)
	}
	if err != nil {
		return nil, fmt.Errorf("asking the resident admission server at %s: %w", sock, err)
	}
	var b []byte
	buf := make([]byte, 16<<10)
	for {
		m, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the resident admission server at %s: %w", sock, err)
		}
		if m == 0 {
			break
		}
		if b = append(b, buf[:m]...); len(b) > maxResidentMessage {
			return nil, fmt.Errorf("the resident admission server at %s answered more than %d bytes", sock, maxResidentMessage)
		}
	}
	var rep ResidentReply
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("the resident admission server at %s gave no answer (%d bytes): %w", sock, len(b), err)
	}
	if rep.Fallback == "" && rep.Exec == nil && rep.Exit == 0 {
		return nil, fmt.Errorf("the resident admission server at %s gave an empty answer", sock)
	}
	return &rep, nil
}

// admitResident asks the resident server to decide args. handled is false
// when there is no server or it asks the front to fall back; otherwise the
// call has been decided and code is the front's exit status (the exec, on
// success, does not return).
func admitResident(args []string, sys System) (code int, handled bool) {
	stderr, ok := sys.Stderr.(*os.File)
	if !ok {
		return 0, false
	}
	sock := AdmitSocket(sys.Getenv)
	admit := filepath.Join(filepath.Dir(sys.Self), AdmitName)
	id, err := StatID(admit)
	if err != nil {
		// No policy half beside us: the exec below reports it.
		return 0, false
	}
	rep, err := askResident(sock, &ResidentRequest{Version: ResidentVersion, Args: args, Env: sys.Environ, Self: sys.Self, Admit: id}, stderr)
	if errors.Is(err, errNoResident) {
		return 0, false
	}
	if err != nil {
		inv, _ := ParseArgs(args)
		report(sys, inv, fmt.Errorf("refusing %s: %w; restart secrun-runc-admit serve, or stop it and remove %s to decide without it", describeArgs(inv), err, sock))
		return ExitDenied, true
	}
	switch {
	case rep.Fallback != "":
		return 0, false
	case rep.Exec != nil:
		if err := sys.Exec(rep.Exec.Path, rep.Exec.Argv, rep.Exec.Env); err != nil {
			inv, _ := ParseArgs(args)
			report(sys, inv, fmt.Errorf("executing the real runtime %s: %w", rep.Exec.Path, err))
			return ExitError, true
		}
		return 0, true
	}
	return rep.Exit, true
}

// ExitDenied is secrun-runc's status for a refused start.
const ExitDenied = 126

func describeArgs(inv *Invocation) string {
	if inv != nil && inv.Command != "" {
		return "runc " + inv.Command
	}
	return "this command"
}

package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Runtime drives an OCI runtime binary that speaks runc's command line.
type Runtime struct {
	// Path is the runtime binary.
	Path string
	// Root is the runtime's state directory (runc --root).
	Root string
}

// FindRuntime returns the runtime to use: explicit, else the runc that
// `make deps` installs beside the secrun binary (bin/runc), else runc on PATH.
func FindRuntime(explicit string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", &Error{Code: ExitSecrun, Err: fmt.Errorf("OCI runtime %q not found: install runc with 'make deps' or pass --runtime PATH", explicit)}
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "runc")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		return "", &Error{Code: ExitSecrun, Err: errors.New("OCI runtime runc not found: run 'make deps' or pass --runtime PATH")}
	}
	return p, nil
}

func (r *Runtime) command(ctx context.Context, logFile string, args ...string) *exec.Cmd {
	full := []string{"--root", r.Root}
	if logFile != "" {
		full = append(full, "--log", logFile, "--log-format", "json")
	}
	full = append(full, args...)
	return exec.CommandContext(ctx, r.Path, full...)
}

// RunIO is the stdio handed to a container process.
type RunIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Create creates a container from a bundle without starting its process.
func (r *Runtime) Create(ctx context.Context, id, bundle, pidFile, logFile string, stdio RunIO) error {
	cmd := r.command(ctx, logFile, "create", "--bundle", bundle, "--pid-file", pidFile, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	return runtimeError("create", cmd.Run(), logFile)
}

// Start starts a created container's process.
func (r *Runtime) Start(ctx context.Context, id, logFile string) error {
	return r.simple(ctx, logFile, "start", id)
}

// Kill sends sig (a name such as "TERM" or a number) to the container's init.
func (r *Runtime) Kill(ctx context.Context, id, sig string) error {
	return r.simple(ctx, "", "kill", id, sig)
}

// Delete removes the runtime's record of a container; force kills it first.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	return r.simple(ctx, "", append(args, id)...)
}

func (r *Runtime) simple(ctx context.Context, logFile string, args ...string) error {
	var stderr bytes.Buffer
	cmd := r.command(ctx, logFile, args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil && logFile == "" {
		return fmt.Errorf("runc %s: %s: %w", args[0], lastLine(stderr.String()), err)
	}
	return runtimeError(args[0], err, logFile)
}

// State is the part of the runtime's state output secrun uses.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// State asks the runtime for a container's state. A container the runtime
// does not know returns an error wrapping os.ErrNotExist.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	var stdout, stderr bytes.Buffer
	cmd := r.command(ctx, "", "state", id)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "does not exist") {
			return nil, fmt.Errorf("container %s: %w", id, os.ErrNotExist)
		}
		return nil, fmt.Errorf("runc state %s: %s: %w", id, lastLine(stderr.String()), err)
	}
	var s State
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return nil, fmt.Errorf("runc state %s: %w", id, err)
	}
	return &s, nil
}

// runtimeError turns a failed runtime invocation into one line: the last
// error runc logged, not its exit status.
func runtimeError(op string, err error, logFile string) error {
	if err == nil {
		return nil
	}
	if msg := runcLogError(logFile); msg != "" {
		return &RuntimeError{Op: op, Msg: msg, Err: err}
	}
	return &RuntimeError{Op: op, Msg: err.Error(), Err: err}
}

// runcLogError returns the message of the last error-level entry in a
// runc JSON log, or "".
func runcLogError(logFile string) string {
	if logFile == "" {
		return ""
	}
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msg string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msg = e.Msg
		}
	}
	return msg
}

// RuntimeError is a failure reported by the OCI runtime.
type RuntimeError struct {
	Op, Msg string
	Err     error
}

func (e *RuntimeError) Error() string { return "runc " + e.Op + ": " + e.Msg }
func (e *RuntimeError) Unwrap() error { return e.Err }

// NotFound reports whether runc failed because the command does not exist
// in the image.
func (e *RuntimeError) NotFound() bool {
	return strings.Contains(e.Msg, "executable file not found") || strings.Contains(e.Msg, "no such file or directory")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

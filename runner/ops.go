package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
)

// Listed is a container with its live status.
type Listed struct {
	*Container
	// Live is the runtime's status now: running, created, paused or stopped.
	Live string
}

// List returns every container secrun knows, newest first, with the
// runtime's live status.
func (r *Runner) List(ctx context.Context) ([]Listed, error) {
	cs, unrecorded, err := r.layout().list()
	if err != nil {
		return nil, err
	}
	if err := r.reclaimStale(ctx, unrecorded); err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(cs))
	for _, c := range cs {
		live := c.Status
		if c.Status != "exited" {
			if st, err := r.Runtime.State(ctx, c.ID); err == nil {
				live = st.Status
			} else {
				live = "stopped"
			}
		}
		out = append(out, Listed{Container: c, Live: live})
	}
	return out, nil
}

// waitExit waits until pid has exited or the timeout passes, without
// polling: a pidfd becomes readable when its process exits.
func waitExit(pid int, timeout time.Duration) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll(fds, int(left.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		return n > 0, nil
	}
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILL, as `docker stop`.
func (r *Runner) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	l := r.layout()
	c, err := l.find(ref)
	if err != nil {
		return err
	}
	ctr, imgRef := r.auditContainer(c)
	st, err := r.Runtime.State(ctx, c.ID)
	if err == nil && (st.Status == "running" || st.Status == "created" || st.Status == "paused") {
		pid := st.Pid
		if err := r.Runtime.Kill(ctx, c.ID, "TERM"); err != nil && !strings.Contains(err.Error(), "not running") {
			return err
		}
		if err := r.record(ctx, audit.Event{Kind: "container.signal", Outcome: "success", Container: ctr, Image: imgRef, Fields: map[string]any{"signal": "SIGTERM"}}); err != nil {
			return err
		}
		exited, err := waitExit(pid, timeout)
		if err != nil {
			return err
		}
		if !exited {
			if err := r.Runtime.Kill(ctx, c.ID, "KILL"); err != nil && !strings.Contains(err.Error(), "not running") {
				return err
			}
			if err := r.record(ctx, audit.Event{Kind: "container.signal", Outcome: "success", Container: ctr, Image: imgRef, Fields: map[string]any{"signal": "SIGKILL"}}); err != nil {
				return err
			}
			if _, err := waitExit(pid, 10*time.Second); err != nil {
				return err
			}
		}
	}
	// A foreground secrun cleans up its own container when it exits.
	if !c.Detached {
		return nil
	}
	return r.reapDetached(ctx, c)
}

// reapDetached releases the runtime state and mounts of an exited detached
// container and records its exit.
func (r *Runner) reapDetached(ctx context.Context, c *Container) error {
	if c.Status == "exited" {
		return nil
	}
	l := r.layout()
	ctr, imgRef := r.auditContainer(c)
	fields := map[string]any{}
	if oomKilled(c.Cgroups) {
		fields["oom_killed"] = true
	}
	if err := r.Runtime.Delete(ctx, c.ID, true); err != nil && !strings.Contains(err.Error(), "does not exist") {
		return err
	}
	if err := l.unmount(c.ID); err != nil {
		return err
	}
	c.Status, c.Pid = "exited", 0
	if err := l.save(c); err != nil {
		return err
	}
	return r.record(ctx, audit.Event{Kind: "container.exited", Outcome: "success", Container: ctr, Image: imgRef, Fields: fields})
}

// Remove deletes a container and everything secrun made for it. A running
// container is refused unless force, which kills it first.
func (r *Runner) Remove(ctx context.Context, ref string, force bool) error {
	l := r.layout()
	c, err := l.find(ref)
	if err != nil {
		return err
	}
	if st, err := r.Runtime.State(ctx, c.ID); err == nil && st.Status != "stopped" {
		if !force {
			return fmt.Errorf("container %s is %s: stop it first or use 'secrun rm -f'", short(c.ID), st.Status)
		}
		if err := r.Runtime.Kill(ctx, c.ID, "KILL"); err != nil && !strings.Contains(err.Error(), "not running") {
			return err
		}
		if _, err := waitExit(st.Pid, 10*time.Second); err != nil {
			return err
		}
	}
	ctr, imgRef := r.auditContainer(c)
	var errs []error
	if err := r.Runtime.Delete(ctx, c.ID, true); err != nil && !strings.Contains(err.Error(), "does not exist") {
		errs = append(errs, err)
	}
	errs = append(errs, l.unmount(c.ID))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing %s: %w", short(c.ID), err)
	}
	if err := os.RemoveAll(l.dir(c.ID)); err != nil {
		return fmt.Errorf("removing %s: %w", short(c.ID), err)
	}
	errs = append(errs, l.userns().release(c.IDs), l.releaseName(c.Name))
	errs = append(errs, r.record(ctx, audit.Event{Kind: "container.removed", Outcome: "success", Container: ctr, Image: imgRef}))
	return errors.Join(errs...)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ExecOptions is a `secrun exec` request.
type ExecOptions struct {
	Container   string
	Args        []string
	Env         []string
	User        string
	Workdir     string
	Interactive bool
	TTY         bool
}

// Exec runs a process in a running container. The process is admitted by the
// same policy as the container, seen as the container's spec with this
// process in place of the original.
func (r *Runner) Exec(ctx context.Context, o ExecOptions, stdio RunIO) (int, error) {
	l := r.layout()
	c, err := l.find(o.Container)
	if err != nil {
		return ExitSecrun, err
	}
	if len(o.Args) == 0 {
		return ExitSecrun, errors.New("exec: no command given")
	}
	st, err := r.Runtime.State(ctx, c.ID)
	if err != nil || st.Status != "running" {
		return ExitSecrun, fmt.Errorf("container %s is not running", short(c.ID))
	}
	spec, err := r.specOf(c.ID)
	if err != nil {
		return ExitSecrun, err
	}
	proc := *spec.Process
	// An exec'd process gets the same secrun-init wrapper as the
	// container's: its Landlock rules and its seccomp filter.
	proc.Args = append(initPrefix(spec.Process.Args), o.Args...)
	proc.Terminal = o.TTY
	proc.Env = mergeEnv(spec.Process.Env, o.Env, o.TTY)
	if o.Workdir != "" {
		proc.Cwd = o.Workdir
	}
	// A rootless container's rootfs is the image itself (spec root.path).
	rootfs := l.rootfs(c.ID)
	if filepath.IsAbs(spec.Root.Path) {
		rootfs = spec.Root.Path
	}
	if o.User != "" {
		uid, gid, extra, err := resolveUser(rootfs, o.User)
		if err != nil {
			return ExitSecrun, err
		}
		if runningRootless() {
			if uid, gid, extra, err = rootlessExecUser(spec, o.User, uid, gid); err != nil {
				return ExitSecrun, err
			}
		}
		proc.User = specs.User{UID: uid, GID: gid, AdditionalGids: extra}
	}
	if err := findCommand(rootfs, o.Args[0], proc.Env); err != nil {
		return ExitCode(err), err
	}
	execSpec := *spec
	execSpec.Process = &proc
	req := c.Request
	req.Source, req.Args, req.User = "exec", proc.Args, o.User
	ctr, imgRef := r.auditContainer(c)
	ctr.PID = st.Pid
	sig := policy.SignatureInfo{Signers: []string{}, Digest: c.ImageDigest, Error: "exec: the image was verified when the container started"}
	in := &policy.Input{Request: req, Spec: &execSpec, Image: policy.ImageInfo{Ref: c.Image, Digest: c.ImageDigest, Identity: true}, Signature: sig, Host: hostInfo(r.host())}
	if img, err := r.Store.Get(c.ImageDigest); err == nil {
		if in.Signature, err = r.verify(ctx, img); err != nil {
			return ExitCode(err), err
		}
	}
	if err := r.admit(ctx, in, ctr, imgRef); err != nil {
		return ExitCode(err), err
	}
	procJSON, err := json.Marshal(&proc)
	if err != nil {
		return ExitSecrun, err
	}
	f, err := os.CreateTemp(l.dir(c.ID), "exec-*.json")
	if err != nil {
		return ExitSecrun, err
	}
	procFile := f.Name()
	defer os.Remove(procFile)
	_, werr := f.Write(procJSON)
	if err := errors.Join(werr, f.Close()); err != nil {
		return ExitSecrun, err
	}
	if err := r.record(ctx, audit.Event{Kind: "container.exec", Outcome: "success", Container: ctr, Image: imgRef, Fields: map[string]any{"process.args": proc.Args}}); err != nil {
		return ExitSecrun, err
	}
	logFile := filepath.Join(l.dir(c.ID), "exec-runc.log")
	defer os.Remove(logFile)
	cmd := r.Runtime.command(ctx, logFile, "exec", "--process", procFile, c.ID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if !o.TTY {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return ExitSecrun, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				if err := cmd.Process.Signal(s); err != nil && !errors.Is(err, os.ErrProcessDone) {
					r.warnf("forwarding %v: %v", s, err)
				}
			case <-done:
				return
			}
		}
	}()
	waitErr := cmd.Wait()
	if msg := runcLogError(logFile); msg != "" {
		rerr := &RuntimeError{Op: "exec", Msg: msg, Err: waitErr}
		if rerr.NotFound() {
			return ExitNotFound, &Error{Code: ExitNotFound, Err: rerr}
		}
		return ExitSecrun, rerr
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return ExitSecrun, waitErr
	}
	code := cmd.ProcessState.ExitCode()
	if err := r.record(ctx, audit.Event{Kind: "container.exec.exited", Outcome: "success", Container: ctr, Image: imgRef, Fields: map[string]any{"exit.code": code}}); err != nil {
		return ExitSecrun, err
	}
	return code, nil
}

// initPrefix returns the secrun-init arguments (up to and including "--")
// that args starts with, or nil.
func initPrefix(args []string) []string {
	if len(args) == 0 || args[0] != profiles.LandlockInitPath {
		return nil
	}
	if i := slices.Index(args, "--"); i >= 0 {
		return slices.Clone(args[:i+1])
	}
	return nil
}

// RemoveImage removes an image from the store unless a container (running
// or exited, until `secrun rm`) still uses it: its rootfs is the lower layer
// of the container's root filesystem.
func (r *Runner) RemoveImage(ref string) error {
	img, err := r.Store.Get(ref)
	if err != nil {
		return err
	}
	cs, _, err := r.layout().list()
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.ImageDigest == img.Digest.String() {
			return fmt.Errorf("image %s is used by container %s: remove the container first ('secrun rm %s')", ref, short(c.ID), short(c.ID))
		}
	}
	return r.Store.Remove(ref)
}

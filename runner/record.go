package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/seccomp"
)

// RecordTimeout bounds how long `runc init` may take to hand the notify fd to
// the recorder. A runc init whose listener is gone hangs until SIGKILL; the
// watchdog sends it.
const RecordTimeout = 30 * time.Second

// Record runs the workload of o under a seccomp user-notification filter,
// with secrun's agent answering every syscall with CONTINUE, and returns the
// minimal default-deny profile for what the workload used. The agent is up
// and answering before runc starts.
func (r *Runner) Record(ctx context.Context, o RunOptions, stdio RunIO) (*seccomp.Profile, int, error) {
	for _, so := range o.SecurityOpt {
		if k, _, _ := cutOpt(so); k == "seccomp" {
			return nil, ExitSecrun, errors.New("profile record runs the workload under its own recording filter: drop --security-opt seccomp=")
		}
	}
	if o.Privileged {
		return nil, ExitSecrun, errors.New("profile record cannot record a --privileged container: it has no seccomp filter")
	}
	o.Detach = false
	dir, err := os.MkdirTemp(r.Root, "record-")
	if err != nil {
		return nil, ExitSecrun, err
	}
	defer os.RemoveAll(dir)
	rec, err := seccomp.NewRecorder(filepath.Join(dir, "agent.sock"))
	if err != nil {
		return nil, ExitSecrun, err
	}
	defer rec.Stop()
	if err := seccomp.HealthCheck(rec.Path()); err != nil {
		return nil, ExitSecrun, err
	}
	rr := *r
	rr.Seccomp = func(string, []string, bool) (*specs.LinuxSeccomp, []string, error) {
		return seccomp.NotifyProfile(rec.Path()), nil, nil
	}
	p, err := rr.prepare(ctx, o)
	if err != nil {
		return nil, ExitCode(err), err
	}
	p.watchdog = func(runc *os.Process, c *Container) func() {
		// runc init blocks until the agent holds the notify fd; one that
		// never gets there is killed, with everything in its cgroup.
		attachCtx, cancel := context.WithTimeout(ctx, RecordTimeout)
		go func() {
			defer cancel()
			err := rec.WaitAttached(attachCtx)
			if err == nil || errors.Is(attachCtx.Err(), context.Canceled) {
				return
			}
			r.warnf("runc init did not reach the seccomp recorder within %s: killing it", RecordTimeout)
			for _, pid := range cgroupPids(c.Cgroups) {
				if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
					r.warnf("killing %d: %v", pid, err)
				}
			}
			if err := runc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				r.warnf("killing runc: %v", err)
			}
		}()
		return cancel
	}
	code, runErr := rr.runForeground(ctx, p, stdio)
	if runErr != nil {
		return nil, code, runErr
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rec.Wait(waitCtx); err != nil {
		return nil, ExitSecrun, err
	}
	if err := rec.Stop(); err != nil {
		return nil, ExitSecrun, fmt.Errorf("seccomp recorder: %w", err)
	}
	return rec.Profile(), code, nil
}

func cutOpt(o string) (string, string, bool) {
	for i := 0; i < len(o); i++ {
		if o[i] == '=' || o[i] == ':' {
			return o[:i], o[i+1:], true
		}
	}
	return o, "", false
}

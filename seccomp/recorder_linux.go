//go:build linux && cgo

package seccomp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Recorder is a seccomp agent that records a container's syscalls. runc,
// given NotifyProfile(path) as the container's seccomp section, connects to
// the recorder's unix socket after loading the filter and sends the
// container state with the notify fd (SCM_RIGHTS). The recorder answers
// every notification with SECCOMP_USER_NOTIF_FLAG_CONTINUE, so the workload
// runs as if unfiltered, and records the syscall with its architecture.
//
// CONTINUE lets the kernel run the syscall after the recorder has looked at
// it; that is fine for recording and would be a TOCTOU hole for enforcing,
// which is why the recorder never denies anything.
//
// Processes forked in the container inherit the filter, so their syscalls
// arrive on the same fd; every `runc exec` sends a fd of its own. The
// recorder keeps answering a fd until every process using it has exited.
type Recorder struct {
	path string
	ln   *net.UnixListener

	mu         sync.Mutex
	calls      map[callKey]*RecordedSyscall
	containers []specs.ContainerProcessState
	errs       []error
	active     int
	received   int
	changed    chan struct{} // closed and replaced on every change of active/received

	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

type callKey struct {
	name string
	arch specs.Arch
}

// NewRecorder listens on socketPath (mode 0600) and returns once the socket
// accepts connections, so runc can be started right after it. A stale
// socket at the path is replaced; any other file there is an error.
func NewRecorder(socketPath string) (*Recorder, error) {
	if !filepath.IsAbs(socketPath) {
		return nil, fmt.Errorf("seccomp recorder socket %q: not an absolute path", socketPath)
	}
	if fi, err := os.Lstat(socketPath); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("seccomp recorder socket %s: a file that is not a socket is in the way; remove it", socketPath)
		}
		if err := os.Remove(socketPath); err != nil {
			return nil, fmt.Errorf("seccomp recorder socket %s: removing stale socket: %w", socketPath, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socketPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("seccomp recorder: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(socketPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("seccomp recorder socket %s: %w", socketPath, err)
	}
	r := &Recorder{
		path:    socketPath,
		ln:      ln,
		calls:   map[callKey]*RecordedSyscall{},
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Path is the socket to put in the seccomp section's listenerPath.
func (r *Recorder) Path() string { return r.path }

// HealthCheck connects to a recorder's socket and hangs up; the recorder
// ignores such connections. Use it before starting runc: runc with a
// listenerPath nobody answers hangs in `runc init`.
func HealthCheck(socketPath string) error {
	c, err := net.DialTimeout("unix", socketPath, 2*time.Second)
	if err != nil {
		return fmt.Errorf("seccomp recorder at %s is not answering: %w", socketPath, err)
	}
	return c.Close()
}

func (r *Recorder) notify(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *Recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.AcceptUnix()
		if err != nil {
			select {
			case <-r.stop:
			default:
				r.fail(fmt.Errorf("seccomp recorder: accept: %w", err))
			}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.receive(c)
		}()
	}
}

// receive reads runc's message: the JSON container process state with the
// notify fd attached.
func (r *Recorder) receive(c *net.UnixConn) {
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		r.fail(fmt.Errorf("seccomp recorder: %w", err))
		return
	}
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil && !errors.Is(err, io.EOF) {
		r.fail(fmt.Errorf("seccomp recorder: reading from runc: %w", err))
		return
	}
	fds, ferr := parseRights(oob[:oobn])
	if n == 0 && len(fds) == 0 {
		// A health check.
		return
	}
	// The state can be longer than one read.
	rest, rerr := io.ReadAll(io.LimitReader(c, 1<<20))
	msg := append(buf[:n], rest...)
	closeAll := func(fds []int) {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	switch {
	case ferr != nil:
		closeAll(fds)
		r.fail(fmt.Errorf("seccomp recorder: %w", ferr))
		return
	case rerr != nil:
		closeAll(fds)
		r.fail(fmt.Errorf("seccomp recorder: reading container state: %w", rerr))
		return
	case len(fds) != 1:
		closeAll(fds)
		r.fail(fmt.Errorf("seccomp recorder: runc sent %d file descriptors, want the notify fd alone", len(fds)))
		return
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(msg, &st); err != nil {
		unix.Close(fds[0])
		r.fail(fmt.Errorf("seccomp recorder: container state from runc: %w", err))
		return
	}
	if len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName {
		unix.Close(fds[0])
		r.fail(fmt.Errorf("seccomp recorder: container state names fds %v, want [%s]", st.Fds, specs.SeccompFdName))
		return
	}
	r.notify(func() {
		r.containers = append(r.containers, st)
		r.active++
		r.received++
	})
	defer r.notify(func() { r.active-- })
	defer unix.Close(fds[0])
	r.serve(fds[0])
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message from runc: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, fmt.Errorf("control message from runc: %w", err)
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

// serve answers notifications on fd until every process using the filter
// has exited (the fd then polls POLLHUP) or the recorder stops.
func (r *Recorder) serve(fd int) {
	execSeen := false
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		n, err := unix.Poll(pfd, 100)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			r.fail(fmt.Errorf("seccomp recorder: poll: %w", err))
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			// POLLHUP: no process uses the filter any more.
			return
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				// The caller died before we read the notification.
				continue
			}
			r.fail(fmt.Errorf("seccomp recorder: receiving notification: %w", err))
			return
		}
		name, nerr := req.Data.Syscall.GetNameByArch(req.Data.Arch)
		if nerr != nil {
			name = fmt.Sprintf("syscall-%d", int32(req.Data.Syscall))
		}
		r.record(name, specArchOf(req.Data.Arch), req.Data.Args, !execSeen)
		if name == "execve" || name == "execveat" {
			execSeen = true
		}
		resp := &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue}
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), resp); err != nil && !errors.Is(err, unix.ENOENT) {
			r.fail(fmt.Errorf("seccomp recorder: answering %s: %w", name, err))
			return
		}
	}
}

func (r *Recorder) record(name string, arch specs.Arch, args []uint64, beforeExec bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := callKey{name, arch}
	c := r.calls[k]
	if c == nil {
		c = &RecordedSyscall{Name: name, Arch: arch, Runtime: true}
		r.calls[k] = c
	}
	c.Count++
	if beforeExec {
		c.BeforeExec++
	} else {
		c.Runtime = false
	}
	var a0 uint64
	if len(args) > 0 {
		a0 = args[0]
	}
	switch name {
	case "personality":
		if !slices.Contains(c.Personas, a0) && len(c.Personas) <= maxPersonas {
			c.Personas = append(c.Personas, a0)
		}
	case "clone":
		flags := a0
		if cloneFlagsArg() == 1 && len(args) > 1 {
			flags = args[1]
		}
		if flags&namespaceCloneFlags != 0 {
			c.Namespaces = true
		}
	}
}

// WaitAttached blocks until runc has handed the recorder a notify fd, or
// ctx is done. A runner uses it as the watchdog for `runc init`: if runc
// has not attached within a few seconds, something else holds the socket
// or runc is stuck, and the runner must SIGKILL runc's process group (runc
// init waits for its notify fd to be answered and never gives up).
func (r *Recorder) WaitAttached(ctx context.Context) error {
	for {
		r.mu.Lock()
		done := r.received > 0
		ch := r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("seccomp recorder: runc did not attach: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Wait blocks until the recorder has received at least one notify fd and
// every process using any received fd has exited, or ctx is done.
func (r *Recorder) Wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		done := r.received > 0 && r.active == 0
		ch := r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("seccomp recorder: waiting for the container: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Stop closes the socket and stops answering. A process still running in
// the recorded container then gets ENOSYS for every syscall the recording
// filter notifies, so stop only after the container has exited. Stop
// returns the first error the recorder met, if any.
func (r *Recorder) Stop() error {
	r.stopped.Do(func() {
		close(r.stop)
		r.ln.Close()
	})
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// Containers returns the container states runc sent, one per notify fd.
func (r *Recorder) Containers() []specs.ContainerProcessState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.containers)
}

// Syscalls returns what was recorded, sorted by name and architecture.
func (r *Recorder) Syscalls() []RecordedSyscall {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecordedSyscall, 0, len(r.calls))
	for _, c := range r.calls {
		cp := *c
		cp.Personas = slices.Clone(c.Personas)
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Arch < out[j].Arch
	})
	return out
}

// Profile returns the minimal default-deny profile for what was recorded,
// in Docker's format (see RecordedProfile).
func (r *Recorder) Profile() *Profile {
	return RecordedProfile(r.Syscalls())
}

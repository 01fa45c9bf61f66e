package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// kmsgPoll is how often the container's PID set is refreshed while no
// kernel record arrives, so short-lived processes are known before a
// seccomp kill removes them.
const kmsgPoll = 100 * time.Millisecond

// kmsgForget drops a PID that has not been seen in the container for this
// long, so a reused PID is not attributed to the container.
const kmsgForget = 30 * time.Second

// SeccompWatch follows the kernel log and appends the seccomp audit
// records of one container to a trail.
type SeccompWatch struct {
	// OnRecord, if set, is called (from Run's goroutine) with every record
	// Run appended, e.g. to tell the user which syscall was denied.
	OnRecord func(Record)

	t     *Trail
	c     Container
	pids  func() []int
	f     *os.File
	nsIno uint64
	known map[int]time.Time
	lost  atomic.Int64
}

// Lost counts the times the kernel log wrapped past unread records, which
// may have held seccomp records of the container.
func (w *SeccompWatch) Lost() int64 { return w.lost.Load() }

// OpenSeccompWatch starts reading the kernel log from its current end, so
// open it before the container starts. pids returns the container's
// processes as host PIDs (e.g. its cgroup.procs); a record is the
// container's if its PID is or recently was in that set, or lives in the
// PID namespace of c.PID (unless that is secrun's own namespace).
func OpenSeccompWatch(t *Trail, c Container, pids func() []int) (*SeccompWatch, error) {
	if t == nil || pids == nil {
		return nil, errors.New("kernel seccomp events: a trail and a PID source are required")
	}
	w := &SeccompWatch{t: t, c: c, pids: pids, known: map[int]time.Time{}}
	if c.PID > 0 {
		ns, err := pidNamespace(c.PID)
		if err != nil {
			return nil, fmt.Errorf("kernel seccomp events: PID namespace of container %s (pid %d): %w", c.ID, c.PID, err)
		}
		self, err := selfPidNamespace()
		if err != nil {
			return nil, fmt.Errorf("kernel seccomp events: own PID namespace: %w", err)
		}
		if ns != self {
			w.nsIno = ns
		}
	}
	f, err := openKmsg()
	if err != nil {
		return nil, err
	}
	w.f = f
	w.refresh(time.Now())
	return w, nil
}

// WatchSeccomp appends "seccomp.denied" (and "seccomp.logged") events for
// the container's kernel seccomp records until ctx ends, then returns nil.
// See OpenSeccompWatch for attribution; use it directly to be sure the watch
// is in place before the container starts.
func WatchSeccomp(ctx context.Context, t *Trail, c Container, pids func() []int) error {
	w, err := OpenSeccompWatch(t, c, pids)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// Run reads kernel records until ctx ends (returning nil) or appending
// fails (returning the error). When ctx ends it reads what the kernel log
// already holds, without waiting, and returns: the records a container made
// before it exited are in the log by then. It closes the watch when it
// returns.
func (w *SeccompWatch) Run(ctx context.Context) (err error) {
	defer func() {
		if cerr := w.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("kernel seccomp events: closing /dev/kmsg: %w", cerr)
		}
	}()
	// Wake a blocked read at once when ctx ends, rather than at the next
	// poll tick.
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 8192) // a kmsg record is at most 8 KiB (CONSOLE_EXT_LOG_MAX)
	for {
		if ctx.Err() != nil {
			return w.drain(ctx, buf)
		}
		// The deadline doubles as the PID refresh tick.
		if err := w.f.SetReadDeadline(time.Now().Add(kmsgPoll)); err != nil {
			return fmt.Errorf("kernel seccomp events: %w", err)
		}
		if ctx.Err() != nil {
			// AfterFunc may have run before the deadline above replaced
			// its own.
			return w.drain(ctx, buf)
		}
		n, err := w.f.Read(buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.refresh(time.Now())
			continue
		case errors.Is(err, syscall.EPIPE):
			// The ring buffer wrapped past us; reading resumes at the
			// oldest record still there.
			w.lost.Add(1)
			continue
		case err != nil:
			return fmt.Errorf("kernel seccomp events: reading /dev/kmsg: %w", err)
		}
		if err := w.handle(ctx, buf[:n]); err != nil {
			return err
		}
	}
}

// drain handles the records the kernel log holds now, without blocking.
func (w *SeccompWatch) drain(ctx context.Context, buf []byte) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("kernel seccomp events: %w", err)
	}
	w.refresh(time.Now())
	for {
		var n int
		var rerr error
		// Control, not Read: the file's deadline has passed. The
		// descriptor is non-blocking (the runtime poller's), so an empty
		// log is EAGAIN.
		if err := rc.Control(func(fd uintptr) { n, rerr = syscall.Read(int(fd), buf) }); err != nil {
			return fmt.Errorf("kernel seccomp events: %w", err)
		}
		switch {
		case errors.Is(rerr, syscall.EAGAIN):
			return nil
		case errors.Is(rerr, syscall.EINTR):
			continue
		case errors.Is(rerr, syscall.EPIPE):
			w.lost.Add(1)
			continue
		case rerr != nil:
			return fmt.Errorf("kernel seccomp events: reading /dev/kmsg: %w", rerr)
		case n <= 0:
			return nil
		}
		if err := w.handle(ctx, buf[:n]); err != nil {
			return err
		}
	}
}

// handle appends one kernel record if it is a seccomp record of the
// container.
func (w *SeccompWatch) handle(ctx context.Context, b []byte) error {
	rec, ok, perr := ParseKmsgSeccomp(b)
	if !ok || perr != nil || !w.belongs(rec.PID) {
		return nil
	}
	r, err := w.t.Append(context.WithoutCancel(ctx), seccompEvent(w.c, rec))
	if err != nil {
		return fmt.Errorf("kernel seccomp events: %w", err)
	}
	if w.OnRecord != nil {
		w.OnRecord(r)
	}
	return nil
}

func (w *SeccompWatch) refresh(now time.Time) {
	for _, p := range w.pids() {
		w.known[p] = now
	}
	for p, seen := range w.known {
		if now.Sub(seen) > kmsgForget {
			delete(w.known, p)
		}
	}
}

func (w *SeccompWatch) belongs(pid int) bool {
	if _, ok := w.known[pid]; ok {
		return true
	}
	w.refresh(time.Now())
	if _, ok := w.known[pid]; ok {
		return true
	}
	if w.nsIno != 0 {
		if ns, err := pidNamespace(pid); err == nil && ns == w.nsIno {
			return true
		}
	}
	return false
}

func seccompEvent(c Container, r SeccompRecord) Event {
	name := r.SyscallName()
	label := name
	if label == "" {
		label = fmt.Sprintf("#%d", r.Syscall)
	}
	fields := map[string]any{
		"syscall.nr":     r.Syscall,
		"syscall.arch":   r.ArchName(),
		"seccomp.action": r.Action(),
		"process.pid":    r.PID,
	}
	if name != "" {
		fields["syscall.name"] = name
	}
	if r.Signal != 0 {
		fields["seccomp.signal"] = r.Signal
	}
	if r.Comm != "" {
		fields["process.name"] = r.Comm
	}
	if r.Exe != "" {
		fields["process.executable"] = r.Exe
	}
	if r.AuditID != "" {
		fields["kernel.audit_id"] = r.AuditID
	}
	if r.KmsgSeq != 0 {
		fields["kernel.seq"] = r.KmsgSeq
	}
	e := Event{Kind: KindSeccompDenied, Outcome: OutcomeDenied, Container: c, Fields: fields,
		Reason: fmt.Sprintf("seccomp %s on syscall %s by pid %d", r.Action(), label, r.PID)}
	if !r.Denied() {
		e.Kind, e.Outcome = KindSeccompLogged, OutcomeAllowed
	}
	return e
}

//go:build linux && cgo

package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	seccomp "github.com/seccomp/libseccomp-golang"

	"github.com/secrun/secrun/audit"
)

func init() {
	extraHelpers["seccomp-kill"] = seccompHelper
	extraHelpers["seccomp-errno"] = seccompHelper
}

// seccompHelper is the child side: it waits for "go" on stdin, installs a
// filter and then makes the filtered syscall. "seccomp-kill" kills the
// process on getpriority; "seccomp-errno" fails getppid with EPERM and logs
// it (SECCOMP_FILTER_FLAG_LOG), repeating until stdin closes so the
// kernel's printk rate limit cannot hide every attempt.
func seccompHelper(mode string) error {
	runtime.LockOSThread()
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return err
	}
	var nr uintptr
	switch mode {
	case "seccomp-kill":
		sc, err := seccomp.GetSyscallFromName("getpriority")
		if err != nil {
			return err
		}
		if err := f.AddRule(sc, seccomp.ActKillProcess); err != nil {
			return err
		}
		nr = syscall.SYS_GETPRIORITY
	case "seccomp-errno":
		sc, err := seccomp.GetSyscallFromName("getppid")
		if err != nil {
			return err
		}
		if err := f.AddRule(sc, seccomp.ActErrno.SetReturnCode(int16(syscall.EPERM))); err != nil {
			return err
		}
		if err := f.SetLogBit(true); err != nil {
			return err
		}
		nr = syscall.SYS_GETPPID
		go func() {
			// Exit when the parent closes stdin.
			if _, err := io.Copy(io.Discard, in); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		}()
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err := f.Load(); err != nil {
		return err
	}
	for {
		syscall.RawSyscall(nr, 0, 0, 0)
		time.Sleep(200 * time.Millisecond)
	}
}

type kernelChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startKernelChild(t *testing.T, mode string, newPIDNS bool) *kernelChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	if newPIDNS {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &kernelChild{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("kill: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Logf("child %d: %v", cmd.Process.Pid, err)
			}
		}
	})
	return c
}

func (c *kernelChild) trigger(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// watch runs a SeccompWatch and returns its records on a channel and a
// stop function that checks Run's result.
func watch(t *testing.T, tr *audit.Trail, c audit.Container, pids func() []int) (<-chan audit.Record, func()) {
	t.Helper()
	w, err := audit.OpenSeccompWatch(tr, c, pids)
	if err != nil {
		t.Fatal(err)
	}
	recs := make(chan audit.Record, 64)
	w.OnRecord = func(r audit.Record) { recs <- r }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return recs, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func waitRecord(t *testing.T, recs <-chan audit.Record, within time.Duration) (audit.Record, bool) {
	t.Helper()
	select {
	case r := <-recs:
		return r, true
	case <-time.After(within):
		return audit.Record{}, false
	}
}

// Real kernel: a seccomp denial in a supervised process reaches the trail,
// attributed to the container with the syscall's name.
func TestWatchSeccompRecordsKernelDenials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading /dev/kmsg and creating PID namespaces need root")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, audit.Options{})

	t.Run("errno in the container's PID namespace", func(t *testing.T) {
		child := startKernelChild(t, "seccomp-errno", true)
		ctr := audit.Container{ID: "ns-ctr", Name: "ns", PID: child.cmd.Process.Pid}
		// No PID list at all: attribution is by PID namespace alone.
		recs, stop := watch(t, tr, ctr, func() []int { return nil })
		defer stop()
		child.trigger(t)
		r, ok := waitRecord(t, recs, 60*time.Second)
		if err := child.stdin.Close(); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatal("no seccomp record arrived from the kernel within a minute")
		}
		if r.Kind != audit.KindSeccompDenied || r.Outcome != audit.OutcomeDenied || r.Container.ID != "ns-ctr" ||
			r.Fields["syscall.name"] != "getppid" || r.Fields["seccomp.action"] != "errno" ||
			r.Fields["process.pid"] != child.cmd.Process.Pid {
			t.Fatalf("record = %+v", r)
		}
	})

	t.Run("kill attributed by PID set, other processes ignored", func(t *testing.T) {
		var mu sync.Mutex
		var ours []int
		pids := func() []int {
			mu.Lock()
			defer mu.Unlock()
			return append([]int(nil), ours...)
		}
		recs, stop := watch(t, tr, audit.Container{ID: "set-ctr"}, pids)
		defer stop()

		// A process outside the container is killed first; its record
		// precedes ours in the kernel log and must be skipped.
		foreign := startKernelChild(t, "seccomp-kill", false)
		foreign.trigger(t)
		if err := foreign.cmd.Wait(); err == nil {
			t.Fatal("the foreign child was not killed by seccomp")
		}
		// The kernel rate-limits these messages; try a few processes.
		for attempt := range 5 {
			child := startKernelChild(t, "seccomp-kill", false)
			mu.Lock()
			ours = append(ours, child.cmd.Process.Pid)
			mu.Unlock()
			child.trigger(t)
			err := child.cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
				t.Fatalf("child ended with %v, want SIGSYS", err)
			}
			r, ok := waitRecord(t, recs, 12*time.Second)
			if !ok {
				t.Logf("attempt %d: no kernel record (rate-limited?)", attempt)
				continue
			}
			if r.Kind != audit.KindSeccompDenied || r.Container.ID != "set-ctr" || r.Fields["syscall.name"] != "getpriority" ||
				r.Fields["seccomp.action"] != "kill_process" || r.Fields["seccomp.signal"] != int(syscall.SIGSYS) {
				t.Fatalf("record = %+v", r)
			}
			if p := r.Fields["process.pid"]; p == foreign.cmd.Process.Pid || !containsInt(pids(), p) {
				t.Fatalf("record attributed pid %v, want one of ours %v (foreign %d)", p, pids(), foreign.cmd.Process.Pid)
			}
			return
		}
		t.Fatal("no seccomp kill record arrived in 5 attempts")
	})

	// secrun stops the watch as soon as the container exits: a record the
	// kernel logged before that is still appended, not dropped with the
	// watch (Run drains the log when it stops).
	t.Run("records logged before the stop are kept", func(t *testing.T) {
		for attempt := range 5 {
			child := startKernelChild(t, "seccomp-kill", false)
			pid := child.cmd.Process.Pid
			// An independent reader tells a record the kernel logged from
			// one it rate-limited away.
			kmsg, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := syscall.Seek(kmsg, 0, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			recs, stop := watch(t, tr, audit.Container{ID: "stop-ctr"}, func() []int { return []int{pid} })
			child.trigger(t)
			child.cmd.Wait()
			stop() // at once, as secrun does when the container exits
			logged := kmsgHas(kmsg, pid)
			syscall.Close(kmsg)
			var got *audit.Record
			select {
			case r := <-recs:
				got = &r
			default:
			}
			switch {
			case got != nil && (got.Container.ID != "stop-ctr" || got.Fields["process.pid"] != pid):
				t.Fatalf("record = %+v", *got)
			case got != nil:
				return
			case logged:
				t.Fatalf("the kernel logged pid %d's seccomp kill before it exited, and the watch, stopped after that, dropped it", pid)
			}
			t.Logf("attempt %d: the kernel did not log the kill (rate-limited)", attempt)
			time.Sleep(time.Second)
		}
		t.Fatal("no record kept in 5 attempts")
	})

	rep := mustVerify(t, []string{path}, nil)
	if rep.Records < 3 {
		t.Errorf("trail holds %d records, want the kernel events too", rep.Records)
	}
}

// kmsgHas reads what the kernel log holds now (fd is non-blocking: an
// empty log is EAGAIN) and reports whether it has a seccomp record of pid.
func kmsgHas(fd int, pid int) bool {
	buf := make([]byte, 8192)
	found := false
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EPIPE) {
			continue
		}
		if err != nil || n <= 0 {
			return found
		}
		if rec, ok, perr := audit.ParseKmsgSeccomp(buf[:n]); ok && perr == nil && rec.PID == pid {
			found = true
		}
	}
}

func containsInt(list []int, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

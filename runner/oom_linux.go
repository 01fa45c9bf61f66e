package runner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/policy"
)

// oomWatch learns whether a container met the OOM killer without keeping
// its cgroup after it exits, so that `runc run` can remove the container
// itself and no second runc process (`runc delete`, about 25 ms) is needed.
// It is the cgroup v1 memory controller's notification, as containerd's
// shim uses it: an eventfd registered on memory.oom_control through
// cgroup.event_control. The kernel signals it once per OOM, before the OOM
// killer acts (so before runc can see the container exit), and once more
// when the cgroup is removed, a few milliseconds after runc removed it.
// After runc returns, the count read at once is therefore:
//
//	0   no OOM;
//	2+  an OOM (and maybe the removal);
//	1   an OOM, or a removal that came before runc returned (on some
//	    hosts, nearly always): when the host's OOM kill counter
//	    (/proc/vmstat oom_kill) has not moved since the watch began, no
//	    process anywhere was OOM-killed, so it was the removal; otherwise
//	    a second signal within oomSettle means the first was the OOM.
//
// On a cgroup v2 host, rootless, or when registration fails, there is no
// watch and the container is kept for `runc delete` after reading the
// cgroup's counters, as before.
type oomWatch struct {
	dir     string // the memory cgroup secrun made for the container
	efd     int
	control int // memory.oom_control, open while registered
	// hostKills reads the host's OOM kill counter; kills is its value
	// when the watch began, valid when killsOK.
	hostKills func() (uint64, bool)
	kills     uint64
	killsOK   bool
}

// oomSettle bounds the wait for the removal's signal when one signal is
// ambiguous; the removal has been seen to take 2-25 ms.
const oomSettle = 250 * time.Millisecond

// watchOOM creates the container's memory cgroup (runc uses an existing
// one) and registers for its OOM notifications; nil means no watch.
func watchOOM(cgpath string) *oomWatch {
	if cgpath == "" || runningRootless() || policy.CgroupMode() == "v2" {
		return nil
	}
	root := filepath.Join("/sys/fs/cgroup", "memory")
	var st unix.Statfs_t
	if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		return nil
	}
	dir := filepath.Join(root, cgpath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	w := &oomWatch{dir: dir, efd: -1, control: -1, hostKills: hostOOMKills}
	var err error
	if w.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		w.close()
		return nil
	}
	if w.control, err = unix.Open(filepath.Join(dir, "memory.oom_control"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		w.close()
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), fmt.Appendf(nil, "%d %d", w.efd, w.control), 0); err != nil {
		w.close()
		return nil
	}
	w.kills, w.killsOK = w.hostKills()
	return w
}

// hostOOMKills reads the kernel's count of OOM kills since boot. The kernel
// counts a kill before it sends the SIGKILL, so a kill in the container is
// counted before runc can see the container exit.
func hostOOMKills() (uint64, bool) {
	data, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return 0, false
	}
	return parseVMStat(data, "oom_kill")
}

// parseVMStat returns the value of one "name value" line of /proc/vmstat.
func parseVMStat(data []byte, name string) (uint64, bool) {
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if ok && string(k) == name {
			n, err := strconv.ParseUint(string(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// count reads and resets the notification count; 0 when none is pending.
func (w *oomWatch) count() uint64 {
	var buf [8]byte
	if n, err := unix.Read(w.efd, buf[:]); err != nil || n != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// oomed reports, once runc has removed the container, whether it met the
// OOM killer.
func (w *oomWatch) oomed() bool {
	switch n := w.count(); {
	case n == 0:
		return false
	case n >= 2:
		return true
	}
	if w.killsOK {
		if now, ok := w.hostKills(); ok && now == w.kills {
			return false
		}
	}
	fds := []unix.PollFd{{Fd: int32(w.efd), Events: unix.POLLIN}}
	deadline := time.Now().Add(oomSettle)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0 && w.count() > 0
	}
}

// close drops the registration and removes the cgroup if runc did not (a
// start that failed before runc made it its own).
func (w *oomWatch) close() {
	if w == nil {
		return
	}
	for _, fd := range []int{w.efd, w.control} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	w.efd, w.control = -1, -1
	// ENOENT: runc removed it. Busy: runc's delete, which then runs, does.
	_ = unix.Rmdir(w.dir)
}

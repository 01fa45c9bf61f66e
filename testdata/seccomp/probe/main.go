// Command probe makes raw syscalls and prints one line per call with the
// errno it got, for secrun's kernel-level seccomp tests. It is built
// static (CGO_ENABLED=0) and copied into a test container's rootfs.
//
// Usage:
//
//	probe NAME[:ARG,ARG...]...   call each syscall, print "NAME ERRNO" ("OK" on success)
//	probe -status                print the Seccomp line of /proc/self/status (also among calls)
//	probe -loop N NAME[:ARGS]... call each syscall N times, print "loop NAME ERRNO nanoseconds-per-call"
//
// Arguments are numbers (decimal or 0x-hex); pointers are passed as 0, so
// every call the probe makes is harmless when the filter lets it through:
// the kernel rejects it with EFAULT, EINVAL or EBADF instead.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var numbers = map[string]uintptr{
	"add_key":           unix.SYS_ADD_KEY,
	"bpf":               unix.SYS_BPF,
	"clone":             unix.SYS_CLONE,
	"clone3":            unix.SYS_CLONE3,
	"delete_module":     unix.SYS_DELETE_MODULE,
	"finit_module":      unix.SYS_FINIT_MODULE,
	"fsconfig":          unix.SYS_FSCONFIG,
	"fsmount":           unix.SYS_FSMOUNT,
	"fsopen":            unix.SYS_FSOPEN,
	"fspick":            unix.SYS_FSPICK,
	"getcwd":            unix.SYS_GETCWD,
	"getpid":            unix.SYS_GETPID,
	"getppid":           unix.SYS_GETPPID,
	"getuid":            unix.SYS_GETUID,
	"init_module":       unix.SYS_INIT_MODULE,
	"io_uring_enter":    unix.SYS_IO_URING_ENTER,
	"io_uring_register": unix.SYS_IO_URING_REGISTER,
	"io_uring_setup":    unix.SYS_IO_URING_SETUP,
	"kexec_file_load":   unix.SYS_KEXEC_FILE_LOAD,
	"kexec_load":        unix.SYS_KEXEC_LOAD,
	"keyctl":            unix.SYS_KEYCTL,
	"mount":             unix.SYS_MOUNT,
	"mount_setattr":     unix.SYS_MOUNT_SETATTR,
	"move_mount":        unix.SYS_MOVE_MOUNT,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	"open_tree":         unix.SYS_OPEN_TREE,
	"perf_event_open":   unix.SYS_PERF_EVENT_OPEN,
	"personality":       unix.SYS_PERSONALITY,
	"pidfd_getfd":       unix.SYS_PIDFD_GETFD,
	"pivot_root":        unix.SYS_PIVOT_ROOT,
	"process_vm_readv":  unix.SYS_PROCESS_VM_READV,
	"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
	"ptrace":            unix.SYS_PTRACE,
	"request_key":       unix.SYS_REQUEST_KEY,
	"sched_yield":       unix.SYS_SCHED_YIELD,
	"setns":             unix.SYS_SETNS,
	"sync":              unix.SYS_SYNC,
	"umount2":           unix.SYS_UMOUNT2,
	"uname":             unix.SYS_UNAME,
	"unshare":           unix.SYS_UNSHARE,
	"userfaultfd":       unix.SYS_USERFAULTFD,
}

func parse(spec string) (string, uintptr, [6]uintptr, error) {
	var args [6]uintptr
	name, rest, _ := strings.Cut(spec, ":")
	nr, ok := numbers[name]
	if !ok {
		return "", 0, args, fmt.Errorf("probe does not know syscall %q", name)
	}
	if rest != "" {
		for i, a := range strings.Split(rest, ",") {
			if i >= 6 {
				return "", 0, args, fmt.Errorf("%s: more than 6 arguments", spec)
			}
			v, err := strconv.ParseUint(a, 0, 64)
			if err != nil {
				return "", 0, args, fmt.Errorf("%s: argument %q: %w", spec, a, err)
			}
			args[i] = uintptr(v)
		}
	}
	return name, nr, args, nil
}

func call(nr uintptr, a [6]uintptr) string {
	_, _, e := unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	if e == 0 {
		return "OK"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno%d", int(e))
}

// status prints the Seccomp line of /proc/self/status ("Seccomp: 2" under
// a filter).
func status() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Seccomp:") {
			fmt.Println(strings.Join(strings.Fields(sc.Text()), " "))
		}
	}
}

func main() {
	args := os.Args[1:]
	if len(args) >= 3 && args[0] == "-loop" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 {
			fmt.Println("error bad count", args[1])
			os.Exit(2)
		}
		for _, spec := range args[2:] {
			name, nr, a, err := parse(spec)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			res := call(nr, a)
			start := time.Now()
			for i := 0; i < n; i++ {
				unix.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
			}
			fmt.Printf("loop %s %s %.2f\n", name, res, float64(time.Since(start).Nanoseconds())/float64(n))
		}
		return
	}
	for _, spec := range args {
		if spec == "-status" {
			status()
			continue
		}
		name, nr, a, err := parse(spec)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("%s %s\n", name, call(nr, a))
	}
}

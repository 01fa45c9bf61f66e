// Command probe is built statically and put into test images: it tries one
// privileged operation per argument and prints "NAME=RESULT", RESULT being
// "ok" or the errno's name (EPERM, ENOSYS, EROFS, ...), so tests can assert
// what the kernel enforced inside a real container.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

var probes = map[string]func() error{
	"ptrace": func() error { return unix.PtraceAttach(1) },
	"traceme": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
		return errnoErr(e)
	},
	"mount":       func() error { return unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "") },
	"sethostname": func() error { return unix.Sethostname([]byte("probe")) },
	"unshare-user": func() error {
		// A raw syscall: the kernel's answer, not Go's wrapper's.
		_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		return errnoErr(e)
	},
	"write-root": func() error { return os.WriteFile("/probe-write", []byte("x"), 0o644) },
	"write-tmp":  func() error { return os.WriteFile("/tmp/probe-write", []byte("x"), 0o644) },
	"chown-root": func() error { return unix.Chown("/tmp", 0, 0) },
	"keyctl": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, 0, 0, 0)
		return errnoErr(e)
	},
	"bpf": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_BPF, 0, 0, 0)
		return errnoErr(e)
	},
	"io_uring_setup": func() error {
		_, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
		return errnoErr(e)
	},
	"getpid": func() error { unix.Getpid(); return nil },
	"raw-socket": func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
		}
		return err
	},
	"bind-80": func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 80, Addr: [4]byte{127, 0, 0, 1}})
	},
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	code := 0
	for _, name := range os.Args[1:] {
		p, ok := probes[name]
		if !ok {
			fmt.Printf("%s=unknown-probe\n", name)
			code = 2
			continue
		}
		fmt.Printf("%s=%s\n", name, result(p()))
	}
	os.Exit(code)
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(errno))
	}
	return err.Error()
}

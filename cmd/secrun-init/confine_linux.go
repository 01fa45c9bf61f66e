package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// abiConfigs are go-landlock's configurations handling every file system
// access right of each ABI version, index 0 for V1.
var abiConfigs = []landlock.Config{
	landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6,
	landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11,
}

// kernelABI is the kernel's Landlock ABI version; a variable so tests can
// pretend the kernel has none.
var kernelABI = ll.LandlockGetABIVersion

// confine restricts this process (all its threads) to rules. It picks the
// configuration for the kernel's ABI itself instead of using go-landlock's
// best-effort mode, which silently enforces nothing when Landlock is missing
// or a requested right is unknown to the kernel.
func confine(rules []rule) error {
	abi, err := kernelABI()
	if err != nil {
		return fmt.Errorf("landlock is not available in this kernel: %w", err)
	}
	if abi < 1 {
		return fmt.Errorf("landlock is not available in this kernel (ABI version %d)", abi)
	}
	cfg := abiConfigs[min(abi, len(abiConfigs))-1]
	var fsRules []landlock.Rule
	for _, r := range rules {
		st, err := os.Stat(r.path)
		if err != nil {
			if r.optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("landlock rule for %s: %w", r.path, err)
		}
		fsRules = append(fsRules, fsRule(r, st.IsDir(), abi))
	}
	if err := cfg.RestrictPaths(fsRules...); err != nil {
		return fmt.Errorf("apply landlock ruleset (ABI v%d): %w", abi, err)
	}
	return nil
}

// fsRule turns one rule into go-landlock's form. Directory rules cover the
// whole tree beneath; file rules cannot carry directory rights. rw also
// grants what RWDirs leaves out but a writable tree needs: moving and linking
// between directories (refer, ABI 2), ioctl on devices opened for writing
// (ABI 5), and connecting to UNIX sockets living there (ABI 9).
func fsRule(r rule, dir bool, abi int) landlock.FSRule {
	switch {
	case !r.write && dir:
		return landlock.RODirs(r.path)
	case !r.write:
		return landlock.ROFiles(r.path)
	case dir:
		fr := landlock.RWDirs(r.path)
		if abi >= 2 {
			fr = fr.WithRefer()
		}
		if abi >= 5 {
			fr = fr.WithIoctlDev()
		}
		if abi >= 9 {
			fr = fr.WithResolveUnix()
		}
		return fr
	default:
		fr := landlock.RWFiles(r.path)
		if abi >= 5 {
			fr = fr.WithIoctlDev()
		}
		return fr
	}
}

// lookPath finds name as a shell would, in the container's PATH (Docker's
// default PATH when the spec sets none).
func lookPath(name string) (string, error) {
	if os.Getenv("PATH") == "" {
		if err := os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"); err != nil {
			return "", err
		}
	}
	p, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		return "", fmt.Errorf("found only relative to the working directory (%s); give an absolute path", p)
	}
	return p, err
}

// execve replaces this process with path; it returns only on failure.
func execve(path string, argv, env []string) error {
	return syscall.Exec(path, argv, env)
}

// loadFilter installs prog (sock_filter instructions in host byte order)
// as the calling thread's seccomp filter, after setting no_new_privs. The
// caller has locked the goroutine to its thread and execs from it: the
// filter carries over the exec, and the runtime's other threads end there.
func loadFilter(prog []byte, flags uint) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	insns := make([]unix.SockFilter, len(prog)/8)
	for i := range insns {
		b := prog[8*i:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("loading the seccomp filter: %w", errno)
	}
	runtime.KeepAlive(insns)
	return nil
}

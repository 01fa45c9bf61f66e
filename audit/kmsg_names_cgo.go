//go:build linux && cgo

package audit

import seccomp "github.com/seccomp/libseccomp-golang"

// syscallName resolves a syscall number with libseccomp.
func syscallName(arch string, nr int64) string {
	a, err := seccomp.GetArchFromString(arch)
	if err != nil {
		return ""
	}
	name, err := seccomp.ScmpSyscall(nr).GetNameByArch(a)
	if err != nil {
		return ""
	}
	return name
}

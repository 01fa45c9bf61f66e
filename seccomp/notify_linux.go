//go:build linux && cgo

package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// NotifyProfile is the filter a recording run uses: every syscall
// libseccomp can name, on the host architecture and its compat
// architectures, goes to the agent listening on listenerPath
// (SCMP_ACT_NOTIFY), except those in NotNotified, which are allowed, and
// clone3, which fails with ENOSYS exactly as under the default and recorded
// profiles so libc falls back to clone and the recording shows clone. The
// default action (ENOSYS) only applies to syscalls too new for libseccomp
// to name; a recorded profile could not name them either.
//
// runc rejects SCMP_ACT_NOTIFY as the default action (its own write of the
// notify fd would be notified), hence the explicit list.
func NotifyProfile(listenerPath string) *specs.LinuxSeccomp {
	enosys := uint(38)
	arches := hostArches()
	exempt := map[string]bool{"clone3": true}
	for _, n := range notNotified {
		exempt[n] = true
	}
	seen := map[string]bool{}
	var notify []string
	for _, a := range arches {
		arch, err := libseccomp.GetArchFromString(specArches[a])
		if err != nil {
			continue
		}
		for nr := 0; nr < 1024; nr++ {
			for _, n := range []int{nr, nr | x32SyscallBit} {
				name, err := libseccomp.ScmpSyscall(n).GetNameByArch(arch)
				if err != nil || seen[name] || exempt[name] {
					continue
				}
				seen[name] = true
				notify = append(notify, name)
			}
		}
	}
	slices.Sort(notify)
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &enosys,
		Architectures:   arches,
		ListenerPath:    listenerPath,
		Syscalls: []specs.LinuxSyscall{
			{Names: NotNotified(), Action: specs.ActAllow},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			{Names: notify, Action: specs.ActNotify},
		},
	}
}

// x32SyscallBit marks x32 syscall numbers.
const x32SyscallBit = 0x40000000

// hostArches is the host architecture followed by the compat architectures
// its processes can also use, as in Docker's archMap.
func hostArches() []specs.Arch {
	switch HostArch() {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "s390x":
		return []specs.Arch{specs.ArchS390X, specs.ArchS390}
	}
	if a := goArchSpec(HostArch()); a != "" {
		return []specs.Arch{a}
	}
	return nil
}

// specArchOf names a libseccomp architecture in runtime-spec spelling.
func specArchOf(a libseccomp.ScmpArch) specs.Arch {
	name := a.String()
	for k, v := range specArches {
		if v == name {
			return k
		}
	}
	return specs.Arch("SCMP_ARCH_" + name)
}

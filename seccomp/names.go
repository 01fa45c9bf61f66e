package seccomp

import (
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// actions are the rule and default actions of the runtime-spec, all of
// which runc 1.5 implements.
var actions = map[specs.LinuxSeccompAction]bool{
	specs.ActKill:        true,
	specs.ActKillProcess: true,
	specs.ActKillThread:  true,
	specs.ActTrap:        true,
	specs.ActErrno:       true,
	specs.ActTrace:       true,
	specs.ActAllow:       true,
	specs.ActLog:         true,
	specs.ActNotify:      true,
}

var operators = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual:     true,
	specs.OpLessThan:     true,
	specs.OpLessEqual:    true,
	specs.OpEqualTo:      true,
	specs.OpGreaterEqual: true,
	specs.OpGreaterThan:  true,
	specs.OpMaskedEqual:  true,
}

// flagTsync is accepted (and ignored) by runc though the runtime-spec does
// not define it; Docker profiles in the wild carry it.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

var flags = map[specs.LinuxSeccompFlag]bool{
	flagTsync:                              true,
	specs.LinuxSeccompFlagLog:              true,
	specs.LinuxSeccompFlagSpecAllow:        true,
	specs.LinuxSeccompFlagWaitKillableRecv: true,
}

// specArches maps runtime-spec architecture names to libseccomp's names.
var specArches = map[specs.Arch]string{
	specs.ArchX86:         "x86",
	specs.ArchX86_64:      "amd64",
	specs.ArchX32:         "x32",
	specs.ArchARM:         "arm",
	specs.ArchAARCH64:     "arm64",
	specs.ArchMIPS:        "mips",
	specs.ArchMIPS64:      "mips64",
	specs.ArchMIPS64N32:   "mips64n32",
	specs.ArchMIPSEL:      "mipsel",
	specs.ArchMIPSEL64:    "mipsel64",
	specs.ArchMIPSEL64N32: "mipsel64n32",
	specs.ArchPPC:         "ppc",
	specs.ArchPPC64:       "ppc64",
	specs.ArchPPC64LE:     "ppc64le",
	specs.ArchS390:        "s390",
	specs.ArchS390X:       "s390x",
	specs.ArchPARISC:      "parisc",
	specs.ArchPARISC64:    "parisc64",
	specs.ArchRISCV64:     "riscv64",
	specs.ArchLOONGARCH64: "loong64",
}

// filterArches are the architecture spellings Docker accepts in
// includes/excludes "arches" (libseccomp's names, as Docker derives them
// from GOARCH).
var filterArches = map[string]bool{
	"x86": true, "amd64": true, "x32": true, "arm": true, "arm64": true,
	"mips": true, "mipsel": true, "mips64": true, "mips64n32": true,
	"mipsel64": true, "mipsel64n32": true, "mips3l64n32": true,
	"ppc": true, "ppc64": true, "ppc64le": true, "s390": true, "s390x": true,
	"riscv64": true, "loong64": true, "loongarch64": true,
	"parisc": true, "parisc64": true,
}

// goArches maps GOARCH to the spelling used in includes/excludes "arches"
// and to the runtime-spec architecture.
var goArches = map[string]struct {
	filter string
	spec   specs.Arch
}{
	"386":      {"x86", specs.ArchX86},
	"amd64":    {"amd64", specs.ArchX86_64},
	"arm":      {"arm", specs.ArchARM},
	"arm64":    {"arm64", specs.ArchAARCH64},
	"loong64":  {"loong64", specs.ArchLOONGARCH64},
	"mips":     {"mips", specs.ArchMIPS},
	"mipsle":   {"mipsel", specs.ArchMIPSEL},
	"mips64":   {"mips64", specs.ArchMIPS64},
	"mips64le": {"mipsel64", specs.ArchMIPSEL64},
	"ppc64":    {"ppc64", specs.ArchPPC64},
	"ppc64le":  {"ppc64le", specs.ArchPPC64LE},
	"riscv64":  {"riscv64", specs.ArchRISCV64},
	"s390x":    {"s390x", specs.ArchS390X},
}

// HostArch returns the host's architecture in includes/excludes spelling
// ("amd64", "arm64", ...), derived from the architecture secrun was built
// for, as Docker does.
func HostArch() string {
	if a, ok := goArches[runtime.GOARCH]; ok {
		return a.filter
	}
	return runtime.GOARCH
}

// filterArchMatches compares includes/excludes arch spellings, treating
// Docker's historical aliases as equal.
func filterArchMatches(list []string, arch string) bool {
	norm := func(s string) string {
		switch s {
		case "loongarch64":
			return "loong64"
		case "mips3l64n32":
			return "mipsel64n32"
		}
		return s
	}
	for _, a := range list {
		if norm(a) == norm(arch) {
			return true
		}
	}
	return false
}

// recentSyscalls are real Linux syscalls added since Linux 5.3. An older
// libseccomp cannot resolve some of them; runc then skips the rule, and the
// profile's default action applies. Naming them is not a typo, so
// validation accepts them. Keep sorted.
var recentSyscalls = map[string]bool{
	"cachestat":               true,
	"clone3":                  true,
	"close_range":             true,
	"epoll_pwait2":            true,
	"faccessat2":              true,
	"fchmodat2":               true,
	"file_getattr":            true,
	"file_setattr":            true,
	"futex_requeue":           true,
	"futex_wait":              true,
	"futex_waitv":             true,
	"futex_wake":              true,
	"getxattrat":              true,
	"landlock_add_rule":       true,
	"landlock_create_ruleset": true,
	"landlock_restrict_self":  true,
	"listmount":               true,
	"listxattrat":             true,
	"lsm_get_self_attr":       true,
	"lsm_list_modules":        true,
	"lsm_set_self_attr":       true,
	"map_shadow_stack":        true,
	"memfd_secret":            true,
	"mount_setattr":           true,
	"mseal":                   true,
	"open_tree_attr":          true,
	"openat2":                 true,
	"pidfd_getfd":             true,
	"pidfd_open":              true,
	"process_madvise":         true,
	"process_mrelease":        true,
	"quotactl_fd":             true,
	"removexattrat":           true,
	"riscv_flush_icache":      true,
	"riscv_hwprobe":           true,
	"set_mempolicy_home_node": true,
	"setxattrat":              true,
	"statmount":               true,
	"uprobe":                  true,
	"uretprobe":               true,
}

// NormalizeCap returns a capability name in the "CAP_SYS_ADMIN" spelling
// used by Docker profiles ("sys_admin" and "cap_sys_admin" are accepted).
func NormalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

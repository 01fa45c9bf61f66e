package profiles

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrAppArmorNotEnabled is returned when an AppArmor operation needs the
// kernel's AppArmor and this host does not run it.
var ErrAppArmorNotEnabled = errors.New("AppArmor is not enabled on this host")

// AppArmorProfilePrefix starts the name of every profile secrun generates, so
// an operator can tell secrun's profiles apart in /sys/kernel/security/apparmor/profiles.
const AppArmorProfilePrefix = "secrun-"

// The allowlists below are the only characters a value may carry into a
// rendered profile. AppArmor's grammar gives meaning to spaces, quotes,
// commas, braces, globs, '@' (variables), '^' and ':' (namespaces), and a
// newline would end a rule; none of them can appear in an accepted value, so a
// value can never add, widen or cut short a rule.
var (
	appArmorNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) // and at most 128 bytes
	appArmorPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)
)

// reservedAppArmorNames are names the kernel or runc give a meaning to.
var reservedAppArmorNames = []string{"unconfined", "runc", "crun", "docker-default"}

// ValidateAppArmorName reports whether name may be used as a profile name in a
// rendered profile or in process.apparmorProfile.
func ValidateAppArmorName(name string) error {
	if len(name) > 128 || !appArmorNameRE.MatchString(name) {
		return fmt.Errorf("apparmor profile name %q is not allowed: use 1-128 characters from [A-Za-z0-9._-], starting with a letter or digit", name)
	}
	if slices.Contains(reservedAppArmorNames, name) {
		return fmt.Errorf("apparmor profile name %q is reserved: choose another name", name)
	}
	return nil
}

// validateAppArmorPath reports whether p may be rendered as a path in a rule.
// what names where the path came from, for the error message.
func validateAppArmorPath(what, p string) error {
	if !appArmorPathRE.MatchString(p) || path.Clean(p) != p || hasDotSegment(p) {
		return fmt.Errorf("%s %q cannot be rendered into an AppArmor profile: only clean absolute paths of [A-Za-z0-9._-] segments are allowed", what, p)
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// appArmorCapabilities maps OCI capability names to the names apparmor_parser
// knows. It is an allowlist: a capability missing here cannot be rendered.
var appArmorCapabilities = map[string]string{
	"CAP_AUDIT_CONTROL":      "audit_control",
	"CAP_AUDIT_READ":         "audit_read",
	"CAP_AUDIT_WRITE":        "audit_write",
	"CAP_BLOCK_SUSPEND":      "block_suspend",
	"CAP_BPF":                "bpf",
	"CAP_CHECKPOINT_RESTORE": "checkpoint_restore",
	"CAP_CHOWN":              "chown",
	"CAP_DAC_OVERRIDE":       "dac_override",
	"CAP_DAC_READ_SEARCH":    "dac_read_search",
	"CAP_FOWNER":             "fowner",
	"CAP_FSETID":             "fsetid",
	"CAP_IPC_LOCK":           "ipc_lock",
	"CAP_IPC_OWNER":          "ipc_owner",
	"CAP_KILL":               "kill",
	"CAP_LEASE":              "lease",
	"CAP_LINUX_IMMUTABLE":    "linux_immutable",
	"CAP_MAC_ADMIN":          "mac_admin",
	"CAP_MAC_OVERRIDE":       "mac_override",
	"CAP_MKNOD":              "mknod",
	"CAP_NET_ADMIN":          "net_admin",
	"CAP_NET_BIND_SERVICE":   "net_bind_service",
	"CAP_NET_BROADCAST":      "net_broadcast",
	"CAP_NET_RAW":            "net_raw",
	"CAP_PERFMON":            "perfmon",
	"CAP_SETFCAP":            "setfcap",
	"CAP_SETGID":             "setgid",
	"CAP_SETPCAP":            "setpcap",
	"CAP_SETUID":             "setuid",
	"CAP_SYSLOG":             "syslog",
	"CAP_SYS_ADMIN":          "sys_admin",
	"CAP_SYS_BOOT":           "sys_boot",
	"CAP_SYS_CHROOT":         "sys_chroot",
	"CAP_SYS_MODULE":         "sys_module",
	"CAP_SYS_NICE":           "sys_nice",
	"CAP_SYS_PACCT":          "sys_pacct",
	"CAP_SYS_PTRACE":         "sys_ptrace",
	"CAP_SYS_RAWIO":          "sys_rawio",
	"CAP_SYS_RESOURCE":       "sys_resource",
	"CAP_SYS_TIME":           "sys_time",
	"CAP_SYS_TTY_CONFIG":     "sys_tty_config",
	"CAP_WAKE_ALARM":         "wake_alarm",
}

// Peers outside the container that may signal it: processes of the host that
// run unconfined (an operator's kill, `secrun stop`), and the OCI runtimes,
// which distributions confine under profiles of their own name.
var appArmorSignalPeers = []string{"unconfined", "runc", "crun"}

// /proc and /sys entries no container reads, even where the mount layout
// would show them: kernel memory, the kernel log, a reboot trigger, kernel
// timers and scheduler internals (information leaks), firmware tables, LSM
// state, debug and tracing interfaces, and RAPL energy counters (the PLATYPUS
// power side channel).
var (
	appArmorProcNoAccess = []string{"kcore", "kmem", "mem", "kmsg", "sysrq-trigger", "timer_list", "sched_debug", "kallsyms"}
	appArmorSysNoAccess  = []string{"firmware", "kernel/security", "kernel/debug", "kernel/tracing", "devices/virtual/powercap"}
)

// RenderAppArmor renders the AppArmor profile named name for a container with
// the given final OCI spec. It is at least as strict as Docker's
// docker-default: mounts, unmounts and pivot_root are denied; writes to /proc
// are denied outside the process's own /proc/<pid>; writes to /sys are denied
// entirely; raw and packet sockets are allowed only when the spec grants
// CAP_NET_RAW; AF_ALG and every address family besides IP, UNIX and netlink are
// denied; capabilities are exactly the spec's; signals and ptrace work only
// between processes of this profile (and signals from the host's unconfined
// processes and runtimes). The spec's masked paths are denied outright and its
// read-only paths and read-only mounts are denied writes.
//
// Every value taken from name or spec is checked against a strict character
// allowlist first; a value outside it is an error naming that value.
func RenderAppArmor(name string, spec *specs.Spec) (string, error) {
	if err := ValidateAppArmorName(name); err != nil {
		return "", err
	}
	if spec == nil {
		return "", errors.New("render apparmor profile: no OCI spec given")
	}
	capNames, err := appArmorCapList(spec)
	if err != nil {
		return "", err
	}
	netRaw := slices.Contains(capNames, "net_raw")
	masked, readonly, roMounts, err := appArmorSpecPaths(spec)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# AppArmor profile for a secrun container, generated from its OCI spec.")
	w("# Regenerate it with `secrun profile apparmor`; do not edit.")
	w("")
	w("profile %s flags=(attach_disconnected,mediate_deleted) {", name)
	w("  # Files: what the mount namespace and file permissions allow, minus the denials below.")
	w("  file,")
	w("")
	if len(capNames) == 0 {
		w("  # Capabilities: the spec grants none, so none is allowed.")
	} else {
		w("  # Capabilities: exactly the spec's set.")
		w("  capability %s,", strings.Join(capNames, " "))
	}
	w("")
	w("  # Networking: IP stream and datagram sockets, UNIX and netlink sockets.")
	for _, fam := range []string{"inet", "inet6"} {
		for _, typ := range []string{"stream", "dgram"} {
			w("  network %s %s,", fam, typ)
		}
	}
	w("  network unix,")
	w("  network netlink,")
	if netRaw {
		w("  # The spec grants CAP_NET_RAW: raw IP and packet sockets.")
		w("  network inet raw,")
		w("  network inet6 raw,")
		w("  network packet,")
	} else {
		w("  # No CAP_NET_RAW: no raw IP or packet sockets.")
		w("  audit deny network inet raw,")
		w("  audit deny network inet6 raw,")
		w("  audit deny network packet,")
	}
	w("  # The kernel crypto socket API is attack surface no container needs.")
	w("  audit deny network alg,")
	w("")
	w("  # The mount table is fixed by the runtime before the container starts.")
	w("  audit deny mount,")
	w("  audit deny umount,")
	w("  audit deny pivot_root,")
	w("")
	w("  # Signals: from the host's unconfined processes and OCI runtimes, and within this profile.")
	for _, peer := range appArmorSignalPeers {
		w("  signal (receive) peer=%s,", peer)
	}
	w("  signal (send,receive) peer=%s,", name)
	w("  # ptrace and /proc inspection only within this profile.")
	w("  ptrace (trace,read,tracedby,readby) peer=%s,", name)
	w("")
	w("  # /proc: writable only below /proc/<pid>; everything else is kernel state.")
	w("  deny /proc/* w,")
	w("  deny /proc/[^0-9/]*/** w,")
	w("  deny /proc/[0-9]*[^0-9/]*/** w,")
	w("  deny /proc/{%s} rwklx,", strings.Join(appArmorProcNoAccess, ","))
	w("")
	w("  # /sys: never written; firmware, LSM, debug and energy interfaces not even read.")
	w("  deny /sys/** wklx,")
	w("  deny /sys/{%s}/** rwklx,", strings.Join(appArmorSysNoAccess, ","))
	if len(masked) > 0 {
		w("")
		w("  # The spec's masked paths.")
		for _, p := range masked {
			w("  deny %s rwklx,", p)
			w("  deny %s/** rwklx,", p)
		}
	}
	if len(readonly) > 0 {
		w("")
		w("  # The spec's read-only paths.")
		for _, p := range readonly {
			w("  deny %s wkl,", p)
			w("  deny %s/** wkl,", p)
		}
	}
	if len(roMounts) > 0 {
		w("")
		w("  # The spec's read-only mounts.")
		for _, p := range roMounts {
			w("  deny %s wkl,", p)
			w("  deny %s/** wkl,", p)
		}
	}
	w("}")
	return b.String(), nil
}

// appArmorCapList returns the AppArmor names of every capability in any of the
// spec's sets, sorted. Any set can only narrow what the bounding set allows,
// so their union is what the process may ever hold.
func appArmorCapList(spec *specs.Spec) ([]string, error) {
	if spec.Process == nil || spec.Process.Capabilities == nil {
		return nil, nil
	}
	c := spec.Process.Capabilities
	var out []string
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, capName := range set {
			aa, ok := appArmorCapabilities[capName]
			if !ok {
				return nil, fmt.Errorf("capability %q in the spec cannot be rendered into an AppArmor profile: not a known capability name (expected e.g. CAP_NET_BIND_SERVICE)", capName)
			}
			if !slices.Contains(out, aa) {
				out = append(out, aa)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// appArmorSpecPaths returns the spec's masked paths, read-only paths and
// read-only mount destinations, validated, sorted and without duplicates.
func appArmorSpecPaths(spec *specs.Spec) (masked, readonly, roMounts []string, err error) {
	add := func(list []string, what, p string) ([]string, error) {
		if err := validateAppArmorPath(what, p); err != nil {
			return nil, err
		}
		if !slices.Contains(list, p) {
			list = append(list, p)
		}
		return list, nil
	}
	if spec.Linux != nil {
		for _, p := range spec.Linux.MaskedPaths {
			if masked, err = add(masked, "masked path", p); err != nil {
				return nil, nil, nil, err
			}
		}
		for _, p := range spec.Linux.ReadonlyPaths {
			if readonly, err = add(readonly, "read-only path", p); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, m := range spec.Mounts {
		if !slices.Contains(m.Options, "ro") {
			continue
		}
		if roMounts, err = add(roMounts, "read-only mount destination", m.Destination); err != nil {
			return nil, nil, nil, err
		}
	}
	slices.Sort(masked)
	slices.Sort(readonly)
	slices.Sort(roMounts)
	return masked, readonly, roMounts, nil
}

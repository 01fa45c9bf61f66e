package runner

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecOpt changes one aspect of a spec. Options are small and named so that a
// preset reads as a list of decisions; each takes every input it depends on as
// an argument instead of relying on the order it is applied in.
type SpecOpt func(*specs.Spec) error

// Compose applies opts in order and stops at the first error.
func Compose(opts ...SpecOpt) SpecOpt {
	return func(s *specs.Spec) error {
		for _, o := range opts {
			if err := o(s); err != nil {
				return err
			}
		}
		return nil
	}
}

// NewSpec returns the empty starting point: no capabilities, no mounts, no
// namespaces. Everything a container gets is added by an option.
func NewSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{},
		},
		Linux: &specs.Linux{Resources: &specs.LinuxResources{}},
	}
}

// WithProcess sets the command, environment and working directory.
func WithProcess(args, env []string, cwd string) SpecOpt {
	return func(s *specs.Spec) error {
		if len(args) == 0 {
			return errors.New("no command: the image has no Entrypoint or Cmd; give one after the image name")
		}
		if cwd == "" {
			cwd = "/"
		}
		if !path.IsAbs(cwd) {
			return fmt.Errorf("working directory %q is not absolute", cwd)
		}
		s.Process.Args = slices.Clone(args)
		s.Process.Env = slices.Clone(env)
		s.Process.Cwd = cwd
		return nil
	}
}

// WithTerminal allocates a pseudo-terminal for the process.
func WithTerminal(on bool) SpecOpt {
	return func(s *specs.Spec) error { s.Process.Terminal = on; return nil }
}

// WithHostname sets the container's hostname (in its own UTS namespace).
func WithHostname(name string) SpecOpt {
	return func(s *specs.Spec) error { s.Hostname = name; return nil }
}

// WithCapabilities grants exactly set in every capability set but the
// ambient one, which stays empty so that a non-root process gains nothing on
// exec. An empty set is the default: every capability dropped.
func WithCapabilities(set []string) SpecOpt {
	return func(s *specs.Spec) error {
		c := slices.Clone(set)
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    c,
			Effective:   slices.Clone(c),
			Permitted:   slices.Clone(c),
			Inheritable: nil,
			Ambient:     nil,
		}
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs so setuid binaries and file
// capabilities cannot raise privileges after exec.
func WithNoNewPrivileges(on bool) SpecOpt {
	return func(s *specs.Spec) error { s.Process.NoNewPrivileges = on; return nil }
}

// WithReadonlyRootfs makes / read-only: writes fail with EROFS.
func WithReadonlyRootfs(on bool) SpecOpt {
	return func(s *specs.Spec) error { s.Root.Readonly = on; return nil }
}

// WithUser sets the process identity inside the container.
func WithUser(uid, gid uint32, extraGids []uint32) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.User = specs.User{UID: uid, GID: gid, AdditionalGids: slices.Clone(extraGids)}
		return nil
	}
}

// WithNamespaces gives the container new namespaces of the listed types.
// Namespaces not listed are shared with the host.
func WithNamespaces(types ...specs.LinuxNamespaceType) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Namespaces = nil
		for _, t := range types {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		}
		return nil
	}
}

// WithoutNamespace shares the named namespace with the host (--network host,
// --pid host, ...). Relaxations are explicit options, never defaults.
func WithoutNamespace(t specs.LinuxNamespaceType) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
		return nil
	}
}

// WithUserNamespaceMappings gives the container a user namespace with the
// given mappings (rootless: the caller's uid and subordinate ranges), none
// of which may reach host id 0.
func WithUserNamespaceMappings(uids, gids []specs.LinuxIDMapping) SpecOpt {
	return func(s *specs.Spec) error {
		if len(uids) == 0 || len(gids) == 0 {
			return errors.New("a user namespace needs uid and gid mappings")
		}
		for _, m := range append(slices.Clone(uids), gids...) {
			if m.HostID == 0 || m.Size == 0 {
				return fmt.Errorf("refusing user namespace mapping %+v: it maps host id 0 or nothing", m)
			}
		}
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}
		s.Linux.UIDMappings = slices.Clone(uids)
		s.Linux.GIDMappings = slices.Clone(gids)
		return nil
	}
}

// WithRootPath uses dir, an absolute host path, as the root filesystem in
// place of the bundle's rootfs directory (rootless: the unpacked image,
// which runc bind-mounts, read-only with WithReadonlyRootfs).
func WithRootPath(dir string) SpecOpt {
	return func(s *specs.Spec) error {
		if !path.IsAbs(dir) {
			return fmt.Errorf("root path %q is not absolute", dir)
		}
		s.Root.Path = dir
		return nil
	}
}

// WithUserNamespace maps container ids 0..m.Size-1 to the host range m, which
// never includes host uid 0.
func WithUserNamespace(m IDRange) SpecOpt {
	return func(s *specs.Spec) error {
		if m.HostID == 0 {
			return errors.New("refusing a user namespace that maps to host uid 0")
		}
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostID, Size: m.Size}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostID, Size: m.Size}}
		return nil
	}
}

// WithPidsLimit caps the number of tasks; a fork bomb stops at the limit.
func WithPidsLimit(n int64) SpecOpt {
	return func(s *specs.Spec) error {
		if n == 0 {
			return nil
		}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
		return nil
	}
}

// WithMemoryLimit caps memory (bytes) and forbids swap beyond it.
func WithMemoryLimit(bytes int64) SpecOpt {
	return func(s *specs.Spec) error {
		if bytes <= 0 {
			return nil
		}
		swap := bytes
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &bytes, Swap: &swap}
		return nil
	}
}

// WithCPUs limits CPU time to the given number of CPUs (CFS quota).
func WithCPUs(cpus float64) SpecOpt {
	return func(s *specs.Spec) error {
		if cpus <= 0 {
			return nil
		}
		period := uint64(100000)
		quota := int64(cpus * float64(period))
		s.Linux.Resources.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
		return nil
	}
}

// WithCgroupsPath places the container in a cgroup of its own.
func WithCgroupsPath(p string) SpecOpt {
	return func(s *specs.Spec) error { s.Linux.CgroupsPath = p; return nil }
}

// WithRlimits sets conservative per-process resource limits: open files,
// and with nproc > 0 the number of processes of the container's user. Since
// Linux 5.14 RLIMIT_NPROC counts the processes of a uid in its own user
// namespace, so in a container with a user namespace of its own it bounds a
// fork bomb where no pids cgroup can (rootless without delegation).
func WithRlimits(nofile, nproc uint64) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}
		if nproc > 0 {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: nproc, Soft: nproc})
		}
		return nil
	}
}

// WithStandardMounts adds /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys
// and the cgroup filesystem, all nosuid, and noexec where nothing needs to run.
// With ttyGroup new terminals belong to gid 5 (tty), as Docker's do; a
// container whose only id is its root (rootless without subordinate ids)
// has no gid 5 to give them.
func WithStandardMounts(ttyGroup bool) SpecOpt {
	return func(s *specs.Spec) error {
		pts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
		if ttyGroup {
			pts = append(pts, "gid=5")
		}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: pts},
			specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		)
		return nil
	}
}

// WithTmpfs mounts a size-limited tmpfs at dst. Data written there is the only
// writable storage a default container has.
func WithTmpfs(dst string, sizeBytes int64, extra ...string) SpecOpt {
	return func(s *specs.Spec) error {
		if !path.IsAbs(dst) {
			return fmt.Errorf("tmpfs destination %q is not absolute", dst)
		}
		opts := []string{"nosuid", "nodev", "noexec", "mode=1777", fmt.Sprintf("size=%d", sizeBytes)}
		opts = append(opts, extra...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: path.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: opts})
		return nil
	}
}

// WithBind adds a bind mount of a host path; src must already be resolved
// (no symlinks) by the caller.
func WithBind(src, dst string, readonly bool) SpecOpt {
	return func(s *specs.Spec) error {
		opts := []string{"rbind", "nosuid", "nodev", "rprivate"}
		if readonly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: path.Clean(dst), Type: "bind", Source: src, Options: opts})
		return nil
	}
}

// maskedPaths and readonlyPaths are Docker's lists: kernel interfaces that
// leak host information or allow host changes from inside a container.
var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// WithMaskedPaths hides and write-protects Docker's sensitive /proc and /sys paths.
func WithMaskedPaths() SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.MaskedPaths = slices.Clone(maskedPaths)
		s.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
		return nil
	}
}

// WithDefaultDevices allows only the standard devices (null, zero, full,
// random, urandom, tty, ptmx, pts), which runc creates itself: every other
// device access is denied by the device cgroup.
func WithDefaultDevices() SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Devices = nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
		return nil
	}
}

// WithoutHooks removes every OCI hook: hooks run on the host, as root,
// outside every restriction the container has.
func WithoutHooks() SpecOpt {
	return func(s *specs.Spec) error { s.Hooks = nil; return nil }
}

// WithSeccomp installs a seccomp filter; nil means unconfined and is an
// explicit request that policy sees.
func WithSeccomp(sc *specs.LinuxSeccomp) SpecOpt {
	return func(s *specs.Spec) error { s.Linux.Seccomp = sc; return nil }
}

// WithAnnotations records secrun's own facts about the container in the spec.
func WithAnnotations(kv map[string]string) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range kv {
			s.Annotations[k] = v
		}
		return nil
	}
}

// Validate runs independent checks over a finished spec before runc sees it.
// Each returns an error naming the field at fault.
func Validate(s *specs.Spec) error {
	checks := []func(*specs.Spec) error{
		checkProcess,
		checkUserNamespace,
		checkMounts,
	}
	var errs []error
	for _, c := range checks {
		if err := c(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkProcess(s *specs.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return errors.New("spec: process.args is empty")
	}
	if !path.IsAbs(s.Process.Cwd) {
		return fmt.Errorf("spec: process.cwd %q is not absolute", s.Process.Cwd)
	}
	return nil
}

func checkUserNamespace(s *specs.Spec) error {
	for _, m := range append(slices.Clone(s.Linux.UIDMappings), s.Linux.GIDMappings...) {
		if m.HostID == 0 {
			return fmt.Errorf("spec: linux.uidMappings maps a container id to host id 0 (%+v)", m)
		}
	}
	return nil
}

func checkMounts(s *specs.Spec) error {
	seen := map[string]bool{}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.Destination) || strings.Contains(m.Destination, "/../") {
			return fmt.Errorf("spec: mounts[%d].destination %q must be an absolute clean path", i, m.Destination)
		}
		if seen[m.Destination] && m.Type != "tmpfs" {
			return fmt.Errorf("spec: mounts[%d]: %q is mounted twice", i, m.Destination)
		}
		seen[m.Destination] = true
	}
	return nil
}

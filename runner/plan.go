package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/cyphar/filepath-securejoin/pathrs-lite"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/caps"
	"github.com/secrun/secrun/policy"
)

// SeccompSource turns a --security-opt seccomp= value into a filter for a
// given capability set: "default" is secrun's built-in profile, anything else
// but "unconfined" a Docker-format profile file. The capability set is an
// argument because Docker-format profiles allow syscalls per capability.
type SeccompSource func(value string, granted []string, noNewPrivileges bool) (*specs.LinuxSeccomp, []string, error)

// PlanInput is everything a spec is derived from. Nothing is read from
// globals: the same inputs give the same spec.
type PlanInput struct {
	Options RunOptions
	ID      string
	Config  *v1.ConfigFile
	// Rootfs is the unpacked image, read to resolve USER names and to check
	// that the command exists; it is never written.
	Rootfs  string
	IDs     IDRange
	Seccomp SeccompSource
	// Cgroups is the container's cgroups path. Rootless, "" means no
	// delegated cgroup: the spec then has no cgroup limits.
	Cgroups string
	// Rootless, when set, plans for secrun without root: the user namespace
	// maps these ids (IDs is unused), the rootfs is Rootfs itself, read-only,
	// and RLIMIT_NPROC carries the pids limit. See rootless_linux.go.
	Rootless *RootlessIDs
}

// Plan is the result of planning: the final spec, the request policy sees,
// and the notes to show the user (e.g. syscalls added for the runtime).
type Plan struct {
	Spec    *specs.Spec
	Request policy.Request
	Volumes []volume
	Notes   []string
}

// MakePlan derives the hardened spec for a request. Every relaxation comes
// from an explicit option; without options the result is the hardened preset.
func MakePlan(in PlanInput) (*Plan, error) {
	o := in.Options
	so, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}
	if o.Network == "" {
		o.Network = "none"
	}
	if o.Network != "none" && o.Network != "host" {
		return nil, fmt.Errorf("invalid --network %q: want none or host", o.Network)
	}
	if o.Userns != "" && o.Userns != "host" && o.Userns != "private" {
		return nil, fmt.Errorf("invalid --userns %q: want host or private", o.Userns)
	}
	mem, err := ParseMemory(o.Memory)
	if err != nil {
		return nil, err
	}
	if mem == 0 {
		mem = DefaultMemory
	}
	pids := o.PidsLimit
	if pids == 0 {
		pids = DefaultPidsLimit
	}
	if o.CPUs < 0 {
		return nil, fmt.Errorf("invalid --cpus %v: must be positive", o.CPUs)
	}

	var vols []volume
	for _, s := range o.Volumes {
		v, err := parseVolume(s)
		if err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}
	for _, s := range o.Mounts {
		v, err := parseMount(s)
		if err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}
	for _, s := range o.Tmpfs {
		v, err := parseTmpfs(s)
		if err != nil {
			return nil, err
		}
		vols = append(vols, v)
	}

	base := caps.Set(nil)
	if o.Privileged {
		if base, err = caps.HostBounding(); err != nil {
			return nil, err
		}
	}
	granted, err := caps.Resolve(base, o.CapAdd, o.CapDrop)
	if err != nil {
		return nil, err
	}

	cfg := in.Config
	if cfg == nil {
		cfg = &v1.ConfigFile{}
	}
	args := commandLine(cfg.Config.Entrypoint, cfg.Config.Cmd, o.Args)
	env := mergeEnv(cfg.Config.Env, o.Env, o.TTY)
	cwd := o.Workdir
	if cwd == "" {
		cwd = cfg.Config.WorkingDir
	}
	userSpec := o.User
	if userSpec == "" {
		userSpec = cfg.Config.User
	}
	uid, gid, extra, err := resolveUser(in.Rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	var notes []string
	if in.Rootless != nil {
		var note string
		if uid, gid, extra, note, err = rootlessUser(in.Rootless, userSpec, uid, gid, extra); err != nil {
			return nil, err
		}
		if note != "" {
			notes = append(notes, note)
		}
		if err := rootlessRefusals(o); err != nil {
			return nil, err
		}
	}
	if len(args) > 0 {
		if err := findCommand(in.Rootfs, args[0], env); err != nil {
			return nil, err
		}
	}

	var sc *specs.LinuxSeccomp
	if !o.Privileged && so.Seccomp != "unconfined" {
		if in.Seccomp == nil {
			return nil, errors.New("no seccomp profile source configured")
		}
		var scNotes []string
		sc, scNotes, err = in.Seccomp(so.Seccomp, granted, so.NoNewPrivileges)
		if err != nil {
			return nil, err
		}
		notes = append(notes, scNotes...)
	}

	hostname := o.Name
	if hostname == "" {
		hostname = in.ID[:12]
	}
	namespaces := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.CgroupNamespace}
	// Rootless without a delegated cgroup, runc cannot apply cgroup limits
	// and fails on them: the process count is bounded by RLIMIT_NPROC.
	cgroupLimits := in.Rootless == nil || in.Cgroups != ""
	var nproc uint64
	if in.Rootless != nil && pids > 0 {
		nproc = uint64(pids)
	}
	opts := []SpecOpt{
		WithProcess(args, env, cwd),
		WithTerminal(o.TTY),
		WithHostname(hostname),
		WithUser(uid, gid, extra),
		WithCapabilities(granted),
		WithNoNewPrivileges(so.NoNewPrivileges),
		WithReadonlyRootfs(o.ReadOnly),
		WithNamespaces(namespaces...),
		WithStandardMounts(in.Rootless == nil || !in.Rootless.Single),
		WithTmpfs("/tmp", DefaultTmpSize),
		WithMaskedPaths(),
		WithDefaultDevices(),
		WithoutHooks(),
		WithRlimits(1024, nproc),
		WithSeccomp(sc),
		WithCgroupsPath(in.Cgroups),
	}
	if cgroupLimits {
		opts = append(opts, WithPidsLimit(pids), WithMemoryLimit(mem), WithCPUs(o.CPUs))
	}
	switch {
	case in.Rootless != nil:
		opts = append(opts, WithUserNamespaceMappings(in.Rootless.UIDMap, in.Rootless.GIDMap), WithRootPath(in.Rootfs))
	case o.Userns != "host":
		opts = append(opts, WithUserNamespace(in.IDs))
	}
	if o.Network == "host" {
		opts = append(opts, WithoutNamespace(specs.NetworkNamespace))
	}
	if o.Privileged {
		opts = append(opts, withPrivileged())
	}
	for _, v := range vols {
		if v.Type == "tmpfs" {
			opts = append(opts, WithTmpfs(v.Destination, v.Size, v.Options...))
		} else {
			opts = append(opts, WithBind(v.Resolved, v.Destination, v.ReadOnly))
		}
	}
	spec := NewSpec()
	if err := Compose(opts...)(spec); err != nil {
		return nil, err
	}
	if err := Validate(spec); err != nil {
		return nil, err
	}
	if in.Rootless != nil {
		if err := checkMountIDsMapped(spec); err != nil {
			return nil, err
		}
	}

	req := policy.Request{
		Source:          "run",
		Name:            o.Name,
		Privileged:      o.Privileged,
		CapAdd:          nonNil(o.CapAdd),
		CapDrop:         nonNil(o.CapDrop),
		Seccomp:         so.Seccomp,
		NoNewPrivileges: so.NoNewPrivileges,
		AppArmor:        so.AppArmor,
		Label:           so.Label,
		Landlock:        so.Landlock,
		ReadOnly:        o.ReadOnly,
		Network:         o.Network,
		Userns:          "private",
		User:            userSpec,
		Memory:          mem,
		CPUs:            o.CPUs,
		PidsLimit:       pids,
		Args:            args,
		Volumes:         []policy.Volume{},
	}
	if o.Userns == "host" {
		req.Userns = "host"
	}
	if o.Privileged {
		req.Seccomp = "unconfined"
	}
	for _, v := range vols {
		req.Volumes = append(req.Volumes, v.Volume)
	}
	return &Plan{Spec: spec, Request: req, Volumes: vols, Notes: notes}, nil
}

// withPrivileged undoes the hardening Docker's --privileged undoes: no masked
// paths, writable /sys and cgroups, every device allowed. It is only ever an
// explicit request, and the default policy denies it.
func withPrivileged() SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(s.Mounts[i].Options, func(o string) bool { return o == "ro" })
			}
		}
		return nil
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// commandLine applies Docker's rules: arguments after the image replace Cmd,
// Entrypoint stays.
func commandLine(entrypoint, cmd, override []string) []string {
	if len(override) > 0 {
		cmd = override
	}
	return append(slices.Clone(entrypoint), cmd...)
}

func mergeEnv(image, extra []string, tty bool) []string {
	env := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// -e NAME passes the caller's value, as Docker does.
			v, ok = os.LookupEnv(k)
			if !ok {
				return
			}
		}
		if _, seen := env[k]; !seen {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	for _, kv := range image {
		set(kv)
	}
	if tty {
		set("TERM=xterm")
	}
	for _, kv := range extra {
		set(kv)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// resolveUser resolves a Docker USER spec (name, uid, name:group, uid:gid)
// against the image's own /etc/passwd and /etc/group, read without following
// symlinks out of the rootfs. An empty spec, or one that resolves to root
// without asking for it, falls back to a non-root identity.
func resolveUser(rootfs, spec string) (uint32, uint32, []uint32, error) {
	if spec == "" {
		return NonRootUID, NonRootUID, nil, nil
	}
	passwd := openInRoot(rootfs, "/etc/passwd")
	group := openInRoot(rootfs, "/etc/group")
	defer closeIf(passwd)
	defer closeIf(group)
	eu, err := user.GetExecUser(spec, &user.ExecUser{Uid: NonRootUID, Gid: NonRootUID}, readerOrNil(passwd), readerOrNil(group))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("user %q: %w", spec, err)
	}
	if eu.Uid < 0 || eu.Gid < 0 || eu.Uid >= usernsBlockSize || eu.Gid >= usernsBlockSize {
		return 0, 0, nil, fmt.Errorf("user %q: uid/gid %d:%d is outside the container's id range 0-%d", spec, eu.Uid, eu.Gid, usernsBlockSize-1)
	}
	var extra []uint32
	for _, g := range eu.Sgids {
		if g != eu.Gid && g >= 0 && g < usernsBlockSize {
			extra = append(extra, uint32(g))
		}
	}
	return uint32(eu.Uid), uint32(eu.Gid), extra, nil
}

func openInRoot(root, p string) *os.File {
	if root == "" {
		return nil
	}
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		return nil
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil
	}
	return f
}

func closeIf(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// readerOrNil keeps a nil *os.File from becoming a non-nil io.Reader.
func readerOrNil(f *os.File) io.Reader {
	if f == nil {
		return nil
	}
	return f
}

// NotFoundError is a command that does not exist in the image.
type NotFoundError struct{ Command string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("command %q not found in the image: check the image's PATH or give the full path", e.Command)
}

// findCommand checks that the command exists in the image, resolving it
// inside the rootfs the way execvp would, so that a typo is exit 127 before
// anything is created.
func findCommand(rootfs, cmd string, env []string) error {
	if rootfs == "" {
		return nil
	}
	exists := func(p string) bool {
		full, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return false
		}
		st, err := os.Stat(full)
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if strings.Contains(cmd, "/") {
		if exists(cmd) {
			return nil
		}
		return &Error{Code: ExitNotFound, Err: &NotFoundError{Command: cmd}}
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir != "" && exists(path.Join(dir, cmd)) {
			return nil
		}
	}
	return &Error{Code: ExitNotFound, Err: &NotFoundError{Command: cmd}}
}

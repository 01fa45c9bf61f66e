package profiles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
)

// The LSM names secrun can confine a container with, as the kernel spells
// them in /sys/kernel/security/lsm and as policies see them in host.lsm.
const (
	LSMAppArmor = "apparmor"
	LSMLandlock = "landlock"
	LSMSELinux  = "selinux"
)

const (
	defaultSecurityFS = "/sys/kernel/security"
	defaultSysModule  = "/sys/module"
	defaultProcAttr   = "/proc/self/attr"
)

// HostLSM is what secrun found true of the host's Linux security modules.
// Each confining module is reported active only when it will actually be
// enforced on a container: AppArmor by runc's own test, SELinux by
// go-selinux's (which runc uses), Landlock by asking the kernel for its ABI.
type HostLSM struct {
	// Modules is the kernel's list of active LSMs in order, from
	// /sys/kernel/security/lsm; nil when securityfs is not mounted.
	Modules []string
	// AppArmor is true when runc will apply AppArmor profiles.
	AppArmor bool
	// AppArmorProfiles are the names of the loaded AppArmor profiles; nil
	// when they could not be listed.
	AppArmorProfiles []string
	// SELinux is true when SELinux is enabled (enforcing or permissive).
	SELinux bool
	// Landlock is true when the kernel accepts Landlock rulesets;
	// LandlockABI is its ABI version (0 without Landlock).
	Landlock    bool
	LandlockABI int
	// ProcessLabel is secrun's own LSM label (/proc/self/attr/current),
	// empty where no module provides one.
	ProcessLabel string
	// Notes says what could not be determined, or why a module present in
	// the kernel is not reported active.
	Notes []string
}

// Active returns the confining LSMs in force, sorted: the host.lsm list of
// the policy input. It is never nil, so the policy sees [] rather than null.
func (h HostLSM) Active() []string {
	out := []string{}
	if h.AppArmor {
		out = append(out, LSMAppArmor)
	}
	if h.Landlock {
		out = append(out, LSMLandlock)
	}
	if h.SELinux {
		out = append(out, LSMSELinux)
	}
	return out
}

// LSMSources are where DetectLSMFrom looks. Tests point them at fixtures.
type LSMSources struct {
	// SecurityFS is securityfs's mount point (/sys/kernel/security).
	SecurityFS string
	// SysModule is /sys/module.
	SysModule string
	// ProcAttr is this process's LSM attribute directory (/proc/self/attr).
	ProcAttr string
	// SELinuxEnabled reports SELinux state (go-selinux's GetEnabled).
	SELinuxEnabled func() bool
	// LandlockABI asks the kernel for its Landlock ABI version.
	LandlockABI func() (int, error)
}

// DefaultLSMSources returns the real host's sources.
func DefaultLSMSources() LSMSources {
	return LSMSources{
		SecurityFS:     defaultSecurityFS,
		SysModule:      defaultSysModule,
		ProcAttr:       defaultProcAttr,
		SELinuxEnabled: selinux.GetEnabled,
		LandlockABI:    landlockABI,
	}
}

// DetectLSM reports the host's active LSMs.
func DetectLSM() HostLSM {
	return DetectLSMFrom(DefaultLSMSources())
}

// DetectLSMFrom reports the LSMs active according to src.
func DetectLSMFrom(src LSMSources) HostLSM {
	var h HostLSM
	note := func(format string, args ...any) { h.Notes = append(h.Notes, fmt.Sprintf(format, args...)) }

	lsmFile := filepath.Join(src.SecurityFS, "lsm")
	if buf, err := os.ReadFile(lsmFile); err == nil {
		for _, m := range strings.Split(strings.TrimSpace(string(buf)), ",") {
			if m = strings.TrimSpace(m); m != "" {
				h.Modules = append(h.Modules, m)
			}
		}
	} else {
		note("cannot read %s (%v): securityfs is not mounted; mount it with `mount -t securityfs securityfs %s`", lsmFile, err, src.SecurityFS)
	}

	h.AppArmor = appArmorEnabledAt(src)
	if h.AppArmor {
		profiles, err := readAppArmorProfiles(src.SecurityFS)
		if err != nil {
			note("cannot list loaded AppArmor profiles: %v", err)
		} else {
			h.AppArmorProfiles = make([]string, 0, len(profiles))
			for name := range profiles {
				h.AppArmorProfiles = append(h.AppArmorProfiles, name)
			}
			slices.Sort(h.AppArmorProfiles)
		}
	} else if slices.Contains(h.Modules, LSMAppArmor) || moduleParamYes(src, "apparmor") {
		note("AppArmor is in the kernel but runc would not apply profiles: %s/apparmor is missing or %s/apparmor/parameters/enabled is not Y", src.SecurityFS, src.SysModule)
	}

	if src.SELinuxEnabled != nil {
		h.SELinux = src.SELinuxEnabled()
	}
	if !h.SELinux && slices.Contains(h.Modules, LSMSELinux) {
		note("SELinux is in the kernel's LSM list but disabled (selinuxfs not mounted or no policy loaded)")
	}

	if src.LandlockABI != nil {
		abi, err := src.LandlockABI()
		switch {
		case err != nil:
			note("Landlock unavailable: %v", err)
		case abi < 1:
			note("Landlock unavailable: kernel reports ABI version %d", abi)
		default:
			h.Landlock, h.LandlockABI = true, abi
		}
	}
	if !h.Landlock && slices.Contains(h.Modules, LSMLandlock) {
		note("Landlock is in the kernel's LSM list but rulesets cannot be created (seccomp filter on secrun?)")
	}

	h.ProcessLabel = readProcessLabel(src.ProcAttr)
	return h
}

func appArmorEnabledAt(src LSMSources) bool {
	if _, err := os.Stat(filepath.Join(src.SecurityFS, "apparmor")); err != nil {
		return false
	}
	return moduleParamYes(src, "apparmor")
}

func moduleParamYes(src LSMSources, module string) bool {
	buf, err := os.ReadFile(filepath.Join(src.SysModule, module, "parameters", "enabled"))
	return err == nil && len(buf) > 0 && buf[0] == 'Y'
}

// readAppArmorProfiles lists loaded profiles from securityfs: lines of
// "NAME (MODE)". It returns name -> mode.
func readAppArmorProfiles(securityFS string) (map[string]string, error) {
	buf, err := os.ReadFile(filepath.Join(securityFS, "apparmor", "profiles"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndex(line, " (")
		if i <= 0 || !strings.HasSuffix(line, ")") {
			continue
		}
		out[line[:i]] = line[i+2 : len(line)-1]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// readProcessLabel returns this process's LSM label: AppArmor's own
// attribute first (set when LSMs are stacked), then the shared one. Reading
// fails with EINVAL where no module provides a label; that is "".
func readProcessLabel(procAttr string) string {
	for _, p := range []string{filepath.Join(procAttr, "apparmor", "current"), filepath.Join(procAttr, "current")} {
		buf, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if s := strings.TrimRight(string(buf), "\x00\n"); s != "" {
			return s
		}
	}
	return ""
}

// LSMRequest is what the caller asked for, already parsed.
type LSMRequest struct {
	// ContainerID names the generated AppArmor profile
	// (AppArmorProfilePrefix + ContainerID).
	ContainerID string
	// AppArmor is the --security-opt apparmor= value: "" for secrun's
	// generated profile, "unconfined", or the name of a loaded profile.
	AppArmor string
	// LoadAppArmor loads a generated profile; nil means LoadAppArmor.
	LoadAppArmor func(profileText string) error
	// CannotLoad says the caller cannot load profiles into the kernel
	// (rootless secrun: that needs CAP_MAC_ADMIN on the host). Without an
	// explicit apparmor= request the container then gets no generated
	// AppArmor profile, and ApplyLSM warns that it does not.
	CannotLoad bool
	// Label are the --security-opt label= values as given, and SELinux the
	// labels AllocateSELinux returned for them.
	Label   []string
	SELinux SELinuxLabels
	// Landlock are the parsed --security-opt landlock= rules, nil for none;
	// InitBinary is the host path of the static secrun-init binary that
	// applies them (see FindInitBinary).
	Landlock   *LandlockRules
	InitBinary string
}

// ApplyLSM puts the requested LSM confinement into spec, only as far as host
// enforces it, so runc is never handed a label it would reject. An explicit
// request the host cannot honour (a named AppArmor profile, an SELinux label,
// Landlock rules) is an error; secrun's own default that the host cannot
// apply is a warning. Call it last, on the otherwise final spec: the
// generated AppArmor profile is rendered from the spec's capabilities and
// mounts, and with Landlock the process arguments are wrapped.
//
// On an AppArmor host without an explicit apparmor= request, the generated
// profile is loaded into the kernel (req.LoadAppArmor); the caller removes it
// with UnloadAppArmor when the container is removed.
func ApplyLSM(spec *specs.Spec, host HostLSM, req LSMRequest) (warnings []string, err error) {
	if spec == nil || spec.Process == nil {
		return nil, errors.New("apply LSM confinement: the spec has no process")
	}
	selOpts, err := ParseSELinuxOptions(req.Label)
	if err != nil {
		return nil, err
	}
	// Landlock first: its init mount is part of what the AppArmor profile
	// is rendered from.
	if req.Landlock != nil {
		if err := applyLandlock(spec, host, req); err != nil {
			return nil, err
		}
	}
	w, err := applyAppArmor(spec, host, req)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, w...)
	if err := applySELinux(spec, host, req, selOpts); err != nil {
		return nil, err
	}
	if !host.AppArmor && !host.SELinux {
		by := "namespaces, capabilities and seccomp"
		if req.Landlock != nil {
			by = "namespaces, capabilities, seccomp and Landlock"
		}
		warnings = append(warnings, "no mandatory access control: neither AppArmor nor SELinux is enabled on this host; the container is confined by "+by+" only")
	}
	return warnings, nil
}

// AppArmorNotLoadedWarning is ApplyLSM's warning when CannotLoad kept
// secrun's generated AppArmor profile from the container.
const AppArmorNotLoadedWarning = "no AppArmor profile: rootless secrun cannot load its generated profile into the kernel (that needs root); the container is confined by its user namespace, capabilities and seccomp, or name a loaded profile with --security-opt apparmor=NAME"

func applyAppArmor(spec *specs.Spec, host HostLSM, req LSMRequest) ([]string, error) {
	switch req.AppArmor {
	case "unconfined":
		if host.AppArmor {
			spec.Process.ApparmorProfile = "unconfined"
		} else {
			spec.Process.ApparmorProfile = ""
		}
		return nil, nil
	case "":
		if !host.AppArmor {
			spec.Process.ApparmorProfile = ""
			return nil, nil
		}
		if req.CannotLoad {
			spec.Process.ApparmorProfile = ""
			return []string{AppArmorNotLoadedWarning}, nil
		}
		name := AppArmorProfilePrefix + req.ContainerID
		if err := ValidateAppArmorName(name); err != nil {
			return nil, fmt.Errorf("container id %q cannot name an AppArmor profile: %w", req.ContainerID, err)
		}
		text, err := RenderAppArmor(name, spec)
		if err != nil {
			return nil, err
		}
		load := req.LoadAppArmor
		if load == nil {
			load = LoadAppArmor
		}
		if err := load(text); err != nil {
			return nil, fmt.Errorf("apparmor profile %s: %w", name, err)
		}
		spec.Process.ApparmorProfile = name
		return nil, nil
	default:
		name := req.AppArmor
		if err := ValidateAppArmorName(name); err != nil {
			return nil, err
		}
		if !host.AppArmor {
			return nil, fmt.Errorf("apparmor profile %s requested but AppArmor is not enabled on this host; drop --security-opt apparmor=%s or run on a host with AppArmor", name, name)
		}
		if host.AppArmorProfiles != nil && !slices.Contains(host.AppArmorProfiles, name) {
			return nil, fmt.Errorf("apparmor profile %s requested but it is not loaded; load it with `apparmor_parser -r FILE` or name a loaded profile", name)
		}
		spec.Process.ApparmorProfile = name
		return nil, nil
	}
}

func applySELinux(spec *specs.Spec, host HostLSM, req LSMRequest, opts SELinuxOptions) error {
	if !host.SELinux {
		if opts.Explicit() {
			return fmt.Errorf("SELinux label %s requested but SELinux is not enabled on this host; drop --security-opt label=... or run on a host with SELinux", strings.Join(req.Label, ","))
		}
		spec.Process.SelinuxLabel = ""
		if spec.Linux != nil {
			spec.Linux.MountLabel = ""
		}
		return nil
	}
	if req.SELinux.Mount == "" || (!opts.Disable && req.SELinux.Process == "") {
		return errors.New("SELinux is enabled but no labels were allocated for the container: call AllocateSELinux with the label options first")
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Process.SelinuxLabel = req.SELinux.Process
	spec.Linux.MountLabel = req.SELinux.Mount
	return nil
}

func applyLandlock(spec *specs.Spec, host HostLSM, req LSMRequest) error {
	if !host.Landlock {
		return fmt.Errorf("landlock rules %s requested but Landlock is not enabled on this host; drop --security-opt landlock=... or run on a kernel with Landlock (its lsm= boot list must include landlock)", req.Landlock)
	}
	if len(req.Landlock.Rules) == 0 {
		return errors.New("landlock requested with no rules: give landlock=default or landlock=ro=PATH / rw=PATH")
	}
	if req.InitBinary == "" || !filepath.IsAbs(req.InitBinary) {
		return fmt.Errorf("landlock needs the secrun-init binary, got path %q: install secrun-init next to secrun or set SECRUN_INIT", req.InitBinary)
	}
	if !spec.Process.NoNewPrivileges {
		return errors.New("landlock needs no-new-privileges (a Landlock domain cannot be entered without it): drop --security-opt no-new-privileges=false")
	}
	if len(spec.Process.Args) == 0 {
		return errors.New("landlock: the spec has no command to run under secrun-init")
	}
	if spec.Process.Args[0] == LandlockInitPath {
		return errors.New("landlock: the spec's command already runs under secrun-init")
	}
	for _, m := range spec.Mounts {
		if m.Destination == LandlockInitPath || m.Destination == filepath.Dir(LandlockInitPath) {
			return fmt.Errorf("landlock: the spec already mounts %s, where secrun-init goes", m.Destination)
		}
	}
	if err := seccompAllowsLandlock(spec); err != nil {
		return err
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: LandlockInitPath,
		Type:        "bind",
		Source:      req.InitBinary,
		Options:     []string{"bind", "ro", "nosuid", "nodev"},
	})
	spec.Process.Args = req.Landlock.WrapArgs(spec.Process.Args)
	return nil
}

// landlockSyscalls are the system calls secrun-init makes to confine itself.
var landlockSyscalls = []string{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}

// seccompAllowsLandlock fails when the spec's seccomp filter would stop
// secrun-init from applying Landlock. secrun-init would fail closed anyway;
// this says why before the container is created.
func seccompAllowsLandlock(spec *specs.Spec) error {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil
	}
	sc := spec.Linux.Seccomp
	allowed := func(a specs.LinuxSeccompAction) bool {
		return a == specs.ActAllow || a == specs.ActLog || a == specs.ActNotify
	}
	for _, name := range landlockSyscalls {
		action, named := sc.DefaultAction, false
		for _, rule := range sc.Syscalls {
			if !slices.Contains(rule.Names, name) {
				continue
			}
			if !allowed(rule.Action) && len(rule.Args) == 0 {
				action, named = rule.Action, true
				break
			}
			if allowed(rule.Action) {
				action, named = rule.Action, true
			}
		}
		if !allowed(action) {
			how := "its default action"
			if named {
				how = "a rule"
			}
			return fmt.Errorf("landlock: the seccomp profile blocks %s (%s is %s), so secrun-init cannot apply Landlock; allow %s in the profile",
				name, how, action, strings.Join(landlockSyscalls, ", "))
		}
	}
	return nil
}

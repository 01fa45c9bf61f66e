package profiles_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/profiles"
)

// lsmFakeHost writes a fake /sys/kernel/security, /sys/module and
// /proc/self/attr under a temp dir. files maps paths relative to the temp
// dir to contents; a path ending in "/" is a directory.
func lsmFakeHost(t *testing.T, files map[string]string) profiles.LSMSources {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return profiles.LSMSources{
		SecurityFS: filepath.Join(root, "security"),
		SysModule:  filepath.Join(root, "module"),
		ProcAttr:   filepath.Join(root, "attr"),
	}
}

func TestDetectLSMFrom(t *testing.T) {
	noLandlock := func() (int, error) { return 0, errors.New("landlock_create_ruleset: EOPNOTSUPP") }
	landlock6 := func() (int, error) { return 6, nil }
	for _, tc := range []struct {
		name         string
		files        map[string]string
		selinux      bool
		landlock     func() (int, error)
		wantActive   []string
		wantModules  []string
		wantProfiles []string
		wantLabel    string
		wantNote     string
	}{
		{
			name: "ubuntu with apparmor and landlock",
			files: map[string]string{
				"security/lsm":                       "lockdown,capability,landlock,yama,apparmor",
				"security/apparmor/profiles":         "docker-default (enforce)\nsecrun-web (enforce)\n/usr/bin/man (enforce)\nlsb_release (complain)\n",
				"module/apparmor/parameters/enabled": "Y\n",
				"attr/apparmor/current":              "unconfined\n",
				"attr/current":                       "unconfined\n",
			},
			landlock:     landlock6,
			wantActive:   []string{"apparmor", "landlock"},
			wantModules:  []string{"lockdown", "capability", "landlock", "yama", "apparmor"},
			wantProfiles: []string{"/usr/bin/man", "docker-default", "lsb_release", "secrun-web"},
			wantLabel:    "unconfined",
		},
		{
			name: "apparmor module on but securityfs not mounted",
			files: map[string]string{
				"module/apparmor/parameters/enabled": "Y\n",
			},
			landlock:   noLandlock,
			wantActive: []string{},
			wantNote:   "runc would not apply profiles",
		},
		{
			name: "apparmor disabled at boot",
			files: map[string]string{
				"security/lsm":                       "capability,selinux",
				"security/apparmor/":                 "",
				"module/apparmor/parameters/enabled": "N\n",
				"attr/current":                       "system_u:system_r:unconfined_t:s0\x00",
			},
			selinux:     true,
			landlock:    noLandlock,
			wantActive:  []string{"selinux"},
			wantModules: []string{"capability", "selinux"},
			wantLabel:   "system_u:system_r:unconfined_t:s0",
		},
		{
			name:        "selinux listed but disabled",
			files:       map[string]string{"security/lsm": "capability,selinux,landlock"},
			landlock:    noLandlock,
			wantActive:  []string{},
			wantModules: []string{"capability", "selinux", "landlock"},
			wantNote:    "Landlock is in the kernel's LSM list but rulesets cannot be created",
		},
		{
			name:       "no securityfs, landlock by syscall",
			files:      map[string]string{},
			landlock:   landlock6,
			wantActive: []string{"landlock"},
			wantNote:   "securityfs is not mounted",
		},
		{
			name:       "landlock ABI 0",
			files:      map[string]string{},
			landlock:   func() (int, error) { return 0, nil },
			wantActive: []string{},
			wantNote:   "ABI version 0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := lsmFakeHost(t, tc.files)
			src.SELinuxEnabled = func() bool { return tc.selinux }
			src.LandlockABI = tc.landlock
			h := profiles.DetectLSMFrom(src)
			if got := h.Active(); !slices.Equal(got, tc.wantActive) || got == nil {
				t.Errorf("Active() = %#v, want %#v", got, tc.wantActive)
			}
			if !slices.Equal(h.Modules, tc.wantModules) {
				t.Errorf("Modules = %q, want %q", h.Modules, tc.wantModules)
			}
			if !slices.Equal(h.AppArmorProfiles, tc.wantProfiles) {
				t.Errorf("AppArmorProfiles = %q, want %q", h.AppArmorProfiles, tc.wantProfiles)
			}
			if h.ProcessLabel != tc.wantLabel {
				t.Errorf("ProcessLabel = %q, want %q", h.ProcessLabel, tc.wantLabel)
			}
			if h.Landlock && h.LandlockABI != 6 {
				t.Errorf("LandlockABI = %d", h.LandlockABI)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(h.Notes, "\n"), tc.wantNote) {
				t.Errorf("Notes %q lack %q", h.Notes, tc.wantNote)
			}
		})
	}
}

// TestDetectLSMRealHost checks DetectLSM against independent evidence on
// the machine the test runs on.
func TestDetectLSMRealHost(t *testing.T) {
	h := profiles.DetectLSM()
	t.Logf("host LSMs: %+v", h)
	if h.AppArmor != profiles.AppArmorEnabled() {
		t.Errorf("AppArmor = %v, AppArmorEnabled() = %v", h.AppArmor, profiles.AppArmorEnabled())
	}
	if buf, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil {
		listed := strings.Split(strings.TrimSpace(string(buf)), ",")
		if !slices.Equal(h.Modules, listed) {
			t.Errorf("Modules = %q, /sys/kernel/security/lsm = %q", h.Modules, listed)
		}
		if slices.Contains(listed, "landlock") != h.Landlock {
			t.Errorf("landlock listed = %v, detected = %v", slices.Contains(listed, "landlock"), h.Landlock)
		}
	}
	if h.Landlock && h.LandlockABI < 1 {
		t.Errorf("Landlock active with ABI %d", h.LandlockABI)
	}
	for _, m := range h.Active() {
		if m != profiles.LSMAppArmor && m != profiles.LSMSELinux && m != profiles.LSMLandlock {
			t.Errorf("Active() has %q", m)
		}
	}
}

func lsmSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{
			Args:            []string{"/bin/app", "--serve"},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_NET_BIND_SERVICE"}},
		},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:  &specs.Linux{MaskedPaths: []string{"/proc/kcore"}},
	}
}

func TestApplyLSM(t *testing.T) {
	none := profiles.HostLSM{}
	aaHost := profiles.HostLSM{AppArmor: true, AppArmorProfiles: []string{"docker-default", "my-profile"}}
	seHost := profiles.HostLSM{SELinux: true}
	llHost := profiles.HostLSM{Landlock: true, LandlockABI: 7}
	labels := profiles.SELinuxLabels{
		Process: "system_u:system_r:container_t:s0:c1,c2",
		Mount:   "system_u:object_r:container_file_t:s0:c1,c2",
	}
	rules, err := profiles.ParseLandlock([]string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	loader := func(p string) error {
		if err := profiles.CheckAppArmor(p); err != nil {
			return err
		}
		loaded = append(loaded, p)
		return nil
	}

	for _, tc := range []struct {
		name     string
		host     profiles.HostLSM
		req      profiles.LSMRequest
		edit     func(*specs.Spec)
		wantErr  string
		wantWarn string
		check    func(*testing.T, *specs.Spec)
	}{
		{
			name: "no LSM host, defaults: nothing set, stale labels cleared",
			host: none,
			req:  profiles.LSMRequest{ContainerID: "c1"},
			edit: func(s *specs.Spec) {
				s.Process.ApparmorProfile = "docker-default"
				s.Process.SelinuxLabel = labels.Process
				s.Linux.MountLabel = labels.Mount
			},
			wantWarn: "no mandatory access control",
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "" || s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
					t.Errorf("labels left on a host that cannot enforce them: %q %q %q", s.Process.ApparmorProfile, s.Process.SelinuxLabel, s.Linux.MountLabel)
				}
			},
		},
		{
			name:    "named apparmor profile without AppArmor",
			host:    none,
			req:     profiles.LSMRequest{ContainerID: "c1", AppArmor: "my-profile"},
			wantErr: "apparmor profile my-profile requested but AppArmor is not enabled on this host; drop --security-opt apparmor=my-profile",
		},
		{
			name: "apparmor=unconfined without AppArmor",
			host: none,
			req:  profiles.LSMRequest{ContainerID: "c1", AppArmor: "unconfined"},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
			},
		},
		{
			name: "apparmor=unconfined with AppArmor",
			host: aaHost,
			req:  profiles.LSMRequest{ContainerID: "c1", AppArmor: "unconfined"},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "unconfined" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
			},
		},
		{
			name: "AppArmor host, default: generated profile loaded and set",
			host: aaHost,
			req:  profiles.LSMRequest{ContainerID: "c1", LoadAppArmor: loader},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "secrun-c1" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
				if len(loaded) == 0 || !strings.Contains(loaded[len(loaded)-1], "profile secrun-c1 ") {
					t.Errorf("generated profile not loaded")
				}
			},
		},
		{
			name: "AppArmor host, rootless: no profile, and a warning saying so",
			host: aaHost,
			req: profiles.LSMRequest{ContainerID: "c1", CannotLoad: true, LoadAppArmor: func(string) error {
				return errors.New("loaded although the caller cannot load")
			}},
			edit:     func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" },
			wantWarn: "rootless secrun cannot load its generated profile",
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
			},
		},
		{
			name: "AppArmor host, rootless, named loaded profile",
			host: aaHost,
			req:  profiles.LSMRequest{ContainerID: "c1", CannotLoad: true, AppArmor: "my-profile"},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "my-profile" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
			},
		},
		{
			name:    "AppArmor host, loading fails",
			host:    aaHost,
			req:     profiles.LSMRequest{ContainerID: "c1", LoadAppArmor: func(string) error { return errors.New("parser exploded") }},
			wantErr: "apparmor profile secrun-c1: parser exploded",
		},
		{
			name:    "bad container id for the profile name",
			host:    aaHost,
			req:     profiles.LSMRequest{ContainerID: "a b", LoadAppArmor: loader},
			wantErr: `container id "a b" cannot name an AppArmor profile`,
		},
		{
			name: "AppArmor host, named loaded profile",
			host: aaHost,
			req:  profiles.LSMRequest{ContainerID: "c1", AppArmor: "my-profile"},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "my-profile" {
					t.Errorf("ApparmorProfile = %q", s.Process.ApparmorProfile)
				}
			},
		},
		{
			name:    "AppArmor host, named profile not loaded",
			host:    aaHost,
			req:     profiles.LSMRequest{ContainerID: "c1", AppArmor: "nope"},
			wantErr: "apparmor profile nope requested but it is not loaded",
		},
		{
			name:    "AppArmor host, named profile with bad characters",
			host:    aaHost,
			req:     profiles.LSMRequest{ContainerID: "c1", AppArmor: "x,y"},
			wantErr: `apparmor profile name "x,y" is not allowed`,
		},
		{
			name: "SELinux host: labels set",
			host: seHost,
			req:  profiles.LSMRequest{ContainerID: "c1", SELinux: labels},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.SelinuxLabel != labels.Process || s.Linux.MountLabel != labels.Mount {
					t.Errorf("labels %q %q", s.Process.SelinuxLabel, s.Linux.MountLabel)
				}
			},
		},
		{
			name: "SELinux host, label=disable: mount label only",
			host: seHost,
			req:  profiles.LSMRequest{ContainerID: "c1", Label: []string{"disable"}, SELinux: profiles.SELinuxLabels{Mount: "system_u:object_r:container_file_t:s0:c1022,c1023"}},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.SelinuxLabel != "" || s.Linux.MountLabel == "" {
					t.Errorf("labels %q %q", s.Process.SelinuxLabel, s.Linux.MountLabel)
				}
			},
		},
		{
			name:    "SELinux host without allocated labels",
			host:    seHost,
			req:     profiles.LSMRequest{ContainerID: "c1"},
			wantErr: "call AllocateSELinux",
		},
		{
			name:    "explicit SELinux label without SELinux",
			host:    none,
			req:     profiles.LSMRequest{ContainerID: "c1", Label: []string{"type:spc_t"}, SELinux: labels},
			wantErr: "SELinux label type:spc_t requested but SELinux is not enabled on this host",
		},
		{
			name: "label=disable without SELinux is fine",
			host: none,
			req:  profiles.LSMRequest{ContainerID: "c1", Label: []string{"disable"}},
		},
		{
			name:    "bad label option",
			host:    seHost,
			req:     profiles.LSMRequest{ContainerID: "c1", Label: []string{"typo:x"}},
			wantErr: `bad label option "typo:x"`,
		},
		{
			name: "Landlock: init mounted and args wrapped",
			host: llHost,
			req:  profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/usr/libexec/secrun-init"},
			check: func(t *testing.T, s *specs.Spec) {
				want := append(rules.InitArgs(), "/bin/app", "--serve")
				if !slices.Equal(s.Process.Args, want) {
					t.Errorf("args = %q, want %q", s.Process.Args, want)
				}
				m := s.Mounts[len(s.Mounts)-1]
				if m.Destination != profiles.LandlockInitPath || m.Source != "/usr/libexec/secrun-init" || m.Type != "bind" ||
					!slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "nosuid") {
					t.Errorf("init mount = %+v", m)
				}
			},
		},
		{
			name: "Landlock and AppArmor: the profile sees the read-only init mount",
			host: profiles.HostLSM{AppArmor: true, Landlock: true, LandlockABI: 7},
			req:  profiles.LSMRequest{ContainerID: "c2", Landlock: rules, InitBinary: "/usr/libexec/secrun-init", LoadAppArmor: loader},
			check: func(t *testing.T, s *specs.Spec) {
				if !strings.Contains(loaded[len(loaded)-1], "deny /.secrun/init wkl,") {
					t.Errorf("profile does not protect the init binary")
				}
			},
		},
		{
			name:    "Landlock requested, host without Landlock",
			host:    none,
			req:     profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			wantErr: "requested but Landlock is not enabled on this host",
		},
		{
			name:    "Landlock without the init binary",
			host:    llHost,
			req:     profiles.LSMRequest{ContainerID: "c1", Landlock: rules},
			wantErr: "landlock needs the secrun-init binary",
		},
		{
			name:    "Landlock without no-new-privileges",
			host:    llHost,
			req:     profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			edit:    func(s *specs.Spec) { s.Process.NoNewPrivileges = false },
			wantErr: "landlock needs no-new-privileges",
		},
		{
			name:    "Landlock applied twice",
			host:    llHost,
			req:     profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			edit:    func(s *specs.Spec) { s.Process.Args = append([]string{profiles.LandlockInitPath}, s.Process.Args...) },
			wantErr: "already runs under secrun-init",
		},
		{
			name: "Landlock blocked by seccomp default",
			host: llHost,
			req:  profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			edit: func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: specs.ActAllow},
				}}
			},
			wantErr: "seccomp profile blocks landlock_create_ruleset (its default action is SCMP_ACT_ERRNO)",
		},
		{
			name: "Landlock blocked by a seccomp rule",
			host: llHost,
			req:  profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			edit: func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"landlock_restrict_self"}, Action: specs.ActErrno},
				}}
			},
			wantErr: "blocks landlock_restrict_self (a rule is SCMP_ACT_ERRNO)",
		},
		{
			name: "Landlock allowed by seccomp rules",
			host: llHost,
			req:  profiles.LSMRequest{ContainerID: "c1", Landlock: rules, InitBinary: "/x/secrun-init"},
			edit: func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}, Action: specs.ActAllow},
				}}
			},
		},
		{
			name:    "spec without process",
			host:    none,
			edit:    func(s *specs.Spec) { s.Process = nil },
			wantErr: "the spec has no process",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := lsmSpec()
			if tc.edit != nil {
				tc.edit(s)
			}
			warnings, err := profiles.ApplyLSM(s, tc.host, tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.wantWarn) {
				t.Errorf("warnings %q lack %q", warnings, tc.wantWarn)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

package profiles_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/seccomp"
)

// alwaysDenied are the syscalls the default profile promises to fail with
// EPERM whatever capabilities a container is granted.
var alwaysDenied = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"userfaultfd",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open",
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module",
	"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "pivot_root",
	"unshare", "setns",
	"open_by_handle_at",
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
}

// namespaceFlags are the clone flags that create namespaces.
var namespaceFlags = map[string]uint64{
	"CLONE_NEWNS": unixCloneNewNS, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
	"CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
	"CLONE_NEWNET": 0x40000000,
}

const (
	unixCloneNewNS = 0x00020000
	sigchld        = 17
	// what glibc's pthread_create passes to clone
	threadFlags = 0x3d0f00
)

// Docker's default capability set (moby oci/caps/defaults.go).
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func allCaps() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

var capSets = map[string][]string{"no caps": nil, "docker caps": dockerCaps, "all caps": allCaps()}

func compileDefault(t *testing.T, caps []string) *seccomp.Program {
	t.Helper()
	s, err := profiles.DefaultSeccomp().ToOCI(caps)
	if err != nil {
		t.Fatal(err)
	}
	p, err := seccomp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func check(t *testing.T, p *seccomp.Program, name string, args ...uint64) seccomp.Verdict {
	t.Helper()
	v, err := p.Check(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultSeccompEmbeddedIsValid(t *testing.T) {
	p := profiles.DefaultSeccomp()
	if _, err := seccomp.Parse(profiles.DefaultSeccompJSON()); err != nil {
		t.Fatal(err)
	}
	// Each call returns a fresh copy.
	p.Syscalls = nil
	if len(profiles.DefaultSeccomp().Syscalls) == 0 {
		t.Error("DefaultSeccomp returned shared state")
	}
	// The unchecked copy the start path uses is the same profile, and it
	// converts exactly as the validated one does, for any capability set.
	u, err := profiles.DefaultSeccompUnchecked()
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN"}, {"CAP_SYS_PTRACE", "CAP_NET_ADMIN"}} {
		want, err := profiles.DefaultSeccomp().ToOCI(caps)
		if err != nil {
			t.Fatal(err)
		}
		got, err := u.ToOCIValidated(caps)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("caps %v: the unchecked conversion differs from the validated one", caps)
		}
	}
}

func TestDefaultSeccompLogsDenials(t *testing.T) {
	p := profiles.DefaultSeccomp()
	if !slices.Contains(p.Flags, specs.LinuxSeccompFlagLog) {
		t.Errorf("flags %v lack SECCOMP_FILTER_FLAG_LOG", p.Flags)
	}
}

func TestDefaultSeccompUnknownSyscallsGetENOSYS(t *testing.T) {
	p := profiles.DefaultSeccomp()
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 38 {
		t.Fatalf("default action %s/%v, want SCMP_ACT_ERRNO with ENOSYS (38)", p.DefaultAction, p.DefaultErrnoRet)
	}
	prog := compileDefault(t, nil)
	// A syscall number no kernel has yet.
	v, err := prog.CheckNumber(1000)
	if err != nil {
		t.Fatal(err)
	}
	if v != (seccomp.Verdict{Action: specs.ActErrno, Errno: 38}) {
		t.Errorf("unknown syscall: %v, want ENOSYS", v)
	}
}

func TestDefaultSeccompAlwaysDenied(t *testing.T) {
	eperm := seccomp.Verdict{Action: specs.ActErrno, Errno: 1}
	enosys := seccomp.Verdict{Action: specs.ActErrno, Errno: 38}
	for setName, caps := range capSets {
		prog := compileDefault(t, caps)
		t.Run(setName, func(t *testing.T) {
			for _, name := range alwaysDenied {
				if v := check(t, prog, name); v != eperm {
					t.Errorf("%s: %v, want EPERM", name, v)
				}
			}
			if v := check(t, prog, "clone3"); v != enosys {
				t.Errorf("clone3: %v, want ENOSYS so libc falls back to clone", v)
			}
			for flag, bit := range namespaceFlags {
				if v := check(t, prog, "clone", bit|sigchld); v != eperm {
					t.Errorf("clone(%s): %v, want EPERM", flag, v)
				}
			}
			if v := check(t, prog, "clone", namespaceFlags["CLONE_NEWUSER"]|namespaceFlags["CLONE_NEWNET"]|sigchld); v != eperm {
				t.Errorf("clone(NEWUSER|NEWNET): %v, want EPERM", v)
			}
			for _, flags := range []uint64{sigchld, threadFlags} {
				if v := check(t, prog, "clone", flags); !v.Allowed() {
					t.Errorf("clone(%#x): %v, want allowed", flags, v)
				}
			}
			for _, pers := range []uint64{0, 8, 0x20000, 0x20008, 0xffffffff} {
				if v := check(t, prog, "personality", pers); !v.Allowed() {
					t.Errorf("personality(%#x): %v, want allowed", pers, v)
				}
			}
			// ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, ADDR_LIMIT_32BIT
			for _, pers := range []uint64{0x0040000, 0x0400000, 0x0100000, 0x0800000, 0x0040008} {
				if v := check(t, prog, "personality", pers); v.Allowed() {
					t.Errorf("personality(%#x) allowed", pers)
				}
			}
		})
	}
}

// probeArgs are argument vectors that exercise the argument-filtered rules
// of both profiles.
var probeArgs = [][]uint64{
	nil, {sigchld}, {threadFlags}, {unixCloneNewNS}, {0x10000000 | sigchld}, {0x7e020000},
	{0, 0x10000000}, {8}, {0x20000}, {0xffffffff}, {0x40000}, {1}, {2}, {16}, {38}, {39}, {40}, {41},
}

// The default is at least as strict as Docker's: for every syscall of the
// host, a few argument vectors and several capability sets, whatever
// secrun's default allows, Docker's allows too.
func TestDefaultSeccompAtLeastAsStrictAsDocker(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "seccomp", "docker-default.json"))
	if err != nil {
		t.Fatal(err)
	}
	docker, err := seccomp.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for setName, caps := range capSets {
		t.Run(setName, func(t *testing.T) {
			ours := compileDefault(t, caps)
			ds, err := docker.ToOCI(caps)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := seccomp.Compile(ds)
			if err != nil {
				t.Fatal(err)
			}
			for nr := 0; nr < 1024; nr++ {
				name, ok := seccomp.SyscallName(nr)
				if !ok {
					continue
				}
				for _, args := range probeArgs {
					o, err := ours.CheckNumber(nr, args...)
					if err != nil {
						t.Fatal(err)
					}
					d, err := theirs.CheckNumber(nr, args...)
					if err != nil {
						t.Fatal(err)
					}
					if o.Allowed() && !d.Allowed() {
						t.Errorf("%s%v: secrun allows, Docker %v", name, args, d)
					}
				}
			}
		})
	}
}

// Pin the capability-dependent rules: they follow the capability argument
// and nothing else.
func TestDefaultSeccompCapabilityRules(t *testing.T) {
	tests := []struct {
		call string
		cap  string
	}{
		{"chroot", "CAP_SYS_CHROOT"},
		{"reboot", "CAP_SYS_BOOT"},
		{"settimeofday", "CAP_SYS_TIME"},
		{"sethostname", "CAP_SYS_ADMIN"},
		{"syslog", "CAP_SYSLOG"},
		{"kcmp", "CAP_SYS_PTRACE"},
		{"mbind", "CAP_SYS_NICE"},
	}
	none := compileDefault(t, nil)
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			if v := check(t, none, tc.call); v.Allowed() {
				t.Errorf("%s allowed without %s", tc.call, tc.cap)
			}
			with := compileDefault(t, []string{tc.cap})
			if v := check(t, with, tc.call); !v.Allowed() {
				t.Errorf("%s denied with %s: %v", tc.call, tc.cap, v)
			}
		})
	}
}

// Every rule that allows something loose carries a comment saying why.
func TestDefaultSeccompRulesAreCommented(t *testing.T) {
	for i, r := range profiles.DefaultSeccomp().Syscalls {
		if strings.TrimSpace(r.Comment) == "" {
			t.Errorf("syscalls[%d] %v has no comment", i, r.Names)
		}
	}
}

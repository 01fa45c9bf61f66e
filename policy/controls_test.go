package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

// controlCase is one control of one built-in policy checked over a realistic
// input: the allow mutation leaves the control quiet, the deny mutation makes
// it fire on field.
type controlCase struct {
	control string
	allow   []mutation
	deny    []mutation
	field   string
}

var restrictedCases = []controlCase{
	{control: "privileged", deny: []mutation{func(in *policy.Input) { in.Request.Privileged = true }}, field: "request.privileged=true"},
	{
		control: "hooks",
		allow:   []mutation{addHook("prestart", dockerSetkeyHook)},
		deny:    []mutation{addHook("createRuntime", specs.Hook{Path: "/proc/1/exe", Args: []string{"something-else"}})},
		field:   "spec.hooks.createRuntime[0].path=/proc/1/exe",
	},
	{control: "host-network", deny: []mutation{func(in *policy.Input) { in.Request.Network = "host" }, dropNS(specs.NetworkNamespace)}, field: "request.network=host"},
	{control: "host-pid", deny: []mutation{joinNS(specs.PIDNamespace, "/proc/1/ns/pid")}, field: "spec.linux.namespaces[0].path=/proc/1/ns/pid"},
	{control: "host-ipc", deny: []mutation{dropNS(specs.IPCNamespace)}, field: "spec.linux.namespaces (no ipc)"},
	{control: "host-uts", deny: []mutation{func(in *policy.Input) { in.Request.UTS = "host" }, dropNS(specs.UTSNamespace)}, field: "request.uts=host"},
	{control: "host-userns", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.UIDMappings[0].HostID = 0 }}, field: "spec.linux.uidMappings[0].hostID=0"},
	{control: "joined-namespace", deny: []mutation{joinNS(specs.NetworkNamespace, "/run/netns/shared")}, field: "spec.linux.namespaces[4].path=/run/netns/shared"},
	{
		control: "host-path",
		allow:   []mutation{volume("/srv/data", "/srv/data", "/data")},
		deny:    []mutation{volume("/home/alice/src", "/home/alice/src", "/src")},
		field:   "request.volumes[2].resolved=/home/alice/src",
	},
	{control: "sensitive-host-path", deny: []mutation{volume("/srv/link", "/etc", "/data")}, field: "request.volumes[2].resolved=/etc"},
	{control: "runtime-socket", deny: []mutation{volume("/srv/app.sock", "/var/run/docker.sock", "/app.sock")}, field: "request.volumes[2].resolved=/var/run/docker.sock"},
	{
		control: "capabilities",
		allow:   []mutation{caps("CAP_NET_BIND_SERVICE")},
		deny:    []mutation{addBounding("CAP_SYS_ADMIN")},
		field:   "spec.process.capabilities.bounding=CAP_SYS_ADMIN",
	},
	{control: "run-as-non-root", deny: []mutation{func(in *policy.Input) { in.Spec.Process.User.UID = 0 }}, field: "spec.process.user.uid=0"},
	{control: "no-new-privileges", deny: []mutation{func(in *policy.Input) { in.Spec.Process.NoNewPrivileges = false }}, field: "spec.process.noNewPrivileges=false"},
	{control: "seccomp", deny: []mutation{func(in *policy.Input) { in.Request.Seccomp = "unconfined"; in.Spec.Linux.Seccomp = nil }}, field: "request.seccomp=unconfined"},
	{control: "apparmor", deny: []mutation{func(in *policy.Input) { in.Spec.Process.ApparmorProfile = "unconfined" }}, field: "spec.process.apparmorProfile=unconfined"},
	{
		control: "selinux",
		allow:   []mutation{func(in *policy.Input) { in.Spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2" }},
		deny:    []mutation{func(in *policy.Input) { in.Spec.Process.SelinuxLabel = "system_u:system_r:spc_t:s0" }},
		field:   "spec.process.selinuxLabel=system_u:system_r:spc_t:s0",
	},
	{control: "proc-mount", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.MaskedPaths = nil }}, field: "spec.linux.maskedPaths"},
	{
		control: "sysctls",
		allow: []mutation{func(in *policy.Input) {
			in.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
		}},
		deny:  []mutation{func(in *policy.Input) { in.Spec.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/tmp/pwn"} }},
		field: "spec.linux.sysctl.kernel.core_pattern=|/tmp/pwn",
	},
	{control: "readonly-rootfs", deny: []mutation{func(in *policy.Input) { in.Spec.Root.Readonly = false }}, field: "spec.root.readonly=false"},
	{control: "memory-limit", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Resources.Memory = nil }}, field: "spec.linux.resources.memory.limit=unset"},
	{control: "pids-limit", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Resources.Pids.Limit = int64p(-1) }}, field: "spec.linux.resources.pids.limit=-1"},
	{control: "signed-image", deny: []mutation{func(in *policy.Input) { in.Signature = policy.SignatureInfo{Error: "no signatures found"} }}, field: "signature.verified=false"},
}

var baselineCases = []controlCase{
	{control: "privileged", deny: []mutation{privilegedSpec}, field: "spec.linux.resources.devices[0]=allow all"},
	// docker-default.json carries Docker's setkey hook as prestart[0].
	{control: "hooks", deny: []mutation{addHook("prestart", evilHook)}, field: "spec.hooks.prestart[1].path=/usr/bin/evil"},
	{control: "host-network", deny: []mutation{dropNS(specs.NetworkNamespace)}, field: "spec.linux.namespaces (no network)"},
	{control: "host-pid", deny: []mutation{dropNS(specs.PIDNamespace)}, field: "spec.linux.namespaces (no pid)"},
	{control: "host-ipc", deny: []mutation{joinNS(specs.IPCNamespace, "/proc/1/ns/ipc")}, field: "spec.linux.namespaces[4].path=/proc/1/ns/ipc"},
	{control: "host-uts", deny: []mutation{dropNS(specs.UTSNamespace)}, field: "spec.linux.namespaces (no uts)"},
	{
		control: "sensitive-host-path",
		allow:   []mutation{specBind("/home/alice/src", "/src")},
		deny:    []mutation{specBind("/etc", "/host/etc")},
		field:   "spec.mounts[10].source=/etc",
	},
	{control: "runtime-socket", deny: []mutation{specBind("/var/run/docker.sock", "/var/run/docker.sock")}, field: "spec.mounts[10].source=/var/run/docker.sock"},
	{control: "capabilities", deny: []mutation{addBounding("CAP_SYS_ADMIN")}, field: "spec.process.capabilities.bounding=CAP_SYS_ADMIN"},
	{control: "seccomp", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Seccomp = nil }}, field: "spec.linux.seccomp=null"},
	{control: "apparmor", deny: []mutation{func(in *policy.Input) { in.Spec.Process.ApparmorProfile = "unconfined" }}, field: "spec.process.apparmorProfile=unconfined"},
	{control: "selinux", deny: []mutation{func(in *policy.Input) { in.Request.Label = []string{"disable"} }}, field: "request.label=disable"},
	{control: "proc-mount", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.ReadonlyPaths = nil }}, field: "spec.linux.readonlyPaths"},
	{
		control: "sysctls",
		allow:   []mutation{func(in *policy.Input) { in.Spec.Linux.Sysctl["net.ipv4.tcp_syncookies"] = "1" }},
		deny:    []mutation{func(in *policy.Input) { in.Spec.Linux.Sysctl["kernel.sysrq"] = "1" }},
		field:   "spec.linux.sysctl.kernel.sysrq=1",
	},
}

var cisCases = []controlCase{
	{control: "apparmor", deny: []mutation{func(in *policy.Input) { in.Spec.Process.ApparmorProfile = "" }}, field: "spec.process.apparmorProfile=unset"},
	{
		control: "selinux",
		allow: []mutation{func(in *policy.Input) {
			in.Host.LSM = []string{"selinux"}
			in.Spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
		}},
		deny:  []mutation{func(in *policy.Input) { in.Host.LSM = []string{"selinux"} }},
		field: "spec.process.selinuxLabel=unset",
	},
	{control: "capabilities", allow: []mutation{caps("CAP_CHOWN", "CAP_SETUID")}, deny: []mutation{caps("CAP_NET_ADMIN")}, field: "spec.process.capabilities.bounding=CAP_NET_ADMIN"},
	{control: "privileged", deny: []mutation{func(in *policy.Input) { in.Request.Privileged = true }}, field: "request.privileged=true"},
	{control: "sensitive-host-path", deny: []mutation{volume("/srv/x", "/usr", "/usr")}, field: "request.volumes[2].resolved=/usr"},
	{control: "sshd", deny: []mutation{func(in *policy.Input) { in.Spec.Process.Args = []string{"/usr/sbin/sshd", "-D"} }}, field: "spec.process.args[0]=/usr/sbin/sshd"},
	{
		control: "privileged-ports",
		allow: []mutation{func(in *policy.Input) {
			in.Spec.Annotations["nerdctl/ports"] = `[{"HostPort":8443,"ContainerPort":443,"Protocol":"tcp"}]`
		}},
		deny: []mutation{func(in *policy.Input) {
			in.Spec.Annotations["nerdctl/ports"] = `[{"HostPort":443,"ContainerPort":8443,"Protocol":"tcp"}]`
		}},
		field: "spec.annotations.nerdctl/ports=443:8443",
	},
	{control: "host-network", deny: []mutation{func(in *policy.Input) { in.Request.Network = "host" }, dropNS(specs.NetworkNamespace)}, field: "request.network=host"},
	{control: "memory-limit", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Resources.Memory.Limit = int64p(0) }}, field: "spec.linux.resources.memory.limit=0"},
	{control: "cpu-limit", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Resources.CPU = nil }}, field: "spec.linux.resources.cpu=unset"},
	{control: "readonly-rootfs", deny: []mutation{func(in *policy.Input) { in.Spec.Root.Readonly = false }}, field: "spec.root.readonly=false"},
	{control: "host-pid", deny: []mutation{dropNS(specs.PIDNamespace)}, field: "spec.linux.namespaces (no pid)"},
	{control: "host-ipc", deny: []mutation{func(in *policy.Input) { in.Request.IPC = "host" }, dropNS(specs.IPCNamespace)}, field: "request.ipc=host"},
	{
		control: "host-devices",
		deny: []mutation{func(in *policy.Input) {
			in.Spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/kvm", Type: "c", Major: 10, Minor: 232}}
		}},
		field: "spec.linux.devices[0].path=/dev/kvm",
	},
	{
		control: "mount-propagation",
		deny:    []mutation{func(in *policy.Input) { in.Spec.Mounts[7].Options = append(in.Spec.Mounts[7].Options, "rshared") }},
		field:   "spec.mounts[7].options=rshared",
	},
	{control: "host-uts", deny: []mutation{dropNS(specs.UTSNamespace)}, field: "spec.linux.namespaces (no uts)"},
	{
		control: "seccomp",
		deny: []mutation{func(in *policy.Input) {
			in.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}},
		field: "spec.linux.seccomp.defaultAction=SCMP_ACT_ALLOW",
	},
	{
		control: "exec-root",
		allow:   []mutation{func(in *policy.Input) { in.Request.Source = "exec" }},
		deny:    []mutation{func(in *policy.Input) { in.Request.Source = "exec"; in.Request.User = "0:0" }},
		field:   "request.user=0:0",
	},
	{control: "no-new-privileges", deny: []mutation{func(in *policy.Input) { in.Spec.Process.NoNewPrivileges = false }}, field: "spec.process.noNewPrivileges=false"},
	{control: "pids-limit", deny: []mutation{func(in *policy.Input) { in.Spec.Linux.Resources.Pids = nil }}, field: "spec.linux.resources.pids.limit=unset"},
	{control: "host-userns", deny: []mutation{func(in *policy.Input) { in.Request.Userns = "host" }, dropNS(specs.UserNamespace)}, field: "request.userns=host"},
	{control: "runtime-socket", deny: []mutation{specBind("/run/containerd", "/run/containerd")}, field: "spec.mounts[9].source=/run/containerd"},
	{
		control: "hooks",
		allow:   []mutation{addHook("prestart", dockerSetkeyHook)},
		deny:    []mutation{addHook("poststop", evilHook)},
		field:   "spec.hooks.poststop[0].path=/usr/bin/evil",
	},
}

func TestBuiltinControls(t *testing.T) {
	suites := []struct {
		policy string
		base   string // the input the policy admits
		cases  []controlCase
	}{
		{"restricted", "hardened.json", restrictedCases},
		{"baseline", "docker-default.json", baselineCases},
		{"cis-docker", "hardened.json", cisCases},
	}
	for _, s := range suites {
		e := builtin(t, s.policy)
		t.Run(s.policy, func(t *testing.T) {
			// Every declared control has a case, and every case a control.
			var declared, covered []string
			for _, c := range e.Controls() {
				declared = append(declared, c.ID)
			}
			for _, c := range s.cases {
				covered = append(covered, c.control)
			}
			slices.Sort(covered)
			if !slices.Equal(declared, covered) {
				t.Errorf("controls %v, cases %v", declared, covered)
			}
			if d := eval(t, e, fixture(t, s.base)); !d.Allowed {
				t.Fatalf("%s denies its base input %s:%s", s.policy, s.base, dump(d))
			}
			for _, c := range s.cases {
				t.Run(c.control+"/allow", func(t *testing.T) {
					d := eval(t, e, apply(fixture(t, s.base), c.allow...))
					if vs := violationsOf(d, c.control); len(vs) > 0 {
						t.Fatalf("control fired:%s", dump(d))
					}
					if !d.Allowed || d.Err() != nil {
						t.Fatalf("denied:%s", dump(d))
					}
				})
				t.Run(c.control+"/deny", func(t *testing.T) {
					d := eval(t, e, apply(fixture(t, s.base), c.deny...))
					if d.Allowed || d.Err() == nil {
						t.Fatal("allowed")
					}
					vs := violationsOf(d, c.control)
					if len(vs) != 1 {
						t.Fatalf("want one %s violation, got %d:%s", c.control, len(vs), dump(d))
					}
					v := vs[0]
					if v.Field != c.field {
						t.Errorf("field %q, want %q", v.Field, c.field)
					}
					if v.Msg == "" || v.Fix == "" || !slices.Contains(policy.Severities, v.Severity) {
						t.Errorf("incomplete violation %+v", v)
					}
					if !strings.Contains(d.Err().Error(), policy.DeniedPrefix+v.String()) {
						t.Errorf("error text lacks the violation line:\n%v", d.Err())
					}
				})
			}
		})
	}
}

// Standing promises of the built-in library, over real-shaped inputs.
func TestBuiltinPromises(t *testing.T) {
	for _, name := range []string{"restricted", "baseline", "cis-docker"} {
		e := builtin(t, name)
		t.Run(name+"/never-admits-CAP_SYS_ADMIN", func(t *testing.T) {
			d := eval(t, e, apply(fixture(t, "hardened.json"), addBounding("CAP_SYS_ADMIN")))
			if d.Allowed || len(violationsOf(d, "capabilities")) == 0 {
				t.Fatalf("CAP_SYS_ADMIN admitted:%s", dump(d))
			}
		})
		t.Run(name+"/never-admits-docker-sock", func(t *testing.T) {
			for _, p := range []string{"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", "/run/crio/crio.sock", "/run/podman/podman.sock", "/run/user/1000/podman/podman.sock", "/var/run"} {
				d := eval(t, e, apply(fixture(t, "hardened.json"), volume("/srv/x", p, "/x")))
				if d.Allowed || len(violationsOf(d, "runtime-socket")) == 0 {
					t.Errorf("%s admitted:%s", p, dump(d))
				}
			}
		})
		t.Run(name+"/never-admits-privileged", func(t *testing.T) {
			in := apply(fixture(t, "docker-default.json"), privilegedSpec)
			d := eval(t, e, in)
			if d.Allowed || len(violationsOf(d, "privileged")) == 0 {
				t.Fatalf("docker --privileged bundle admitted:%s", dump(d))
			}
		})
		t.Run(name+"/empty-input-denied", func(t *testing.T) {
			d := eval(t, e, &policy.Input{})
			if d.Allowed {
				t.Fatal("empty input admitted")
			}
		})
	}
}

// A symlink on the host to a sensitive path is caught because the runner
// hands over the resolved path.
func TestSymlinkResolvedVolumes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		target, control string
	}{
		{"/etc", "sensitive-host-path"},
		{"/proc/self", "sensitive-host-path"},
		{"/run", "runtime-socket"},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			link := filepath.Join(dir, strings.ReplaceAll(c.target, "/", "_"))
			if err := os.Symlink(c.target, link); err != nil {
				t.Fatal(err)
			}
			resolved, err := filepath.EvalSymlinks(link)
			if err != nil {
				t.Skipf("%s does not resolve here: %v", c.target, err)
			}
			for _, name := range []string{"restricted", "baseline", "cis-docker"} {
				d := eval(t, builtin(t, name), apply(fixture(t, "hardened.json"), volume(link, resolved, "/data")))
				if d.Allowed || len(violationsOf(d, c.control)) == 0 {
					t.Errorf("%s: link %s -> %s admitted:%s", name, link, resolved, dump(d))
				}
			}
		})
	}
}

// What each policy says about real bundles from other engines.
func TestEngineBundles(t *testing.T) {
	cases := []struct {
		input, policy string
		want          []string // control ids, sorted; nil = allowed
	}{
		{"docker-default.json", "baseline", nil},
		{"docker-default.json", "cis-docker", []string{"cpu-limit", "host-userns", "memory-limit", "no-new-privileges", "pids-limit", "readonly-rootfs"}},
		{"docker-default.json", "restricted", []string{"capabilities", "host-path", "host-userns", "memory-limit", "no-new-privileges", "pids-limit", "readonly-rootfs", "run-as-non-root", "signed-image"}},
		{"runc-bundle.json", "baseline", []string{"seccomp"}},
		{"runc-bundle.json", "restricted", []string{"capabilities", "host-userns", "memory-limit", "pids-limit", "run-as-non-root", "seccomp", "signed-image"}},
		{"hardened.json", "restricted", nil},
	}
	for _, c := range cases {
		t.Run(c.input+"/"+c.policy, func(t *testing.T) {
			d := eval(t, builtin(t, c.policy), fixture(t, c.input))
			if got := ids(d); !slices.Equal(got, c.want) {
				t.Fatalf("violations %v, want %v:%s", got, c.want, dump(d))
			}
			if d.Allowed != (c.want == nil) {
				t.Fatalf("allowed=%v", d.Allowed)
			}
			// secrun-runc and audit build the request from the spec: the
			// decision must not depend on which builder made it.
			in := fixture(t, c.input)
			if in.Request.Source == "runtime" {
				in.Request = policy.RequestFromSpec(in.Spec, "runtime")
				rd := eval(t, builtin(t, c.policy), in)
				if got := ids(rd); !slices.Equal(got, c.want) {
					t.Fatalf("with RequestFromSpec: violations %v, want %v:%s", got, c.want, dump(rd))
				}
			}
		})
	}
}

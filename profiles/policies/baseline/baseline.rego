# METADATA
# title: baseline
# description: |
#   The Kubernetes Pod Security "baseline" profile translated to containers:
#   prevents known privilege escalations while accepting ordinary images
#   (root inside the container, writable root filesystem, unsigned images,
#   Docker's default capabilities). Meant for bundles handed to secrun-runc by
#   other engines, which often carry no image identity.
package secrun

import data.lib.secrun as lib

default allow := false

allow if count(deny) == 0

deny contains v if {
	some v in violations
	not lib.exempt(v)
}

exempted contains v if {
	some v in violations
	lib.exempt(v)
}

controls := {
	"privileged": {
		"severity": "critical",
		"description": "Privileged containers are not allowed.",
		"refs": ["PSS baseline: Privileged Containers"],
	},
	"hooks": {
		"severity": "critical",
		"description": "No OCI hook runs on the host unless it matches an allowed_hooks entry of the policy data (default: only dockerd's libnetwork-setkey prestart hook): hooks run as the runtime's user, outside every restriction of the container.",
		"refs": ["OCI runtime spec: POSIX-platform hooks"],
	},
	"host-network": {
		"severity": "high",
		"description": "The container has its own network namespace.",
		"refs": ["PSS baseline: Host Namespaces"],
	},
	"host-pid": {
		"severity": "high",
		"description": "The container has its own PID namespace.",
		"refs": ["PSS baseline: Host Namespaces"],
	},
	"host-ipc": {
		"severity": "high",
		"description": "The container has its own IPC namespace.",
		"refs": ["PSS baseline: Host Namespaces"],
	},
	"host-uts": {
		"severity": "medium",
		"description": "The container has its own UTS namespace.",
		"refs": ["PSS baseline: Host Namespaces"],
	},
	"sensitive-host-path": {
		"severity": "critical",
		"description": "No sensitive host path (/, /etc, /proc, /sys, /dev, /var/lib/docker, ...) is mounted, checked on symlink-resolved paths.",
		"refs": ["PSS baseline: HostPath Volumes"],
	},
	"runtime-socket": {
		"severity": "critical",
		"description": "No container runtime socket (Docker, containerd, CRI-O, podman, buildkit) is mounted.",
		"refs": ["PSS baseline: HostPath Volumes"],
	},
	"capabilities": {
		"severity": "high",
		"description": "No capability beyond Docker's default set is granted.",
		"refs": ["PSS baseline: Capabilities"],
	},
	"seccomp": {
		"severity": "high",
		"description": "Seccomp is not unconfined: the spec carries a filter that refuses something.",
		"refs": ["PSS baseline: Seccomp"],
	},
	"apparmor": {
		"severity": "medium",
		"description": "AppArmor confinement is not disabled.",
		"refs": ["PSS baseline: AppArmor"],
	},
	"selinux": {
		"severity": "medium",
		"description": "SELinux labelling is not disabled and uses a container type.",
		"refs": ["PSS baseline: SELinux"],
	},
	"proc-mount": {
		"severity": "high",
		"description": "Sensitive /proc and /sys interfaces are masked or read-only.",
		"refs": ["PSS baseline: /proc Mount Type"],
	},
	"sysctls": {
		"severity": "medium",
		"description": "Only safe, namespaced sysctls are set.",
		"refs": ["PSS baseline: Sysctls"],
	},
}

violation(id, f) := object.union(f, {"id": id, "severity": object.get(controls, [id, "severity"], "high")})

violations contains violation("privileged", f) if some f in lib.privileged

violations contains violation("hooks", f) if some f in lib.disallowed_hooks

violations contains violation("host-network", f) if some f in lib.host_network

violations contains violation("host-pid", f) if some f in lib.host_pid

violations contains violation("host-ipc", f) if some f in lib.host_ipc

violations contains violation("host-uts", f) if some f in lib.host_uts

violations contains violation("sensitive-host-path", f) if some f in lib.sensitive_mounts

violations contains violation("runtime-socket", f) if some f in lib.runtime_socket_mounts

violations contains violation("capabilities", f) if some f in lib.caps_outside(lib.docker_default_caps)

violations contains violation("seccomp", f) if some f in lib.seccomp_unconfined

violations contains violation("apparmor", f) if some f in lib.apparmor_unconfined

violations contains violation("selinux", f) if some f in lib.selinux_disabled

violations contains violation("selinux", f) if some f in lib.selinux_bad_type

violations contains violation("proc-mount", f) if some f in lib.proc_unmasked

violations contains violation("sysctls", f) if some f in lib.unsafe_sysctls

# METADATA
# title: restricted
# description: |
#   secrun's default policy: the Kubernetes Pod Security "restricted" profile
#   translated to containers, plus the resource limits and the signed image
#   a locked-down runner expects. Violations of exempted controls (data.exemptions)
#   are reported under `exempted` instead of `deny`.
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

# Control metadata for `secrun policy explain` and for each violation's
# severity. Every id a rule below emits is a key here.
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
	"host-userns": {
		"severity": "high",
		"description": "The container has its own user namespace, never mapping host uid or gid 0.",
		"refs": ["PSS restricted: Running as Non-root (user namespaces)"],
	},
	"joined-namespace": {
		"severity": "medium",
		"description": "The container does not join existing namespaces (which may be the host's or another container's).",
		"refs": ["PSS baseline: Host Namespaces"],
	},
	"host-path": {
		"severity": "medium",
		"description": "Bind mounts come only from the allowed host paths (data.allowed_host_paths).",
		"refs": ["PSS restricted: Volume Types"],
	},
	"sensitive-host-path": {
		"severity": "critical",
		"description": "No sensitive host path (/, /etc, /proc, /sys, /dev, /var/lib/docker, ...) is mounted, checked on symlink-resolved paths.",
		"refs": ["PSS baseline: HostPath Volumes", "CIS Docker 5.5"],
	},
	"runtime-socket": {
		"severity": "critical",
		"description": "No container runtime socket (Docker, containerd, CRI-O, podman, buildkit) is mounted.",
		"refs": ["CIS Docker 5.31"],
	},
	"capabilities": {
		"severity": "high",
		"description": "Every capability is dropped except NET_BIND_SERVICE, in every capability set.",
		"refs": ["PSS restricted: Capabilities"],
	},
	"run-as-non-root": {
		"severity": "medium",
		"description": "The process runs as a non-zero uid inside the container (user namespace or not).",
		"refs": ["PSS restricted: Running as Non-root user"],
	},
	"no-new-privileges": {
		"severity": "medium",
		"description": "no_new_privs is set, so setuid binaries cannot raise privileges.",
		"refs": ["PSS restricted: Privilege Escalation"],
	},
	"seccomp": {
		"severity": "high",
		"description": "A seccomp filter that refuses something is installed; unconfined is not allowed.",
		"refs": ["PSS restricted: Seccomp"],
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
	"readonly-rootfs": {
		"severity": "medium",
		"description": "The root filesystem is read-only.",
		"refs": ["CIS Docker 5.12"],
	},
	"memory-limit": {
		"severity": "medium",
		"description": "A memory limit is set.",
		"refs": ["CIS Docker 5.10"],
	},
	"pids-limit": {
		"severity": "medium",
		"description": "A pids limit is set.",
		"refs": ["CIS Docker 5.28"],
	},
	"signed-image": {
		"severity": "high",
		"description": "The image's signature was verified against the trust config, for the digest that runs.",
		"refs": ["CIS Docker 4.5"],
	},
}

violation(id, f) := object.union(f, {"id": id, "severity": object.get(controls, [id, "severity"], "high")})

allowed_caps := {"CAP_NET_BIND_SERVICE"}

violations contains violation("privileged", f) if some f in lib.privileged

violations contains violation("hooks", f) if some f in lib.disallowed_hooks

violations contains violation("host-network", f) if some f in lib.host_network

violations contains violation("host-pid", f) if some f in lib.host_pid

violations contains violation("host-ipc", f) if some f in lib.host_ipc

violations contains violation("host-uts", f) if some f in lib.host_uts

violations contains violation("host-userns", f) if some f in lib.host_userns

violations contains violation("joined-namespace", f) if some f in lib.joined_namespaces

violations contains violation("host-path", f) if some f in lib.disallowed_host_paths

violations contains violation("sensitive-host-path", f) if some f in lib.sensitive_mounts

violations contains violation("runtime-socket", f) if some f in lib.runtime_socket_mounts

violations contains violation("capabilities", f) if some f in lib.caps_outside(allowed_caps)

violations contains violation("run-as-non-root", f) if some f in lib.runs_as_root

violations contains violation("no-new-privileges", f) if some f in lib.no_new_privileges

violations contains violation("seccomp", f) if some f in lib.seccomp_unconfined

violations contains violation("apparmor", f) if some f in lib.apparmor_unconfined

violations contains violation("selinux", f) if some f in lib.selinux_disabled

violations contains violation("selinux", f) if some f in lib.selinux_bad_type

violations contains violation("proc-mount", f) if some f in lib.proc_unmasked

violations contains violation("sysctls", f) if some f in lib.unsafe_sysctls

violations contains violation("readonly-rootfs", f) if some f in lib.rootfs_writable

violations contains violation("memory-limit", f) if some f in lib.memory_unlimited

violations contains violation("pids-limit", f) if some f in lib.pids_unlimited

violations contains violation("signed-image", f) if some f in lib.unsigned

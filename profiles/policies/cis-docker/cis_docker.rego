# METADATA
# title: cis-docker
# description: |
#   The container runtime checks of the CIS Docker Benchmark (section 5)
#   that can be decided from the OCI spec and the request. Daemon and host
#   configuration sections are out of scope.
#
#   One control is not a CIS item: `hooks`. The benchmark has no item for OCI
#   hooks (Docker's API cannot set one), but a hook runs on the host as root
#   outside every restriction of the container, so a CIS pass that admitted
#   any hook would hide the widest escape there is. It is checked as in
#   restricted and baseline, with the same allowed_hooks data.
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
	"apparmor": {
		"severity": "medium",
		"description": "On an AppArmor host, the container runs under an AppArmor profile (not unconfined).",
		"refs": ["CIS Docker 5.1"],
	},
	"selinux": {
		"severity": "medium",
		"description": "On an SELinux host, the container has an SELinux label and labelling is not disabled.",
		"refs": ["CIS Docker 5.2"],
	},
	"capabilities": {
		"severity": "high",
		"description": "No capability beyond Docker's default set is granted.",
		"refs": ["CIS Docker 5.3"],
	},
	"privileged": {
		"severity": "critical",
		"description": "Privileged containers are not used.",
		"refs": ["CIS Docker 5.4"],
	},
	"sensitive-host-path": {
		"severity": "critical",
		"description": "Sensitive host system directories are not mounted, checked on symlink-resolved paths.",
		"refs": ["CIS Docker 5.5"],
	},
	"sshd": {
		"severity": "low",
		"description": "sshd is not run within the container.",
		"refs": ["CIS Docker 5.6"],
	},
	"privileged-ports": {
		"severity": "low",
		"description": "Privileged host ports are not published (best effort: only engines that record ports in annotations).",
		"refs": ["CIS Docker 5.7"],
	},
	"host-network": {
		"severity": "high",
		"description": "The host's network namespace is not shared.",
		"refs": ["CIS Docker 5.9"],
	},
	"memory-limit": {
		"severity": "medium",
		"description": "Memory usage is limited.",
		"refs": ["CIS Docker 5.10"],
	},
	"cpu-limit": {
		"severity": "low",
		"description": "CPU use is limited (quota) or weighted (shares other than the default).",
		"refs": ["CIS Docker 5.11"],
	},
	"readonly-rootfs": {
		"severity": "medium",
		"description": "The container's root filesystem is mounted read-only.",
		"refs": ["CIS Docker 5.12"],
	},
	"host-pid": {
		"severity": "high",
		"description": "The host's process namespace is not shared.",
		"refs": ["CIS Docker 5.15"],
	},
	"host-ipc": {
		"severity": "high",
		"description": "The host's IPC namespace is not shared.",
		"refs": ["CIS Docker 5.16"],
	},
	"host-devices": {
		"severity": "high",
		"description": "Host devices are not directly exposed to the container.",
		"refs": ["CIS Docker 5.17"],
	},
	"mount-propagation": {
		"severity": "medium",
		"description": "Mount propagation is not set to shared.",
		"refs": ["CIS Docker 5.19"],
	},
	"host-uts": {
		"severity": "medium",
		"description": "The host's UTS namespace is not shared.",
		"refs": ["CIS Docker 5.20"],
	},
	"seccomp": {
		"severity": "high",
		"description": "The default seccomp profile (or a stricter one) is not disabled.",
		"refs": ["CIS Docker 5.21"],
	},
	"exec-root": {
		"severity": "medium",
		"description": "exec is not run as root.",
		"refs": ["CIS Docker 5.23"],
	},
	"no-new-privileges": {
		"severity": "medium",
		"description": "The container is restricted from acquiring additional privileges (no_new_privs is true).",
		"refs": ["CIS Docker 5.25"],
	},
	"pids-limit": {
		"severity": "medium",
		"description": "The PIDs cgroup limit is set.",
		"refs": ["CIS Docker 5.28"],
	},
	"host-userns": {
		"severity": "high",
		"description": "The host's user namespace is not shared, and host root is never mapped.",
		"refs": ["CIS Docker 5.30"],
	},
	"runtime-socket": {
		"severity": "critical",
		"description": "No container runtime socket (Docker, containerd, CRI-O, podman, buildkit) is mounted.",
		"refs": ["CIS Docker 5.31"],
	},
	"hooks": {
		"severity": "critical",
		"description": "No OCI hook runs on the host unless it matches an allowed_hooks entry of the policy data (default: only dockerd's libnetwork-setkey prestart hook): hooks run as the runtime's user, outside every restriction of the container.",
		"refs": ["not a CIS Docker Benchmark item (secrun addition)", "OCI runtime spec: POSIX-platform hooks"],
	},
}

violation(id, f) := object.union(f, {"id": id, "severity": object.get(controls, [id, "severity"], "high")})

violations contains violation("apparmor", f) if some f in lib.apparmor_missing

violations contains violation("selinux", f) if some f in lib.selinux_missing

violations contains violation("selinux", f) if some f in lib.selinux_disabled

violations contains violation("capabilities", f) if some f in lib.caps_outside(lib.docker_default_caps)

violations contains violation("privileged", f) if some f in lib.privileged

violations contains violation("sensitive-host-path", f) if some f in lib.sensitive_mounts

violations contains violation("sshd", f) if some f in lib.sshd_running

violations contains violation("privileged-ports", f) if some f in lib.privileged_ports

violations contains violation("host-network", f) if some f in lib.host_network

violations contains violation("memory-limit", f) if some f in lib.memory_unlimited

violations contains violation("cpu-limit", f) if some f in lib.cpu_unlimited

violations contains violation("readonly-rootfs", f) if some f in lib.rootfs_writable

violations contains violation("host-pid", f) if some f in lib.host_pid

violations contains violation("host-ipc", f) if some f in lib.host_ipc

violations contains violation("host-devices", f) if some f in lib.host_devices

violations contains violation("mount-propagation", f) if some f in lib.shared_propagation

violations contains violation("host-uts", f) if some f in lib.host_uts

violations contains violation("seccomp", f) if some f in lib.seccomp_unconfined

violations contains violation("exec-root", f) if some f in lib.exec_as_root

violations contains violation("no-new-privileges", f) if some f in lib.no_new_privileges

violations contains violation("pids-limit", f) if some f in lib.pids_unlimited

violations contains violation("host-userns", f) if some f in lib.host_userns

violations contains violation("runtime-socket", f) if some f in lib.runtime_socket_mounts

violations contains violation("hooks", f) if some f in lib.disallowed_hooks

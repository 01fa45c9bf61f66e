package secrun_test

import data.fixtures
import data.secrun

deny_for(ops) := d if {
	d := secrun.deny with input as fixtures.patched(ops)
}

ids_for(ops) := {v.id | some v in deny_for(ops)}

denies(ops, id, field) if {
	some v in deny_for(ops)
	v.id == id
	v.field == field
}

passes(ops, id) if {
	not id in ids_for(ops)
}

# What Docker's default container looks like to baseline: root, writable
# root filesystem, Docker's capabilities, no limits, no signature, no user
# namespace. Baseline admits it.
docker_like := [
	{"op": "replace", "path": "/spec/process/user/uid", "value": 0},
	{"op": "replace", "path": "/spec/root/readonly", "value": false},
	{"op": "replace", "path": "/spec/process/noNewPrivileges", "value": false},
	fixtures.all_caps("CAP_NET_RAW"),
	{"op": "remove", "path": "/spec/linux/resources/memory"},
	{"op": "remove", "path": "/spec/linux/resources/pids"},
	{"op": "replace", "path": "/signature", "value": {"verified": false, "signers": null, "error": "no image identity"}},
	{"op": "replace", "path": "/image", "value": {"ref": "", "digest": "", "identity": false}},
	{"op": "replace", "path": "/request/userns", "value": "host"},
	fixtures.drop_ns("user"),
	{"op": "remove", "path": "/spec/linux/uidMappings"},
	{"op": "remove", "path": "/spec/linux/gidMappings"},
]

test_hardened_allowed if {
	secrun.allow with input as fixtures.hardened
}

test_docker_like_allowed if {
	secrun.allow with input as fixtures.patched(docker_like)
}

test_host_paths_outside_allowlist_allowed if passes(fixtures.add_volume("/home/alice/src", "/home/alice/src", "/src"), "host-path")

test_joined_namespace_allowed if {
	secrun.allow with input as fixtures.patched([{"op": "replace", "path": "/spec/linux/namespaces/4", "value": {"type": "network", "path": "/run/netns/web"}}])
}

test_empty_input_denied if {
	not secrun.allow with input as {}
}

test_privileged_allowed if passes(docker_like, "privileged")

test_privileged_denied if denies(
	[{"op": "replace", "path": "/request/privileged", "value": true}],
	"privileged", "request.privileged=true",
)

test_host_network_allowed if passes(docker_like, "host-network")

test_host_network_denied if denies(
	[{"op": "replace", "path": "/request/network", "value": "host"}, fixtures.drop_ns("network")],
	"host-network", "request.network=host",
)

test_host_pid_allowed if passes(docker_like, "host-pid")

test_host_pid_denied if denies([fixtures.drop_ns("pid")], "host-pid", "spec.linux.namespaces (no pid)")

test_host_pid_joined_from_self_denied if denies(
	[{"op": "replace", "path": "/spec/linux/namespaces/0", "value": {"type": "pid", "path": "/proc/self/ns/pid"}}],
	"host-pid", "spec.linux.namespaces[0].path=/proc/self/ns/pid",
)

test_host_ipc_allowed if passes(docker_like, "host-ipc")

test_host_ipc_denied if denies(
	[{"op": "add", "path": "/request/ipc", "value": "host"}, fixtures.drop_ns("ipc")],
	"host-ipc", "request.ipc=host",
)

test_host_uts_allowed if passes(docker_like, "host-uts")

test_host_uts_denied if denies([fixtures.drop_ns("uts")], "host-uts", "spec.linux.namespaces (no uts)")

test_sensitive_host_path_allowed if passes(
	[{"op": "add", "path": "/spec/mounts/-", "value": fixtures.bind_mount("/var/lib/docker/containers/0123/hosts", "/etc/hosts")}],
	"sensitive-host-path",
)

test_sensitive_host_path_denied if denies(
	fixtures.add_volume("/srv/sys", "/sys/fs/cgroup", "/cg"),
	"sensitive-host-path", "request.volumes[2].resolved=/sys/fs/cgroup",
)

test_sensitive_host_path_engine_state_denied if denies(
	[{"op": "add", "path": "/spec/mounts/-", "value": fixtures.bind_mount("/var/lib/docker", "/docker")}],
	"sensitive-host-path", "spec.mounts[9].source=/var/lib/docker",
)

test_runtime_socket_allowed if passes(docker_like, "runtime-socket")

test_runtime_socket_denied if denies(
	fixtures.add_volume("/var/run/crio/crio.sock", "/run/crio/crio.sock", "/crio.sock"),
	"runtime-socket", "request.volumes[2].resolved=/run/crio/crio.sock",
)

test_capabilities_allowed if passes(docker_like, "capabilities")

test_capabilities_denied if denies(
	[fixtures.all_caps("CAP_SYS_ADMIN")],
	"capabilities", "spec.process.capabilities.bounding=CAP_SYS_ADMIN",
)

test_capabilities_sys_ptrace_denied if denies(
	[{"op": "add", "path": "/spec/process/capabilities/effective", "value": ["CAP_SYS_PTRACE"]}],
	"capabilities", "spec.process.capabilities.effective=CAP_SYS_PTRACE",
)

test_seccomp_allowed if passes(docker_like, "seccomp")

test_seccomp_denied if denies(
	[{"op": "replace", "path": "/request/seccomp", "value": "unconfined"}, {"op": "remove", "path": "/spec/linux/seccomp"}],
	"seccomp", "request.seccomp=unconfined",
)

test_seccomp_missing_denied if denies(
	[{"op": "remove", "path": "/spec/linux/seccomp"}],
	"seccomp", "spec.linux.seccomp=null",
)

test_apparmor_allowed if passes(docker_like, "apparmor")

test_apparmor_denied if denies(
	[{"op": "add", "path": "/request/apparmor", "value": "unconfined"}, {"op": "remove", "path": "/spec/process/apparmorProfile"}],
	"apparmor", "request.apparmor=unconfined",
)

test_selinux_allowed if passes(
	[{"op": "add", "path": "/spec/process/selinuxLabel", "value": "system_u:system_r:container_t:s0:c4,c5"}],
	"selinux",
)

test_selinux_denied if denies(
	[{"op": "add", "path": "/spec/process/selinuxLabel", "value": "unconfined_u:unconfined_r:unconfined_t:s0"}],
	"selinux", "spec.process.selinuxLabel=unconfined_u:unconfined_r:unconfined_t:s0",
)

test_proc_mount_allowed if passes(docker_like, "proc-mount")

test_proc_mount_denied if denies(
	[{"op": "replace", "path": "/spec/linux/maskedPaths", "value": ["/proc/kcore"]}],
	"proc-mount", "spec.linux.maskedPaths",
)

test_sysctls_allowed if passes(
	[{"op": "add", "path": "/spec/linux/sysctl", "value": {"net.ipv4.ip_unprivileged_port_start": "0"}}],
	"sysctls",
)

test_sysctls_denied if denies(
	[{"op": "add", "path": "/spec/linux/sysctl", "value": {"kernel.sysrq": "1"}}],
	"sysctls", "spec.linux.sysctl.kernel.sysrq=1",
)

test_exemption_lifts_control if {
	ops := [{"op": "add", "path": "/spec/linux/sysctl", "value": {"kernel.sysrq": "1"}}]
	secrun.allow with input as fixtures.patched(ops)
		with data.exemptions as [{"control": "sysctls", "images": ["127.0.0.1:5000/apps/web:*"]}]
}

evil_hook := {"path": "/usr/bin/evil", "args": ["evil"]}

test_hooks_allowed if passes(docker_like, "hooks")

# `docker run --network none` on Docker 20.10: the setkey hook is Docker's.
test_docker_like_with_setkey_hook_allowed if {
	ops := array.concat(docker_like, fixtures.set_hooks({"prestart": [fixtures.docker_setkey_hook]}))
	secrun.allow with input as fixtures.patched(ops)
}

test_hooks_denied if denies(
	array.concat(docker_like, fixtures.set_hooks({"prestart": [fixtures.docker_setkey_hook, evil_hook]})),
	"hooks", "spec.hooks.prestart[1].path=/usr/bin/evil",
)

test_hooks_poststop_denied if denies(
	fixtures.set_hooks({"poststop": [evil_hook]}),
	"hooks", "spec.hooks.poststop[0].path=/usr/bin/evil",
)

test_hooks_other_command_of_a_process_denied if denies(
	fixtures.set_hooks({"prestart": [{"path": "/proc/1/exe", "args": ["something-else"]}]}),
	"hooks", "spec.hooks.prestart[0].path=/proc/1/exe",
)

test_hooks_setkey_from_another_path_denied if denies(
	fixtures.set_hooks({"prestart": [fixtures.setkey_with("path", "/usr/sbin/dockerd")]}),
	"hooks", "spec.hooks.prestart[0].path=/usr/sbin/dockerd",
)

test_hooks_setkey_with_ld_preload_denied if denies(
	fixtures.set_hooks({"prestart": [fixtures.setkey_with("env", ["LD_PRELOAD=/tmp/evil.so"])]}),
	"hooks", "spec.hooks.prestart[0].path=/proc/26856/exe",
)

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

test_hardened_allowed if {
	secrun.allow with input as fixtures.hardened
}

test_empty_input_denied if {
	not secrun.allow with input as {}
}

# 5.1
test_apparmor_allowed if passes([], "apparmor")

test_apparmor_no_apparmor_host_allowed if passes(
	[{"op": "replace", "path": "/host/lsm", "value": []}, {"op": "remove", "path": "/spec/process/apparmorProfile"}],
	"apparmor",
)

test_apparmor_denied if denies(
	[{"op": "remove", "path": "/spec/process/apparmorProfile"}],
	"apparmor", "spec.process.apparmorProfile=unset",
)

test_apparmor_unconfined_denied if denies(
	[{"op": "replace", "path": "/spec/process/apparmorProfile", "value": "unconfined"}],
	"apparmor", "spec.process.apparmorProfile=unconfined",
)

# 5.2
test_selinux_allowed if passes(
	[
		{"op": "replace", "path": "/host/lsm", "value": ["selinux"]},
		{"op": "add", "path": "/spec/process/selinuxLabel", "value": "system_u:system_r:container_t:s0:c1,c2"},
	],
	"selinux",
)

test_selinux_denied if denies(
	[{"op": "replace", "path": "/host/lsm", "value": ["selinux"]}],
	"selinux", "spec.process.selinuxLabel=unset",
)

test_selinux_disabled_denied if denies(
	[{"op": "add", "path": "/request/label", "value": ["disable"]}],
	"selinux", "request.label=disable",
)

# 5.3
test_capabilities_allowed if passes([fixtures.all_caps("CAP_CHOWN")], "capabilities")

test_capabilities_denied if denies(
	[fixtures.all_caps("CAP_NET_ADMIN")],
	"capabilities", "spec.process.capabilities.bounding=CAP_NET_ADMIN",
)

# 5.4
test_privileged_allowed if passes([], "privileged")

test_privileged_denied if denies(
	[{"op": "replace", "path": "/request/privileged", "value": true}],
	"privileged", "request.privileged=true",
)

# 5.5
test_sensitive_host_path_allowed if passes([], "sensitive-host-path")

test_sensitive_host_path_denied if denies(
	fixtures.add_volume("/boot", "/boot", "/boot"),
	"sensitive-host-path", "request.volumes[2].resolved=/boot",
)

# 5.6
test_sshd_allowed if passes([], "sshd")

test_sshd_denied if denies(
	[{"op": "replace", "path": "/spec/process/args", "value": ["/usr/sbin/sshd", "-D"]}],
	"sshd", "spec.process.args[0]=/usr/sbin/sshd",
)

# 5.7
test_privileged_ports_allowed if passes(
	[{"op": "add", "path": "/spec/annotations/nerdctl~1ports", "value": "[{\"HostPort\":8080,\"ContainerPort\":80,\"Protocol\":\"tcp\",\"HostIP\":\"0.0.0.0\"}]"}],
	"privileged-ports",
)

test_privileged_ports_denied if denies(
	[{"op": "add", "path": "/spec/annotations/nerdctl~1ports", "value": "[{\"HostPort\":80,\"ContainerPort\":8080,\"Protocol\":\"tcp\",\"HostIP\":\"0.0.0.0\"}]"}],
	"privileged-ports", "spec.annotations.nerdctl/ports=80:8080",
)

test_privileged_ports_garbage_ignored if passes(
	[{"op": "add", "path": "/spec/annotations/nerdctl~1ports", "value": "not json"}],
	"privileged-ports",
)

# 5.9
test_host_network_allowed if passes([], "host-network")

test_host_network_denied if denies([fixtures.drop_ns("network")], "host-network", "spec.linux.namespaces (no network)")

# 5.10
test_memory_limit_allowed if passes([], "memory-limit")

test_memory_limit_denied if denies(
	[{"op": "remove", "path": "/spec/linux/resources/memory"}],
	"memory-limit", "spec.linux.resources.memory.limit=unset",
)

# 5.11
test_cpu_limit_allowed if passes(
	[{"op": "replace", "path": "/spec/linux/resources/cpu", "value": {"shares": 512}}],
	"cpu-limit",
)

test_cpu_limit_denied if denies(
	[{"op": "replace", "path": "/spec/linux/resources/cpu", "value": {"shares": 1024}}],
	"cpu-limit", "spec.linux.resources.cpu=unset",
)

# 5.12
test_readonly_rootfs_allowed if passes([], "readonly-rootfs")

test_readonly_rootfs_denied if denies(
	[{"op": "remove", "path": "/spec/root/readonly"}],
	"readonly-rootfs", "spec.root.readonly=false",
)

# 5.15
test_host_pid_allowed if passes([], "host-pid")

test_host_pid_denied if denies(
	[{"op": "add", "path": "/request/pid", "value": "host"}, fixtures.drop_ns("pid")],
	"host-pid", "request.pid=host",
)

# 5.16
test_host_ipc_allowed if passes([], "host-ipc")

test_host_ipc_denied if denies([fixtures.drop_ns("ipc")], "host-ipc", "spec.linux.namespaces (no ipc)")

# 5.17
test_host_devices_allowed if passes([], "host-devices")

test_host_devices_denied if denies(
	[{"op": "add", "path": "/spec/linux/devices", "value": [{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]}],
	"host-devices", "spec.linux.devices[0].path=/dev/kvm",
)

# 5.19
test_mount_propagation_allowed if passes([], "mount-propagation")

test_mount_propagation_denied if denies(
	[{"op": "add", "path": "/spec/mounts/7/options/-", "value": "rshared"}],
	"mount-propagation", "spec.mounts[7].options=rshared",
)

test_mount_propagation_rootfs_denied if denies(
	[{"op": "add", "path": "/spec/linux/rootfsPropagation", "value": "shared"}],
	"mount-propagation", "spec.linux.rootfsPropagation=shared",
)

# 5.20
test_host_uts_allowed if passes([], "host-uts")

test_host_uts_denied if denies([fixtures.drop_ns("uts")], "host-uts", "spec.linux.namespaces (no uts)")

# 5.21
test_seccomp_allowed if passes([], "seccomp")

test_seccomp_denied if denies(
	[{"op": "replace", "path": "/request/seccomp", "value": "unconfined"}, {"op": "remove", "path": "/spec/linux/seccomp"}],
	"seccomp", "request.seccomp=unconfined",
)

# 5.23
test_exec_root_allowed if passes(
	[{"op": "replace", "path": "/request/source", "value": "exec"}],
	"exec-root",
)

test_exec_root_denied if denies(
	[{"op": "replace", "path": "/request/source", "value": "exec"}, {"op": "replace", "path": "/request/user", "value": "root"}],
	"exec-root", "request.user=root",
)

# 5.25: present but false is not enough.
test_no_new_privileges_allowed if passes([], "no-new-privileges")

test_no_new_privileges_denied if denies(
	[{"op": "replace", "path": "/spec/process/noNewPrivileges", "value": false}, {"op": "replace", "path": "/request/no_new_privileges", "value": false}],
	"no-new-privileges", "spec.process.noNewPrivileges=false",
)

test_no_new_privileges_fix_names_the_flag if {
	some v in deny_for([{"op": "replace", "path": "/spec/process/noNewPrivileges", "value": false}, {"op": "replace", "path": "/request/no_new_privileges", "value": false}])
	v.id == "no-new-privileges"
	v.fix == "drop --security-opt no-new-privileges=false"
}

# 5.28
test_pids_limit_allowed if passes([], "pids-limit")

test_pids_limit_denied if denies(
	[{"op": "remove", "path": "/spec/linux/resources/pids"}],
	"pids-limit", "spec.linux.resources.pids.limit=unset",
)

# 5.30
test_host_userns_allowed if passes([], "host-userns")

test_host_userns_denied if denies([fixtures.drop_ns("user")], "host-userns", "spec.linux.namespaces (no user)")

# 5.31
test_runtime_socket_allowed if passes([], "runtime-socket")

test_runtime_socket_denied if denies(
	fixtures.add_volume("/run/podman/podman.sock", "/run/podman/podman.sock", "/run/podman/podman.sock"),
	"runtime-socket", "request.volumes[2].resolved=/run/podman/podman.sock",
)

test_runtime_socket_parent_dir_denied if denies(
	fixtures.add_volume("/var/run", "/run", "/host-run"),
	"runtime-socket", "request.volumes[2].resolved=/run",
)

# Not a CIS item: OCI hooks (see cis_docker.rego).
test_hooks_allowed if passes(fixtures.set_hooks({"prestart": [fixtures.docker_setkey_hook]}), "hooks")

test_hooks_denied if denies(
	fixtures.set_hooks({"createContainer": [{"path": "/usr/bin/evil", "args": ["evil"]}]}),
	"hooks", "spec.hooks.createContainer[0].path=/usr/bin/evil",
)

test_hooks_other_command_of_a_process_denied if denies(
	fixtures.set_hooks({"prestart": [{"path": "/proc/1/exe", "args": ["something-else"]}]}),
	"hooks", "spec.hooks.prestart[0].path=/proc/1/exe",
)

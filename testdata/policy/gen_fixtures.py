#!/usr/bin/env python3
"""Regenerates the policy test inputs (run from testdata/policy/).

hardened.json     what `secrun run` hands the policy for a hardened container:
                  the runner's options (all caps dropped, no_new_privs, read-only
                  root, pid/ipc/uts/mount/network/cgroup/user namespaces with an
                  unprivileged id map, seccomp, memory/pids/cpu limits, masked
                  and read-only paths, one read-only volume) and a verified image.
docker-default.json  a bundle `docker run` hands secrun-runc for a default
                  container (Docker 27 config.json shape; its hook is the
                  libnetwork-setkey prestart hook captured from Docker 20.10),
                  no image identity.
runc-bundle.json  the spec `runc spec` writes (runc-spec-config.json, produced by
                  bin/runc spec), handed over by a plain runc caller.

The seccomp filter is Docker's default allow list for x86_64, built from the
kernel's syscall table minus the syscalls Docker's profile refuses.
"""
import json, re

DENIED = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy",
    "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load",
    "keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount",
    "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
    "query_module", "quotactl", "quotactl_fd", "reboot", "request_key",
    "set_mempolicy", "setns", "settimeofday", "swapon", "swapoff", "sysfs",
    "_sysctl", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
    "vm86old", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "personality", "clone", "clone3", "afs_syscall", "tuxcall", "security",
    "vserver", "putpmsg", "getpmsg", "create_module", "syslog", "vhangup",
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    "set_mempolicy_home_node", "map_shadow_stack", "uretprobe",
}

names = []
with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
    for line in f:
        m = re.match(r"#define __NR_(\w+)\s+\d+", line)
        if m and m.group(1) not in DENIED:
            names.append(m.group(1))
names.sort()

CLONE_NS = 2114060288  # CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP

seccomp = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": names, "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": CLONE_NS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}

standard_mounts = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]

masked = ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
          "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]
readonly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

digest = "sha256:3f1d8a5c0d3b4e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
mem = 268435456
hardened = {
    "request": {
        "source": "run", "name": "web", "privileged": False,
        "cap_add": [], "cap_drop": ["ALL"], "seccomp": "default",
        "no_new_privileges": True, "read_only": True, "network": "none",
        "userns": "private", "user": "1000:1000",
        "volumes": [
            {"source": "/srv/web/static", "resolved": "/srv/web/static", "destination": "/static", "read_only": True, "type": "bind"},
            {"source": "", "resolved": "", "destination": "/tmp", "read_only": False, "type": "tmpfs"},
        ],
        "memory": mem, "cpus": 1, "pids_limit": 256,
        "args": ["/usr/local/bin/web", "--listen", ":8080"],
        "runtime": "/usr/local/lib/secrun/runc",
    },
    "spec": {
        "ociVersion": "1.3.0",
        "process": {
            "user": {"uid": 1000, "gid": 1000},
            "args": ["/usr/local/bin/web", "--listen", ":8080"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=web"],
            "cwd": "/",
            "capabilities": {},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
            "apparmorProfile": "secrun-default",
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "web",
        "mounts": standard_mounts + [
            {"destination": "/static", "type": "bind", "source": "/srv/web/static", "options": ["rbind", "nosuid", "nodev", "rprivate", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=67108864"]},
        ],
        "annotations": {"org.opencontainers.image.ref.name": "127.0.0.1:5000/apps/web:1.0"},
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": mem, "swap": mem},
                "cpu": {"quota": 100000, "period": 100000},
                "pids": {"limit": 256},
            },
            "cgroupsPath": "/secrun/web",
            "namespaces": [{"type": t} for t in ["pid", "ipc", "uts", "mount", "network", "cgroup", "user"]],
            "seccomp": seccomp,
            "maskedPaths": masked,
            "readonlyPaths": readonly,
        },
    },
    "image": {
        "ref": "127.0.0.1:5000/apps/web:1.0", "digest": digest, "identity": True,
        "config": {"User": "1000:1000", "Entrypoint": ["/usr/local/bin/web"], "Cmd": ["--listen", ":8080"],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/"},
    },
    "signature": {"verified": True, "signers": ["cosign.pub (ecdsa-p256 sha256:9b2f...)"], "digest": digest},
    "host": {"lsm": ["apparmor"], "userns": True, "cgroup": "hybrid"},
}

docker_caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
cid = "8d2c7b5e1f0a4c3b9e6d5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"
cdir = "/var/lib/docker/containers/" + cid
dev_rules = [{"allow": False, "access": "rwm"}] + [
    {"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
    for ma, mi in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)]
] + [{"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
docker = {
    "request": {
        "source": "runtime", "privileged": False, "cap_add": None, "cap_drop": None,
        "seccomp": "", "no_new_privileges": False, "read_only": False, "network": "",
        "userns": "host", "volumes": None, "args": ["sh"], "runtime": "/usr/bin/runc",
    },
    "spec": {
        "ociVersion": "1.2.0",
        "process": {
            "user": {"uid": 0, "gid": 0, "additionalGids": [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27]},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=8d2c7b5e1f0a"],
            "cwd": "/",
            "capabilities": {"bounding": docker_caps, "effective": docker_caps, "permitted": docker_caps},
            "apparmorProfile": "docker-default",
            "oomScoreAdj": 0,
        },
        "root": {"path": "/var/lib/docker/overlay2/4b1e/merged"},
        "hostname": "8d2c7b5e1f0a",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "bind", "source": cdir + "/mounts/shm", "options": ["rbind", "rprivate"]},
            {"destination": "/etc/resolv.conf", "type": "bind", "source": cdir + "/resolv.conf", "options": ["rbind", "rprivate"]},
            {"destination": "/etc/hostname", "type": "bind", "source": cdir + "/hostname", "options": ["rbind", "rprivate"]},
            {"destination": "/etc/hosts", "type": "bind", "source": cdir + "/hosts", "options": ["rbind", "rprivate"]},
        ],
        # The hook dockerd 20.10 (Debian 12's docker.io) adds to a container
        # with a network namespace of its own, as captured from config.json:
        # its own binary through /proc/<dockerd pid>/exe.
        "hooks": {"prestart": [{"path": "/proc/1184/exe", "args": ["libnetwork-setkey", "-exec-root=/var/run/docker", cid, "5c7b3d1f9e2a"]}]},
        "linux": {
            "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"},
            "resources": {"devices": dev_rules, "blockIO": {"weight": 0}},
            "cgroupsPath": "system.slice:docker:" + cid,
            "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}, {"type": "cgroup"}],
            "seccomp": seccomp,
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    },
    "image": {"ref": "", "digest": "", "identity": False},
    "signature": {"verified": False, "signers": None, "error": "no image identity"},
    "host": {"lsm": ["apparmor"], "userns": True, "cgroup": "hybrid"},
}

with open("runc-spec-config.json") as f:
    runc_spec = json.load(f)
runc = {
    "request": {"source": "runtime", "privileged": False, "cap_add": None, "cap_drop": None,
                "seccomp": "", "no_new_privileges": True, "read_only": True, "network": "",
                "userns": "host", "volumes": None, "args": ["sh"], "runtime": "/usr/bin/runc"},
    "spec": runc_spec,
    "image": {"ref": "", "digest": "", "identity": False},
    "signature": {"verified": False, "signers": None, "error": "no image identity"},
    "host": {"lsm": ["apparmor"], "userns": True, "cgroup": "hybrid"},
}

for name, doc in [("hardened.json", hardened), ("docker-default.json", docker), ("runc-bundle.json", runc)]:
    with open(name, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

package testenv

import "regexp"

// ProbeCommands is what a hardened-container test runs in the probe image
// (ProbeImage): the status lines, the uid map, the interfaces, id, and the
// probe binary's NAME=ERRNO lines. Its output is what HardenedProbes reads.
const ProbeCommands = `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; ` +
	`echo "uid_map=$(cat /proc/self/uid_map | tr -s ' \n' ' ')"; echo ifaces=$(ls /sys/class/net); id; ` +
	`/bin/probe mount sethostname unshare-user traceme ptrace write-root write-tmp chown-root`

// HardenedProbes are what the kernel must show in a container under
// secrun's defaults, by name, as patterns over ProbeCommands' output: no
// capability, no_new_privs, a seccomp filter, only lo, the process's uid,
// and EPERM or EROFS from the probes. With chown set, chown of a
// root-owned file must fail too (a container whose process is its own root
// and owns /tmp may do that chown).
func HardenedProbes(uid string, chown bool) map[string]*regexp.Regexp {
	want := map[string]*regexp.Regexp{
		"CapEff 0":                     regexp.MustCompile(`(?m)^CapEff:\s+0000000000000000$`),
		"CapBnd 0":                     regexp.MustCompile(`(?m)^CapBnd:\s+0000000000000000$`),
		"NoNewPrivs 1":                 regexp.MustCompile(`(?m)^NoNewPrivs:\s+1$`),
		"seccomp filter mode":          regexp.MustCompile(`(?m)^Seccomp:\s+2$`),
		"only lo":                      regexp.MustCompile(`(?m)^ifaces=lo$`),
		"uid " + uid:                   regexp.MustCompile(`(?m)^uid=` + regexp.QuoteMeta(uid) + `\b`),
		"EPERM mount":                  regexp.MustCompile(`(?m)^mount=EPERM$`),
		"EPERM sethostname":            regexp.MustCompile(`(?m)^sethostname=EPERM$`),
		"EPERM unshare(CLONE_NEWUSER)": regexp.MustCompile(`(?m)^unshare-user=EPERM$`),
		"EPERM ptrace(TRACEME)":        regexp.MustCompile(`(?m)^traceme=EPERM$`),
		"EPERM ptrace(ATTACH)":         regexp.MustCompile(`(?m)^ptrace=EPERM$`),
		"EROFS on /":                   regexp.MustCompile(`(?m)^write-root=EROFS$`),
		"tmpfs /tmp writable":          regexp.MustCompile(`(?m)^write-tmp=ok$`),
	}
	if chown {
		want["EPERM chown"] = regexp.MustCompile(`(?m)^chown-root=EPERM$`)
	}
	return want
}

package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SeccompRecord is a kernel audit record of type 1326 (AUDIT_SECCOMP): a
// seccomp filter returned an action the kernel logs. Without auditd the
// kernel prints these to /dev/kmsg (rate-limited) as
//
//	audit: type=1326 audit(1700000000.123:45): auid=... uid=0 gid=0 ses=...
//	pid=1234 comm="sh" exe="/bin/busybox" sig=31 arch=c000003e syscall=165
//	compat=0 ip=0x4a3f2e code=0x80000000
type SeccompRecord struct {
	// KmsgSeq is the /dev/kmsg sequence number (0 when parsed from a
	// message without the kmsg prefix).
	KmsgSeq uint64
	// AuditID is the kernel's "timestamp:serial" of the record.
	AuditID string
	// PID is the process as the host's (initial) PID namespace sees it.
	PID     int
	UID     int64
	Comm    string
	Exe     string
	Signal  int
	Arch    uint32
	Syscall int64
	Code    uint32
}

// auditTypeSeccomp is AUDIT_SECCOMP.
const auditTypeSeccomp = "1326"

// Seccomp return actions (SECCOMP_RET_*), the high 16 bits of Code. The
// kernel logs the action only, not its data (so not the errno).
var seccompActions = map[uint32]string{
	0x80000000: "kill_process",
	0x00000000: "kill_thread",
	0x00030000: "trap",
	0x00050000: "errno",
	0x7fc00000: "user_notif",
	0x7ff00000: "trace",
	0x7ffc0000: "log",
	0x7fff0000: "allow",
}

// Action names the seccomp action ("kill_process", "errno", "log", ...).
func (r SeccompRecord) Action() string {
	if a, ok := seccompActions[r.Code&0xffff0000]; ok {
		return a
	}
	return fmt.Sprintf("0x%08x", r.Code&0xffff0000)
}

// Denied reports whether the action stopped the syscall ("log" and "allow"
// let it run).
func (r SeccompRecord) Denied() bool {
	a := r.Action()
	return a != "log" && a != "allow"
}

// AUDIT_ARCH_* values, named as libseccomp names its architectures.
var auditArches = map[uint32]string{
	0xc000003e: "amd64",
	0x40000003: "x86",
	0xc00000b7: "arm64",
	0x40000028: "arm",
	0x00000008: "mips",
	0x40000008: "mipsel",
	0x80000008: "mips64",
	0xc0000008: "mipsel64",
	0xa0000008: "mips64n32",
	0xe0000008: "mipsel64n32",
	0x00000014: "ppc",
	0x80000015: "ppc64",
	0xc0000015: "ppc64le",
	0x00000016: "s390",
	0x80000016: "s390x",
	0x0000000f: "parisc",
	0x8000000f: "parisc64",
	0xc00000f3: "riscv64",
	0xc0000102: "loong64",
	0x00000004: "m68k",
	0x4000002a: "sh",
	0x0000002a: "sheb",
}

// x32SyscallBit marks x32 syscalls, which the kernel audits as x86_64.
const x32SyscallBit = 0x40000000

// ArchName is the libseccomp name of the record's architecture ("amd64",
// "x32", "arm64", ...), or the hex AUDIT_ARCH value if unknown.
func (r SeccompRecord) ArchName() string {
	name, ok := auditArches[r.Arch]
	if !ok {
		return fmt.Sprintf("0x%08x", r.Arch)
	}
	if name == "amd64" && r.Syscall&x32SyscallBit != 0 {
		return "x32"
	}
	return name
}

// SyscallName resolves the syscall number with libseccomp for the record's
// architecture; "" if it cannot.
func (r SeccompRecord) SyscallName() string {
	return syscallName(r.ArchName(), r.Syscall)
}

// ParseKmsgSeccomp parses one /dev/kmsg record ("PRI,SEQ,TS,FLAGS;MESSAGE"
// with optional continuation lines). ok is false for records that are not
// seccomp audit records; err is set when a record claims to be one but is
// malformed.
func ParseKmsgSeccomp(rec []byte) (r SeccompRecord, ok bool, err error) {
	prefix, msg, found := bytes.Cut(rec, []byte{';'})
	if !found {
		return SeccompRecord{}, false, errors.New("kmsg record has no ';' after its prefix")
	}
	msg, _, _ = bytes.Cut(msg, []byte{'\n'})
	fields := strings.Split(string(prefix), ",")
	if len(fields) < 4 {
		return SeccompRecord{}, false, fmt.Errorf("kmsg record prefix %q has fewer than 4 fields", prefix)
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return SeccompRecord{}, false, fmt.Errorf("kmsg record sequence %q: %w", fields[1], err)
	}
	r, ok, err = ParseSeccompMessage(string(msg))
	r.KmsgSeq = seq
	return r, ok, err
}

// ParseSeccompMessage parses the text of a kernel audit message, with or
// without the "audit: " prefix the kernel adds when it prints to the log.
func ParseSeccompMessage(msg string) (r SeccompRecord, ok bool, err error) {
	msg = strings.TrimPrefix(msg, "audit: ")
	rest, found := strings.CutPrefix(msg, "type="+auditTypeSeccomp+" ")
	if !found {
		return SeccompRecord{}, false, nil
	}
	if id, after, ok := strings.Cut(rest, "): "); ok && strings.HasPrefix(id, "audit(") {
		r.AuditID, rest = strings.TrimPrefix(id, "audit("), after
	}
	seen := map[string]bool{}
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		key, after, found := strings.Cut(rest, "=")
		if !found || key == "" || strings.ContainsAny(key, " \"") {
			return r, true, fmt.Errorf("seccomp audit record: expected key=value at %q", kmsgClip(rest, 40))
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.IndexByte(after[1:], '"')
			if end < 0 {
				return r, true, fmt.Errorf("seccomp audit record: unterminated quote in %s", key)
			}
			val, rest = after[1:1+end], after[2+end:]
		} else {
			val, rest, _ = strings.Cut(after, " ")
			if key == "comm" || key == "exe" {
				val = decodeAuditHex(val)
			}
		}
		if seen[key] {
			return r, true, fmt.Errorf("seccomp audit record: %s appears twice", key)
		}
		seen[key] = true
		if err := r.set(key, val); err != nil {
			return r, true, fmt.Errorf("seccomp audit record: %w", err)
		}
	}
	for _, k := range []string{"pid", "arch", "syscall", "code"} {
		if !seen[k] {
			return r, true, fmt.Errorf("seccomp audit record: %s is missing", k)
		}
	}
	return r, true, nil
}

func (r *SeccompRecord) set(key, val string) error {
	var err error
	switch key {
	case "pid":
		var n int64
		n, err = strconv.ParseInt(val, 10, 32)
		if err == nil && n <= 0 {
			err = errors.New("not positive")
		}
		r.PID = int(n)
	case "uid":
		r.UID, err = strconv.ParseInt(val, 10, 64)
	case "comm":
		r.Comm = val
	case "exe":
		r.Exe = val
	case "sig":
		var n int64
		n, err = strconv.ParseInt(val, 10, 32)
		r.Signal = int(n)
	case "arch":
		var n uint64
		n, err = strconv.ParseUint(val, 16, 32)
		r.Arch = uint32(n)
	case "syscall":
		r.Syscall, err = strconv.ParseInt(val, 10, 64)
	case "code":
		var n uint64
		n, err = strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 32)
		r.Code = uint32(n)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s=%q: %w", key, kmsgClip(val, 40), err)
	}
	return nil
}

// decodeAuditHex undoes the kernel's hex encoding of untrusted strings
// (used when a name holds spaces, quotes or control characters).
func decodeAuditHex(v string) string {
	if v == "" || v == "(null)" || len(v)%2 != 0 {
		return v
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return v
	}
	return string(b)
}

func kmsgClip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

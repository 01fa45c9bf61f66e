package seccomp

import (
	"encoding/binary"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Verdict is what a seccomp filter decides for one syscall.
type Verdict struct {
	Action specs.LinuxSeccompAction
	// Errno is the return code of SCMP_ACT_ERRNO and SCMP_ACT_TRACE.
	Errno uint
}

func (v Verdict) String() string {
	if v.Action == specs.ActErrno || v.Action == specs.ActTrace {
		return fmt.Sprintf("%s(%d)", v.Action, v.Errno)
	}
	return string(v.Action)
}

// Allowed reports whether the syscall runs (allowed or only logged).
func (v Verdict) Allowed() bool {
	return v.Action == specs.ActAllow || v.Action == specs.ActLog
}

// seccompData mirrors struct seccomp_data.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	binary.NativeEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
	retActionFull  = 0xffff0000
	retData        = 0x0000ffff
)

func verdictOf(ret uint32) Verdict {
	data := uint(ret & retData)
	switch ret & retActionFull {
	case retKillProcess:
		return Verdict{Action: specs.ActKillProcess}
	case retKillThread:
		return Verdict{Action: specs.ActKillThread}
	case retTrap:
		return Verdict{Action: specs.ActTrap}
	case retErrno:
		return Verdict{Action: specs.ActErrno, Errno: data}
	case retUserNotif:
		return Verdict{Action: specs.ActNotify}
	case retTrace:
		return Verdict{Action: specs.ActTrace, Errno: data}
	case retLog:
		return Verdict{Action: specs.ActLog}
	case retAllow:
		return Verdict{Action: specs.ActAllow}
	}
	// The kernel treats unknown actions as kill-process.
	return Verdict{Action: specs.ActKillProcess}
}

// runBPF interprets a classic BPF seccomp program (struct sock_filter
// records in host byte order) over one struct seccomp_data, as the kernel
// would. It supports the instructions the kernel's seccomp checker allows.
func runBPF(prog []byte, data []byte) (ret uint32, steps int, err error) {
	if len(prog)%8 != 0 || len(prog) == 0 {
		return 0, steps, fmt.Errorf("BPF program of %d bytes is not a sequence of instructions", len(prog))
	}
	n := len(prog) / 8
	var a, x uint32
	var mem [16]uint32
	for pc := 0; ; pc++ {
		if pc < 0 || pc >= n {
			return 0, steps, fmt.Errorf("BPF program runs off its end at %d", pc)
		}
		if steps++; steps > 1<<16 {
			return 0, steps, fmt.Errorf("BPF program does not terminate")
		}
		ins := prog[pc*8:]
		code := binary.NativeEndian.Uint16(ins[0:])
		jt, jf := int(ins[2]), int(ins[3])
		k := binary.NativeEndian.Uint32(ins[4:])
		src := func() uint32 {
			if code&0x08 != 0 { // BPF_X
				return x
			}
			return k
		}
		switch code & 0x07 { // class
		case 0x00: // BPF_LD
			switch code {
			case 0x20: // LD W ABS
				if k%4 != 0 || int(k)+4 > len(data) {
					return 0, steps, fmt.Errorf("BPF load at offset %d out of seccomp_data", k)
				}
				a = binary.NativeEndian.Uint32(data[k:])
			case 0x00: // LD IMM
				a = k
			case 0x60: // LD MEM
				if k >= 16 {
					return 0, steps, fmt.Errorf("BPF scratch slot %d", k)
				}
				a = mem[k]
			case 0x80: // LD W LEN
				a = uint32(len(data))
			default:
				return 0, steps, fmt.Errorf("unsupported BPF load 0x%02x", code)
			}
		case 0x01: // BPF_LDX
			switch code {
			case 0x01: // LDX IMM
				x = k
			case 0x61: // LDX MEM
				if k >= 16 {
					return 0, steps, fmt.Errorf("BPF scratch slot %d", k)
				}
				x = mem[k]
			case 0x81: // LDX W LEN
				x = uint32(len(data))
			default:
				return 0, steps, fmt.Errorf("unsupported BPF ldx 0x%02x", code)
			}
		case 0x02: // BPF_ST
			if k >= 16 {
				return 0, steps, fmt.Errorf("BPF scratch slot %d", k)
			}
			mem[k] = a
		case 0x03: // BPF_STX
			if k >= 16 {
				return 0, steps, fmt.Errorf("BPF scratch slot %d", k)
			}
			mem[k] = x
		case 0x04: // BPF_ALU
			v := src()
			switch code & 0xf0 {
			case 0x00:
				a += v
			case 0x10:
				a -= v
			case 0x20:
				a *= v
			case 0x30:
				if v == 0 {
					return 0, steps, nil
				}
				a /= v
			case 0x40:
				a |= v
			case 0x50:
				a &= v
			case 0x60:
				a <<= v
			case 0x70:
				a >>= v
			case 0x80:
				a = -a
			case 0x90:
				if v == 0 {
					return 0, steps, nil
				}
				a %= v
			case 0xa0:
				a ^= v
			default:
				return 0, steps, fmt.Errorf("unsupported BPF alu 0x%02x", code)
			}
		case 0x05: // BPF_JMP
			var cond bool
			switch code & 0xf0 {
			case 0x00: // JA
				pc += int(k)
				continue
			case 0x10:
				cond = a == src()
			case 0x20:
				cond = a > src()
			case 0x30:
				cond = a >= src()
			case 0x40:
				cond = a&src() != 0
			default:
				return 0, steps, fmt.Errorf("unsupported BPF jump 0x%02x", code)
			}
			if cond {
				pc += jt
			} else {
				pc += jf
			}
		case 0x06: // BPF_RET
			switch code & 0x18 {
			case 0x00: // K
				return k, steps, nil
			case 0x10: // A
				return a, steps, nil
			}
			return 0, steps, fmt.Errorf("unsupported BPF ret 0x%02x", code)
		case 0x07: // BPF_MISC
			switch code {
			case 0x07: // TAX
				x = a
			case 0x87: // TXA
				a = x
			default:
				return 0, steps, fmt.Errorf("unsupported BPF misc 0x%02x", code)
			}
		}
	}
}

package main

import (
	"fmt"
	"io"
	"os"
)

// The seccomp(2) filter flags secrun passes on from a profile's flags.
const (
	seccompFlagLog       = 1 << 1 // SECCOMP_FILTER_FLAG_LOG
	seccompFlagSpecAllow = 1 << 2 // SECCOMP_FILTER_FLAG_SPEC_ALLOW

	allowedSeccompFlags = seccompFlagLog | seccompFlagSpecAllow
)

// bpfMaxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// readFilter reads a BPF program file: whole sock_filter instructions (8
// bytes each), at least one, at most BPF_MAXINSNS.
func readFilter(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 8*bpfMaxInsns+1))
	if err != nil {
		return nil, fmt.Errorf("seccomp filter %s: %w", path, err)
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("seccomp filter %s is empty", path)
	case len(b)%8 != 0:
		return nil, fmt.Errorf("seccomp filter %s is %d bytes, not whole BPF instructions (8 bytes each)", path, len(b))
	case len(b) > 8*bpfMaxInsns:
		return nil, fmt.Errorf("seccomp filter %s has more than %d instructions", path, bpfMaxInsns)
	}
	return b, nil
}

package hugeheap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestHeapOnHugePages reads the kernel's view of this test process: the
// heap mapping holding probe, allocated by this package's init, must be
// backed by at least one huge page.
func TestHeapOnHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(mode, []byte("[never]")) {
		t.Skipf("transparent huge pages are off on this kernel (%q, %v)", mode, err)
	}
	addr := uintptr(unsafe.Pointer(probe))
	kb, err := anonHugeKB(addr)
	if err != nil {
		t.Fatal(err)
	}
	if kb == 0 {
		t.Fatalf("the heap mapping at %#x has no huge pages (AnonHugePages: 0 kB)", addr)
	}
	t.Logf("heap mapping at %#x: AnonHugePages %d kB", addr, kb)
}

// anonHugeKB returns the AnonHugePages of the mapping containing addr.
func anonHugeKB(addr uintptr) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		// A mapping's header: "lo-hi perms offset dev inode [name]".
		if r, _, _ := strings.Cut(line, " "); !strings.HasSuffix(r, ":") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(r, "%x-%x", &lo, &hi); err != nil {
				return 0, fmt.Errorf("smaps: %q: %w", line, err)
			}
			in = lo <= addr && addr < hi
			continue
		}
		if kb, ok := strings.CutPrefix(line, "AnonHugePages:"); ok && in {
			var n int
			if _, err := fmt.Sscanf(kb, "%d kB", &n); err != nil {
				return 0, fmt.Errorf("smaps: %q: %w", line, err)
			}
			return n, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no mapping in /proc/self/smaps holds %#x", addr)
}

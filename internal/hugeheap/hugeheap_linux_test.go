package hugeheap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestHeapOnHugePages reads the kernel's view of this test process: the
// heap mapping holding probe, allocated by this package's init, must carry
// the MADV_HUGEPAGE advice ("hg" in its VmFlags).
//
// Whether the kernel backs it with huge pages right away depends on free
// contiguous memory: on a busy, fragmented host MADV_COLLAPSE may find no
// 2 MiB page and the mapping waits for khugepaged. That part is the
// kernel's, so it is logged, not asserted; the advice is secrun's.
func TestHeapOnHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(mode, []byte("[never]")) {
		t.Skipf("transparent huge pages are off on this kernel (%q, %v)", mode, err)
	}
	addr := uintptr(unsafe.Pointer(probe))
	m, err := mappingOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.flags, "hg") {
		t.Fatalf("the heap mapping at %#x lacks the MADV_HUGEPAGE advice: VmFlags %v", addr, m.flags)
	}
	t.Logf("heap mapping at %#x: VmFlags %v, AnonHugePages %d kB", addr, m.flags, m.anonHugeKB)
}

type mapping struct {
	anonHugeKB int
	flags      []string
}

// mappingOf returns the smaps entry of the mapping containing addr.
func mappingOf(addr uintptr) (mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return mapping{}, err
	}
	defer f.Close()
	var m mapping
	in, found := false, false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		// A mapping's header: "lo-hi perms offset dev inode [name]".
		if r, _, _ := strings.Cut(line, " "); !strings.HasSuffix(r, ":") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(r, "%x-%x", &lo, &hi); err != nil {
				return mapping{}, fmt.Errorf("smaps: %q: %w", line, err)
			}
			in = lo <= addr && addr < hi
			found = found || in
			continue
		}
		if !in {
			continue
		}
		if kb, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			if _, err := fmt.Sscanf(kb, "%d kB", &m.anonHugeKB); err != nil {
				return mapping{}, fmt.Errorf("smaps: %q: %w", line, err)
			}
		}
		if fl, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			m.flags = strings.Fields(fl)
		}
	}
	if err := s.Err(); err != nil {
		return mapping{}, err
	}
	if !found {
		return mapping{}, fmt.Errorf("no mapping in /proc/self/smaps holds %#x", addr)
	}
	return m, nil
}

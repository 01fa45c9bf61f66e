package hugeheap

import (
	"syscall"
	"unsafe"
)

const (
	// chunk is the Go runtime's heap mapping unit (pallocChunkBytes):
	// chunks are 4 MiB, aligned to 4 MiB.
	chunk = 4 << 20

	madvHugepage = 14 // MADV_HUGEPAGE
	madvCollapse = 25 // MADV_COLLAPSE
)

// probe is allocated to find the heap chunk in use; a package variable so
// it escapes to the heap.
var probe *[16]byte

func init() {
	probe = new([16]byte)
	base := uintptr(unsafe.Pointer(probe)) &^ (chunk - 1)
	advise(base, chunk)
}

// advise marks [base, base+n) for huge pages and collapses the parts
// already populated. A part with nothing populated yet makes MADV_COLLAPSE
// fail with EINVAL; MADV_HUGEPAGE has it faulted in as one huge page.
func advise(base, n uintptr) {
	syscall.Syscall(syscall.SYS_MADVISE, base, n, madvHugepage)
	syscall.Syscall(syscall.SYS_MADVISE, base, n, madvCollapse)
}

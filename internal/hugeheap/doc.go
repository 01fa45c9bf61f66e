// Package hugeheap backs the Go heap's first chunk with transparent huge
// pages. Import it for its side effect, from a command's main package:
//
//	import _ "github.com/secrun/secrun/internal/hugeheap"
//
// secrun's commands are short-lived: a `secrun run` touches about 3 MiB of
// heap and exits. Each first touch of a 4 KiB page is a page fault, and on a
// virtual machine with shadow page tables a fault costs tens of
// microseconds: 500 to 600 of them were a tenth of secrun's own time per
// container. A huge page costs one fault for 2 MiB.
//
// The Go runtime leaves the heap to the system's transparent huge page
// setting, which is usually "madvise", so the heap gets none. This package's
// init marks the heap chunk it allocates from with MADV_HUGEPAGE and
// collapses what the runtime and earlier package initialisers already
// touched (MADV_COLLAPSE, Linux 6.1), so the rest of the process's
// allocations there fault no more. It imports nothing but syscall and
// unsafe, so it runs before most package initialisers.
//
// Both calls are advice. Their errors are ignored: a kernel without them, or
// a system with huge pages off, runs as before, only slower. The cost is at
// most 4 MiB of resident memory per process, for a process that lives for a
// fraction of a second. Long-running servers should not import it.
package hugeheap

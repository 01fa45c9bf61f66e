//go:build cgo

package runner

/*
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SECRUN_HOLDER_STACK (64 * 1024)

// The holder's whole life: drop its copy of the pipe's write end, block
// until secrun's copy closes too (or secrun dies), exit. It shares secrun's
// memory (CLONE_VM), so it runs on a stack of its own, with every signal
// blocked, and makes raw system calls only: nothing that touches errno or
// other thread-local state of the Go thread it was cloned from.
static int secrun_userns_hold(void *arg) {
	int *fds = arg;
	char c;
	syscall(SYS_close, fds[1]);
	syscall(SYS_read, fds[0], &c, 1);
	syscall(SYS_exit, 0);
	return 0;
}

// secrun_userns_clone starts the holder in a new user namespace and returns
// its pid, or -errno. *stack is the holder's stack, for the caller to unmap
// once the holder has exited; fds is read by the holder at any time before
// it exits, so it must stay valid until then.
static int secrun_userns_clone(int *fds, void **stack) {
	void *s = mmap(NULL, SECRUN_HOLDER_STACK, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (s == MAP_FAILED)
		return -errno;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pid = clone(secrun_userns_hold, (char *)s + SECRUN_HOLDER_STACK,
	                CLONE_VM | CLONE_NEWUSER | SIGCHLD, fds);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		munmap(s, SECRUN_HOLDER_STACK);
		return -err;
	}
	*stack = s;
	return pid;
}

static void secrun_userns_free(void *stack) {
	munmap(stack, SECRUN_HOLDER_STACK);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() { openUsernsClone = openUsernsCloneC }

// openUsernsCloneC is openUsernsFD with cgo. The kernel only makes user
// namespaces for processes, so a process holds the namespace while secrun
// maps it and opens its ns file. That process is a clone of secrun sharing
// its memory, like vfork's child: no page tables are copied and nothing is
// executed, so it costs a fraction of a millisecond. (A plain fork of
// secrun copies its page tables and stalls its other threads for
// milliseconds; Go's own fork cannot share memory with a CLONE_NEWUSER
// child.)
func openUsernsCloneC(r IDRange) (int, error) {
	// C memory: the holder reads the descriptors after this call returns.
	fds := (*[2]C.int)(C.malloc(C.size_t(unsafe.Sizeof([2]C.int{}))))
	defer C.free(unsafe.Pointer(fds))
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	fds[0], fds[1] = C.int(p[0]), C.int(p[1])
	var stack unsafe.Pointer
	pid := int(C.secrun_userns_clone(&fds[0], &stack))
	if pid < 0 {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, fmt.Errorf("idmapped rootfs: creating a user namespace: %w", unix.Errno(-pid))
	}
	fd, err := mapUserns(pid, r)
	// The holder exits once the write end's last copy, ours, is closed.
	unix.Close(p[1])
	var ws unix.WaitStatus
	_, werr := unix.Wait4(pid, &ws, 0, nil)
	for werr == unix.EINTR {
		_, werr = unix.Wait4(pid, &ws, 0, nil)
	}
	unix.Close(p[0])
	if werr == nil {
		C.secrun_userns_free(stack)
	} // else the holder may still run on its stack: leak it rather than free it
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("idmapped rootfs: %w", err)
	}
	if werr != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("idmapped rootfs: waiting for the user namespace holder: %w", werr)
	}
	return fd, nil
}

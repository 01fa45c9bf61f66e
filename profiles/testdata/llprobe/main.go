// Command llprobe tries file operations and prints one line per operation:
// "OP PATH: OK" or "OP PATH: ERRNO" (e.g. EACCES). The Landlock kernel test
// runs it inside a container.
//
//	llprobe write:/tmp/x read:/etc/secret list:/data exec:/bin/llprobe
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "noop" {
		fmt.Println("noop: OK")
		return
	}
	for _, arg := range os.Args[1:] {
		op, path, _ := strings.Cut(arg, ":")
		var err error
		switch op {
		case "write":
			err = os.WriteFile(path, []byte("probe\n"), 0o644)
		case "read":
			_, err = os.ReadFile(path)
		case "list":
			_, err = os.ReadDir(path)
		case "exec":
			// Inherited stdio: with nil streams os/exec would open
			// /dev/null, which a ruleset may not grant.
			cmd := exec.Command(path, "noop")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, io.Discard, os.Stderr
			err = cmd.Run()
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
		fmt.Printf("%s %s: %s\n", op, path, result(err))
	}
}

func result(err error) string {
	if err == nil {
		return "OK"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return "ERROR " + err.Error()
}

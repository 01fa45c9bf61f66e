package runner

import "errors"

// Exit codes secrun uses for its own failures; any other status is the
// container's. They follow Docker's convention.
const (
	ExitSecrun   = 125 // secrun itself failed
	ExitDenied   = 126 // denied by policy or signature
	ExitNotFound = 127 // the command does not exist in the image
)

// Error carries the exit code a failure maps to.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode maps an error to secrun's documented exit codes: 126 for a
// denial, 127 for a missing command, 125 for everything else.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var d interface{ Denied() bool }
	if errors.As(err, &d) && d.Denied() {
		return ExitDenied
	}
	return ExitSecrun
}

//go:build !linux

package audit

import "os"

func openKmsg() (*os.File, error) { return nil, ErrUnsupported }

func pidNamespace(int) (uint64, error) { return 0, ErrUnsupported }

func selfPidNamespace() (uint64, error) { return 0, ErrUnsupported }

//go:build !linux

package audit

import "os"

const oNoFollow = 0

func fileID(os.FileInfo) (dev, ino uint64) { return 0, 0 }

func lockFile(*os.File) error   { return ErrUnsupported }
func unlockFile(*os.File) error { return ErrUnsupported }
func fdatasync(*os.File) error  { return ErrUnsupported }

func renameNoReplace(string, string) error { return ErrUnsupported }

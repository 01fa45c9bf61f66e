//go:build !linux

package profiles

import "errors"

// landlockABI reports that Landlock is a Linux feature.
func landlockABI() (int, error) {
	return 0, errors.New("landlock is only available on Linux")
}

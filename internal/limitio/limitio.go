// Package limitio reads files that come from outside secrun (trust configs,
// bundle specs) with a size cap, so a hostile or mistaken file cannot make
// secrun read without bound. It imports nothing heavy, so the lean
// secrun-runc can use it.
package limitio

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads path, failing if it holds more than max bytes.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

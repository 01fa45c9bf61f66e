package policy

import (
	"encoding/json"
	"fmt"
	"io"
)

// maxInputSize bounds an input document read from a file: a full OCI spec
// with a seccomp profile is tens of kilobytes.
const maxInputSize = maxSourceSize

// ReadInput decodes an input document (`secrun policy eval --input FILE`).
// Decoding is strict: unknown fields are errors, so a misspelt field cannot
// make a test input look safer than the runner's would be.
func ReadInput(r io.Reader) (*Input, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy input: %w", err)
	}
	if len(b) > maxInputSize {
		return nil, fmt.Errorf("policy input is larger than %d bytes", maxInputSize)
	}
	var in Input
	if err := decodeJSONStrict(b, &in, true); err != nil {
		return nil, fmt.Errorf("decode policy input: %w", err)
	}
	return &in, nil
}

// InputHash is "sha256:..." over the input's JSON encoding, the form the
// policy saw; audit records carry it so a decision can be replayed. It is
// empty when the input cannot be encoded.
func InputHash(in *Input) string {
	b, err := json.Marshal(in)
	if err != nil {
		return ""
	}
	return hashBytes(b)
}

package audit

import (
	"testing"
	"time"
)

func TestTmpVerifyTiming(t *testing.T) {
	path := "/tmp/v1m.log"
	t0 := time.Now()
	if _, err := writeSyntheticTrail(path, 1000000); err != nil {
		t.Fatal(err)
	}
	t.Logf("gen %v", time.Since(t0))
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		rep, err := Verify([]string{path}, nil)
		t.Logf("verify %v %v %v", time.Since(t0), rep.Records, err)
	}
}

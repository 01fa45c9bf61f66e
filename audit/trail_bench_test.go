package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/audit"
)

// BenchmarkAppendDurableBatched measures durable appends per second when
// many appenders run at once (many containers starting, many secrun-runc
// calls): group commit shares each write+fdatasync among all of them.
func BenchmarkAppendDurableBatched(b *testing.B) {
	benchAppend(b, 128)
}

// BenchmarkAppendDurableSerial is the baseline: one appender, so every
// record pays a whole fdatasync.
func BenchmarkAppendDurableSerial(b *testing.B) {
	benchAppend(b, 0)
}

func benchAppend(b *testing.B, parallelism int) {
	path := filepath.Join(b.TempDir(), "audit.log")
	tr := openTrail(b, path, audit.Options{MaxSize: -1})
	e := started("4f2a0c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f")
	e.Fields = map[string]any{"spec.hash": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	if parallelism == 0 {
		for b.Loop() {
			if _, err := tr.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tr.Append(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.StopTimer()
	if rep, err := audit.Verify([]string{path}, nil); err != nil || rep.Records != uint64(b.N)+1 {
		b.Fatalf("after the benchmark: %+v, %v", rep, err)
	}
}

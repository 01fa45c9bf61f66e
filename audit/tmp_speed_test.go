package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"testing"
)

func BenchmarkTmpValid(b *testing.B) {
	path := b.TempDir() + "/a"
	writeSyntheticTrail(path, 100)
	data, _ := os.ReadFile(path)
	lines := bytes.Split(data, []byte("\n"))
	line := lines[50]
	b.Logf("len %d", len(line))
	b.Run("valid", func(b *testing.B) { for b.Loop() { json.Valid(line) } })
	b.Run("sha", func(b *testing.B) { for b.Loop() { sha256.Sum256(line) } })
	b.Run("parse", func(b *testing.B) { for b.Loop() { ParseRecord(line) } })
}

func BenchmarkTmpScan(b *testing.B) {
	path := b.TempDir() + "/a"
	writeSyntheticTrail(path, 100)
	data, _ := os.ReadFile(path)
	lines := bytes.Split(data, []byte("\n"))
	line := lines[50]
	b.Run("valid", func(b *testing.B) { for b.Loop() { json.Valid(line) } })
	b.Run("sha", func(b *testing.B) { for b.Loop() { sha256.Sum256(line) } })
	b.Run("scan", func(b *testing.B) { for b.Loop() { scanLine(line) } })
	b.Run("check", func(b *testing.B) { var r lineResult; for b.Loop() { checkLine(line, &r) } })
}

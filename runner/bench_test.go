package runner

import (
	"context"
	"testing"
)

// BenchmarkEngineOverhead measures the engine's own cost per job (selection,
// lock, transaction, ten steps with progress) on an in-process card whose
// operations cost nothing, so the figure is runner overhead only.
func BenchmarkEngineOverhead(b *testing.B) {
	e := &Engine{Readers: twoReaders()}
	steps := make([]Step, 10)
	for i := range steps {
		steps[i] = Step{Name: "step", Run: func(ctx context.Context, s *Session) error {
			_, err := s.Conn.Transmit([]byte{0x00, 0xA4, 0x00, 0x00})
			return err
		}}
	}
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		res := e.Exec(ctx, Selection{ICCSN: "010203"}, steps, func(Progress) { n++ })
		if res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadgenSmoke runs the load generator briefly on its own network of
// processes: every packet sent is delivered exactly once, the report and
// the latency plot are written, and the figures are in range.
func TestLoadgenSmoke(t *testing.T) {
	dir := t.TempDir()
	out := run(t, "loadgen", "-clients", "20", "-rate", "5", "-duration", "3s", "-poll", "50ms", "-mean-delay", "5ms",
		"-layers", "2", "-mixes", "1", "-svg", filepath.Join(dir, "cdf.svg"), "-json", filepath.Join(dir, "report.json"))
	var r struct {
		Sent, Delivered, Lost, Duplicates int
		LatencyMs                         map[string]float64 `json:"latency_ms"`
		ProviderPerConn                   map[string]float64 `json:"provider_bytes_per_client"`
		CPUPerPacketMs                    float64            `json:"node_cpu_per_delivered_packet_ms"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Sent < 100 || r.Delivered != r.Sent || r.Lost != 0 || r.Duplicates != 0 {
		t.Fatalf("sent %d, delivered %d, lost %d, duplicates %d\n%s", r.Sent, r.Delivered, r.Lost, r.Duplicates, out)
	}
	if p50, p99 := r.LatencyMs["p50"], r.LatencyMs["p99"]; p50 <= 0 || p99 < p50 {
		t.Fatalf("latency p50 %v p99 %v", p50, p99)
	}
	if len(r.ProviderPerConn) != 2 || r.CPUPerPacketMs <= 0 {
		t.Fatalf("resources not measured: %+v", r)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "cdf.svg"))
	if err != nil || !strings.Contains(string(svg), "<polyline") {
		t.Fatalf("no latency plot: %v", err)
	}
	t.Log(lastLines(out, 6))
}

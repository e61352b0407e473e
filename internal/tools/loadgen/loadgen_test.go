package loadgen

import (
	"bytes"
	"encoding/xml"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestErlangCDF checks the model against a simulation of sums of
// exponentials: the Kolmogorov–Smirnov distance of 20,000 samples stays
// under the 1% critical value (1.63/√n), and falls far beyond it for a
// wrong model.
func TestErlangCDF(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mean := 50 * time.Millisecond
	var samples []time.Duration
	for range 20000 {
		var d time.Duration
		for range 4 {
			d += time.Duration(rng.ExpFloat64() * float64(mean))
		}
		samples = append(samples, d)
	}
	slices.Sort(samples)
	critical := 1.63 / 141.4
	if d := KolmogorovSmirnov(samples, ErlangCDF(4, mean)); d > critical {
		t.Fatalf("D = %.4f against the right model, critical %.4f", d, critical)
	}
	if d := KolmogorovSmirnov(samples, ErlangCDF(3, mean)); d < 5*critical {
		t.Fatalf("D = %.4f against a wrong model", d)
	}
}

// TestWithPollWait: a delay plus a uniform wait, simulated, fits the
// integrated model.
func TestWithPollWait(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mean, poll := 10*time.Millisecond, 40*time.Millisecond
	var samples []time.Duration
	for range 20000 {
		d := time.Duration(rng.ExpFloat64()*float64(mean)) + time.Duration(rng.Float64()*float64(poll))
		samples = append(samples, d)
	}
	slices.Sort(samples)
	if d := KolmogorovSmirnov(samples, WithPollWait(ErlangCDF(1, mean), poll)); d > 1.63/141.4 {
		t.Fatalf("D = %.4f", d)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 99: 99, 100: 100, 0: 1} {
		if got := Percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
}

// TestWriteCDF: the plot is well-formed XML with one line per curve.
func TestWriteCDF(t *testing.T) {
	var buf bytes.Buffer
	samples := []time.Duration{time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond}
	if err := WriteCDF(&buf, "a <test>", []Curve{{Name: "measured", Sorted: samples}, {Name: "model", CDF: ErlangCDF(2, 2*time.Millisecond)}}, 0); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Polylines []struct{} `xml:"polyline"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if len(doc.Polylines) != 2 {
		t.Fatalf("%d curves drawn", len(doc.Polylines))
	}
}

func TestNiceStep(t *testing.T) {
	for max, want := range map[time.Duration]time.Duration{7 * time.Millisecond: time.Millisecond, 180 * time.Millisecond: 20 * time.Millisecond, 3 * time.Second: 500 * time.Millisecond} {
		if got := niceStep(max); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", max, got, want)
		}
	}
}

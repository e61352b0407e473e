package loadgen

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Curve is one line of a CDF plot: measured latencies (sorted), or a
// model's distribution function.
type Curve struct {
	Name string
	// Sorted latencies, for a measured curve.
	Sorted []time.Duration
	// CDF, for a model: the probability of a latency at most d.
	CDF func(d time.Duration) float64
}

// ErlangCDF is the distribution function of the sum of k independent
// exponential delays of the given mean each: what a packet's delay is made
// of when k hops each hold it for an exponential time (Loopix).
func ErlangCDF(k int, mean time.Duration) func(time.Duration) float64 {
	return func(d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		x := float64(d) / float64(mean)
		sum, term := 0.0, 1.0
		for n := range k {
			if n > 0 {
				term *= x / float64(n)
			}
			sum += term
		}
		return 1 - math.Exp(-x)*sum
	}
}

// WithPollWait is the distribution of a delay of distribution cdf plus an
// independent wait uniform on [0, poll): a packet waits in the mailbox for
// the recipient's next fetch. It is integrated numerically (200 steps).
func WithPollWait(cdf func(time.Duration) float64, poll time.Duration) func(time.Duration) float64 {
	if poll <= 0 {
		return cdf
	}
	const steps = 200
	return func(d time.Duration) float64 {
		sum := 0.0
		for i := range steps {
			u := time.Duration((float64(i) + 0.5) / steps * float64(poll))
			sum += cdf(d - u)
		}
		return sum / steps
	}
}

// KolmogorovSmirnov returns the largest distance between the empirical
// distribution of sorted and the model cdf.
func KolmogorovSmirnov(sorted []time.Duration, cdf func(time.Duration) float64) float64 {
	d := 0.0
	n := float64(len(sorted))
	for i, x := range sorted {
		f := cdf(x)
		d = max(d, math.Abs(float64(i+1)/n-f), math.Abs(f-float64(i)/n))
	}
	return d
}

// WriteCDF draws the curves as an SVG plot: latency on the x axis up to
// xMax (the largest measured latency if zero), cumulative fraction on the
// y axis. It is the project's own drawing: no plotting library.
func WriteCDF(w io.Writer, title string, curves []Curve, xMax time.Duration) error {
	const (
		width, height         = 720, 440
		left, right, top, bot = 70, 20, 40, 60
	)
	if xMax <= 0 {
		for _, c := range curves {
			if n := len(c.Sorted); n > 0 {
				xMax = max(xMax, c.Sorted[n-1])
			}
		}
	}
	if xMax <= 0 {
		xMax = time.Millisecond
	}
	px := func(d time.Duration) float64 {
		return left + float64(width-left-right)*min(float64(d)/float64(xMax), 1)
	}
	py := func(f float64) float64 { return top + float64(height-top-bot)*(1-f) }
	colors := []string{"#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, escape(title))
	// Axes, grid and ticks.
	step := niceStep(xMax)
	for d := time.Duration(0); d <= xMax; d += step {
		x := px(d)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-bot)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, height-bot+18, formatDuration(d))
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
		y := py(f)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y+4, f)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", left, top, width-left-right, height-top-bot)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">end-to-end latency</text>`+"\n", (left+width-right)/2, height-18)
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">fraction of packets delivered within</text>`+"\n", (top+height-bot)/2, (top+height-bot)/2)
	for i, c := range curves {
		color := colors[i%len(colors)]
		var pts []string
		switch {
		case c.Sorted != nil:
			n := len(c.Sorted)
			stride := max(1, n/800)
			for j := 0; j < n; j += stride {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(c.Sorted[j]), py(float64(j+1)/float64(n))))
			}
			if n > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(c.Sorted[n-1]), py(1)))
			}
		case c.CDF != nil:
			for j := 0; j <= 400; j++ {
				d := time.Duration(float64(xMax) * float64(j) / 400)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(d), py(c.CDF(d))))
			}
		}
		dash := ""
		if c.CDF != nil {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		ly := top + 18 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right-230, ly, width-right-205, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right-200, ly+4, escape(c.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep is a round tick interval (1, 2 or 5 times a power of ten)
// giving at most 10 ticks up to max.
func niceStep(max time.Duration) time.Duration {
	for step := time.Microsecond; ; step *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if max/(step*m) <= 10 {
				return step * m
			}
		}
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d >= time.Second:
		return fmt.Sprintf("%gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%gµs", float64(d)/float64(time.Microsecond))
	}
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

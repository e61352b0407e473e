package sphinx

import "sync"

// Format makes and processes packets of one [Geometry]. It holds no secrets
// (its pool of scratch space is cleared before reuse) and no other mutable
// state, so one Format may be shared by any number of goroutines.
type Format struct {
	geometry Geometry
	// scratch holds *unwrapScratch: what an unwrap works in (unwrap.go).
	scratch sync.Pool
}

// New returns the Format of geometry g, or an error if g is invalid.
func New(g Geometry) (*Format, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &Format{geometry: g}, nil
}

// Geometry returns the Format's geometry.
func (f *Format) Geometry() Geometry { return f.geometry }

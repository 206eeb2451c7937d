package main

import (
	"sort"
	"sync"
)

// summary is the median and range of one metric over the rounds of a run.
type summary struct {
	Median, Min, Max float64
	N                int
}

func summarize(v []float64) summary {
	if len(v) == 0 {
		return summary{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// cell holds every round's value of every metric for one scenario variant
// and one target.
type cell struct {
	Scenario string               `json:"scenario"`
	Variant  string               `json:"variant"`
	Target   string               `json:"target"`
	Metrics  map[string][]float64 `json:"metrics"`
	Note     string               `json:"note,omitempty"`
}

// results is every measurement of a run, in the order first recorded.
type results struct {
	mu    sync.Mutex
	Cells []*cell `json:"cells"`
	index map[string]*cell
}

func (r *results) cell(scn, variant, tgt string) *cell {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index == nil {
		r.index = map[string]*cell{}
	}
	k := scn + "\x00" + variant + "\x00" + tgt
	c := r.index[k]
	if c == nil {
		c = &cell{Scenario: scn, Variant: variant, Target: tgt, Metrics: map[string][]float64{}}
		r.index[k] = c
		r.Cells = append(r.Cells, c)
	}
	return c
}

func (r *results) add(scn, variant, tgt, metric string, v float64) {
	c := r.cell(scn, variant, tgt)
	r.mu.Lock()
	c.Metrics[metric] = append(c.Metrics[metric], v)
	r.mu.Unlock()
}

func (r *results) note(scn, variant, tgt, note string) {
	c := r.cell(scn, variant, tgt)
	r.mu.Lock()
	c.Note = note
	r.mu.Unlock()
}

// get returns the summary of a metric, and whether it was measured.
func (r *results) get(scn, variant, tgt, metric string) (summary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.index[scn+"\x00"+variant+"\x00"+tgt]
	if c == nil || len(c.Metrics[metric]) == 0 {
		return summary{}, false
	}
	return summarize(c.Metrics[metric]), true
}

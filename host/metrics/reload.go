package metrics

import "time"

// Reload records one reload attempt and its result ("loaded",
// "unchanged" or "failed").
func (r *Registry) Reload(result string, d time.Duration) {
	r.reloads.WithLabelValues(result).Inc()
	r.reloadDuration.Observe(d.Seconds())
}

// Generation records the generation serving and when it was swapped in.
func (r *Registry) Generation(num uint64, loadedAt time.Time) {
	r.generation.Set(float64(num))
	r.generationAt.Set(float64(loadedAt.UnixNano()) / 1e9)
}

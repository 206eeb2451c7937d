package config

// Defaults of the [[plugin]] quotas. The plugins package uses the same
// values for a Plugin built by hand.
const (
	DefaultStackLimit          = 1 << 20
	DefaultStateMaxBytes       = 64 << 10
	DefaultStateMaxKeys        = 64
	DefaultSharedMaxBytes      = 4 << 20
	DefaultSharedMaxKeys       = 16384
	DefaultLogRate             = 100
	DefaultMaxInjectedMessages = 16
	DefaultMaxInjectedBytes    = 1 << 20
	DefaultMaxLocalResponse    = 1 << 20
)

// pluginQuotaDefaults fills in the quotas a [[plugin]] left out. Zero is
// not a valid value for any of them but max_body_buffer, whose default is
// zero.
func pluginQuotaDefaults(pl *Plugin) {
	sizeDefault(&pl.StackLimit, DefaultStackLimit)
	sizeDefault(&pl.StateMaxBytes, DefaultStateMaxBytes)
	intDefault(&pl.StateMaxKeys, DefaultStateMaxKeys)
	sizeDefault(&pl.SharedMaxBytes, DefaultSharedMaxBytes)
	intDefault(&pl.SharedMaxKeys, DefaultSharedMaxKeys)
	intDefault(&pl.LogRate, DefaultLogRate)
	intDefault(&pl.MaxInjectedMessages, DefaultMaxInjectedMessages)
	sizeDefault(&pl.MaxInjectedBytes, DefaultMaxInjectedBytes)
	sizeDefault(&pl.MaxLocalResponse, DefaultMaxLocalResponse)
}

func sizeDefault(s *Size, def Size) {
	if *s == 0 {
		*s = def
	}
}

func intDefault(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}

// Upper limits of the quotas: they keep the worst case that `sluice check`
// prints meaningful and every value inside what the ABI's i32 lengths and
// the host's counters can express.
const (
	maxStackLimit = 256 << 20
	maxQuotaBytes = 1 << 30
	maxQuotaCount = 1 << 24
)

func (p *parser) validatePluginQuotas(k string, pl Plugin) {
	sizes := []struct {
		key      string
		v        Size
		min, max Size
	}{
		{"stack_limit", pl.StackLimit, 64 << 10, maxStackLimit},
		{"state_max_bytes", pl.StateMaxBytes, 1, maxQuotaBytes},
		{"shared_max_bytes", pl.SharedMaxBytes, 1, maxQuotaBytes},
		{"max_injected_bytes", pl.MaxInjectedBytes, 1, maxQuotaBytes},
		{"max_local_response", pl.MaxLocalResponse, 1, maxQuotaBytes},
		{"max_body_buffer", pl.MaxBodyBuffer, 0, maxQuotaBytes},
	}
	for _, s := range sizes {
		if s.v < s.min || s.v > s.max {
			p.errf(k+"."+s.key, "must be from %s to %s, got %s", s.min, s.max, s.v)
		}
	}
	counts := []struct {
		key string
		v   int
	}{
		{"state_max_keys", pl.StateMaxKeys},
		{"shared_max_keys", pl.SharedMaxKeys},
		{"log_rate", pl.LogRate},
		{"max_injected_messages", pl.MaxInjectedMessages},
	}
	for _, c := range counts {
		if c.v < 1 || c.v > maxQuotaCount {
			p.errf(k+"."+c.key, "must be from 1 to %d, got %d", maxQuotaCount, c.v)
		}
	}
}

package plugins

import (
	"encoding/hex"

	"github.com/sluiceproxy/sluice/host/filter"
)

var _ filter.Describer = (*Set)(nil)

// DescribePlugins implements filter.Describer: every plugin of the Set, in
// config order, with its module's sha256, the hooks the chains call and its
// pool.
func (s *Set) DescribePlugins() []filter.PluginInfo {
	out := make([]filter.PluginInfo, 0, len(s.plugins))
	for _, p := range s.plugins {
		info := filter.PluginInfo{
			Name:        p.name,
			Module:      p.path,
			SHA256:      hex.EncodeToString(p.mod.key.sum[:]),
			OnError:     "allow",
			Timeout:     p.timeout,
			MemoryLimit: uint64(p.mod.key.pages) * pageSize,
			PoolSize:    p.pool.size,
			Live:        int(p.stats.instances.Load()),
			Idle:        len(p.pool.idle),
		}
		if p.deny {
			info.OnError = "deny"
		}
		for h := range numHooks {
			if p.hooks&(1<<h) != 0 {
				info.Hooks = append(info.Hooks, hookLabels[h])
			}
		}
		out = append(out, info)
	}
	return out
}

package main

import (
	"context"
	"io"
	"log/slog"
	"reflect"

	"github.com/sluiceproxy/sluice/host/config"
	"github.com/sluiceproxy/sluice/plugins"
	"github.com/sluiceproxy/sluice/plugins/redisstore"
)

// openShared opens the store of the [shared] table: nil for the memory
// backend (the Loader then owns its own MemoryStore), a Redis store
// otherwise. Redis being down is not an error here: the proxy starts and
// serves every route, and filters that use shared state get their
// on_error policy until Redis answers.
func openShared(c config.Shared, log *slog.Logger) (plugins.SharedStore, io.Closer, error) {
	if c.Backend != "redis" {
		return nil, closerFunc(func() error { return nil }), nil
	}
	s, err := redisstore.New(c, log)
	if err != nil {
		return nil, nil, err
	}
	addr := c.Address
	if addr == "" {
		addr = c.Addresses[0]
	}
	if err := s.Ping(context.Background()); err != nil {
		log.Warn("shared store: Redis does not answer yet; filters that use shared state fail under their on_error until it does",
			"addr", addr, "err", err)
	} else {
		log.Info("shared store: Redis", "addr", addr)
	}
	return s, s, nil
}

// sharedChanged warns when a reload changes [shared]: the store is opened
// once at start-up, so its settings apply on the next restart.
func sharedChanged(old, cur config.Shared, log *slog.Logger) {
	if !reflect.DeepEqual(old, cur) {
		log.Warn("shared store: [shared] changed; the new settings apply when the proxy restarts")
	}
}

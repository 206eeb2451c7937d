//go:build !linux

package host

import "errors"

// wsParker keeps idle raw-mode directions without a goroutine where epoll
// exists (Linux). Elsewhere idle directions stay parked on the runtime's
// poller.
type wsParker struct{}

const wsCanPark = false

var wsPark wsParker

func (p *wsParker) start() error { return errors.New("host: idle parking needs epoll") }

func (p *wsParker) arm(*wsSock) error { return p.start() }

func (p *wsParker) forget(*wsSock) {}

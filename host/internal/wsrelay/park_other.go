//go:build !linux

package wsrelay

import "errors"

// parker keeps idle raw-mode directions without a goroutine where epoll
// exists (Linux). Elsewhere idle directions stay parked on the runtime's
// poller.
type parker struct{}

const canPark = false

var idleParker parker

func (p *parker) start() error { return errors.New("wsrelay: idle parking needs epoll") }

func (p *parker) arm(*sock) error { return p.start() }

func (p *parker) forget(*sock) {}

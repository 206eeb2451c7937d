package wsrelay

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// parker holds the raw-mode directions that went idle: their sockets sit
// in an epoll set of the relay's own, and no goroutine waits for them. When
// one becomes readable (or hangs up), its direction gets a fresh goroutine
// again. One goroutine serves the whole set; it waits on the epoll
// descriptor through the runtime's poller like any socket.
//
// Why not leave the goroutine parked on the runtime's poller: an idle
// goroutine costs its stack (2 KiB at the least, 4 KiB once it grew, and the
// runtime does not shrink a 4 KiB stack of a parked relay back to 2 KiB)
// plus its descriptor, about as much as everything else an idle raw session
// holds together.
type parker struct {
	once sync.Once
	err  error
	epfd int
	file *os.File
	rc   syscall.RawConn

	mu    sync.Mutex
	seq   uint64
	socks map[uint64]*sock
}

const canPark = true

var idleParker parker

func (p *parker) start() error {
	p.once.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.err = os.NewSyscallError("epoll_create1", err)
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			p.err = os.NewSyscallError("setnonblock", err)
			return
		}
		p.epfd = fd
		p.file = os.NewFile(uintptr(fd), "websocket-idle")
		if p.rc, p.err = p.file.SyscallConn(); p.err != nil {
			return
		}
		p.socks = make(map[uint64]*sock)
		go p.loop()
	})
	return p.err
}

// arm puts s's socket in the set, for one readiness event. Callers hold
// s.dmu.
func (p *parker) arm(s *sock) error {
	if err := p.start(); err != nil {
		return err
	}
	if s.parkKey == 0 {
		p.mu.Lock()
		p.seq++
		s.parkKey = p.seq
		p.socks[s.parkKey] = s
		p.mu.Unlock()
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(s.parkKey)),
		Pad:    int32(uint32(s.parkKey >> 32)),
	}
	var cerr error
	err := s.rc.Control(func(fd uintptr) {
		op := syscall.EPOLL_CTL_MOD
		if !s.inEpoll {
			op = syscall.EPOLL_CTL_ADD
		}
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
		if cerr == nil {
			s.inEpoll = true
		}
	})
	if err == nil {
		err = cerr
	}
	return err
}

// forget drops s from the set's table, once its session ended. The kernel
// drops the socket from the epoll set when it is closed.
func (p *parker) forget(s *sock) {
	if s.parkKey == 0 {
		return
	}
	p.mu.Lock()
	delete(p.socks, s.parkKey)
	p.mu.Unlock()
}

func (p *parker) loop() {
	var evs [128]syscall.EpollEvent
	n := 0
	wait := func(fd uintptr) bool {
		for {
			k, err := syscall.EpollWait(int(fd), evs[:], 0)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			n = max(k, 0)
			return n > 0 // nothing ready: park on the runtime's poller
		}
	}
	for {
		if err := p.rc.Read(wait); err != nil {
			return
		}
		for _, ev := range evs[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			s := p.socks[key]
			p.mu.Unlock()
			if s != nil {
				s.wake()
			}
		}
	}
}
